"""EvoLink images API (asynchronous) under ``/evolink/v1``.

Shapes from EvoLink's gpt-image-1/-2 and task-detail docs (docs.evolink.ai). EvoLink's cancel
endpoint is not in our documents, so the emulator has none.

``usage.credits_reserved`` is the emulator's stand-in for EvoLink's price (which
is token based and not published per request): 0.9 × OpenAI's output-image token
price ($40/M gpt-image-1, $30/M gpt-image-2) × output image tokens
(providers/tokens.py) × n, divided by $0.0147 per credit, rounded to 4 decimals.
"""

from __future__ import annotations

import math
import secrets
import string
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import clock
from providers import tokens

from . import webhooks
from .common import GPT2_RATIOS, ProviderAPI, gpt2_size_problem, is_bad_json, parse_wxh, ratio_to_pixels
from .store import Job

__all__ = ["EvoLinkAPI", "credits_reserved"]

STATUS = {"queued": "pending", "running": "processing", "succeeded": "completed", "failed": "failed",
          "canceled": "failed"}  # fmt: skip
FIELDS = {"model", "prompt", "size", "quality", "image_urls", "n", "callback_url", "resolution"}
GPT1_SIZES = {"1:1": (1024, 1024), "2:3": (1024, 1536), "3:2": (1536, 1024),
              "1024x1024": (1024, 1024), "1024x1536": (1024, 1536), "1536x1024": (1536, 1024)}  # fmt: skip
BETA = "gpt-image-2-beta"
MAX_INPUT_BYTES = {"gpt-image-1": 10 * 1024 * 1024, "gpt-image-2": 50 * 1024 * 1024, BETA: 50 * 1024 * 1024}
# The beta channel is priced per call by resolution ($0.015 / $0.025 / $0.039, evolink.ai, at 68 credits per USD).
BETA_CREDITS = {"1K": 1.02, "2K": 1.7, "4K": 2.652}
OUTPUT_PRICE_PER_TOKEN = {"gpt-image-1": 40 / 1_000_000, "gpt-image-2": 30 / 1_000_000}
DISCOUNT = 0.9  # "about 10% under OpenAI" (evolink.ai/gpt-image-1; ezkit, 3P)
USD_PER_CREDIT = 0.0147


def credits_reserved(model: str, quality: str, size: str, n: int) -> float:
    """The emulator's stand-in for EvoLink's reserved credits (see the module docstring)."""
    usd = DISCOUNT * OUTPUT_PRICE_PER_TOKEN[model] * tokens.output_image_tokens(model, quality, size) * n
    return round(usd / USD_PER_CREDIT, 4)


def _task_id() -> str:
    rand = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    return f"task-unified-{int(clock.timestamp())}-{rand}"


class EvoLinkAPI(ProviderAPI):
    name = "evolink"
    FAULTS = {
        "rate_limit": (429, "rate_limit_exceeded", "Too many requests, please retry later", "rate_limit_error"),
        "quota": (402, "insufficient_balance", "Insufficient balance, please top up", "insufficient_quota"),
        "server_error": (500, "service_error", "Internal service error", "api_error"),
        "auth": (401, "unauthorized", "Invalid API key", "authentication_error"),
        "model_not_found": (404, "model_not_found", "Model not found", "invalid_request_error"),
    }
    FAILURES = {
        "job_failed": ("service_error", "Image generation failed: upstream service error"),
        "moderation": ("content_policy_violation", "The request was rejected by the content policy"),
    }

    def routes(self) -> list[Route]:
        return [
            Route("/evolink/v1/images/generations", self.create, methods=["POST"]),
            Route("/evolink/v1/tasks/{id}", self.poll, methods=["GET"]),
            Route("/evolink/{rest:path}", self.not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        ]

    def error(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        etype: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        body: dict[str, Any] = {"code": code, "message": message, "type": etype or "invalid_request_error"}
        if param:
            body["param"] = param
        return JSONResponse({"error": body}, status_code=status, headers=headers)

    def auth_error(self, key: str | None) -> Response:
        message = "Missing Authorization: Bearer <API key>" if not key else "Invalid API key"
        return self.error(401, "unauthorized", message, etype="authentication_error")

    def job_missing(self, job_id: str) -> Response:
        return self.error(404, "task_not_found", f"Task {job_id} not found")

    async def not_found(self, request: Request) -> Response:
        return self.error(404, "not_found", f"No route {request.method} {request.url.path}")

    async def create(self, request: Request) -> Response:
        return await self.submit(request, self._build)

    async def _build(self, request: Request) -> dict[str, Any]:
        body = await self.read_json(request)
        if is_bad_json(body) or not isinstance(body, dict):
            raise self.refuse("The request body must be a JSON object")
        self.only_keys(body, FIELDS)
        model = body.get("model") or "gpt-image-1"  # the documented default
        if model not in MAX_INPUT_BYTES:
            raise self.refuse(f"model must be gpt-image-1, gpt-image-2 or gpt-image-2-beta (got {model!r})",
                              param="model")
        prompt = self._prompt(body, model)
        quality = self.pick(body, "quality", ("low", "medium", "high"), "high")
        n = self.int_in(body, "n", 1, 1 if model == BETA else 10, 1) or 1  # the beta channel: n fixed at 1
        width, height = self._size(body, model)
        callback = body.get("callback_url")
        if callback is not None and (not isinstance(callback, str) or len(callback) > 2048):
            raise self.refuse("callback_url must be a URL of at most 2048 characters", param="callback_url")
        urls = body.get("image_urls")
        if urls is not None and (not isinstance(urls, list) or not urls):
            raise self.refuse("image_urls must be a list of 1 to 16 URLs", param="image_urls")
        urls = self.url_list(urls, "image_urls")
        names = await self.files.fetch_inputs(urls, max_bytes=MAX_INPUT_BYTES[model], field="image_urls")
        size_px = f"{width}x{height}"
        return {
            "job_id": _task_id(),
            "model": model,
            "params": self.params_for(
                width=width,
                height=height,
                fmt="png",
                quality=quality,
                n=n,
                prompt=prompt,
                credits=BETA_CREDITS.get(str(body.get("resolution") or "1K"), 1.02) if model == BETA
                else credits_reserved(model, quality, size_px, n),
            ),
            "request": dict(body),
            "inputs": names,
        }

    def _prompt(self, body: dict[str, Any], model: str) -> str:
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise self.refuse("prompt is required", param="prompt")
        if model == "gpt-image-1" and math.ceil(len(prompt) / 4) > 2000:
            raise self.refuse("prompt is longer than 2000 tokens (about 8000 characters)", param="prompt")
        if model in ("gpt-image-2", BETA) and len(prompt) > 32000:
            raise self.refuse("prompt is longer than 32000 characters", param="prompt")
        return prompt

    def _size(self, body: dict[str, Any], model: str) -> tuple[int, int]:
        size = body.get("size")
        resolution = body.get("resolution")
        if model != "gpt-image-1":
            return self._gpt2_size(size or "auto", resolution)
        if resolution is not None:
            raise self.refuse("resolution is only for gpt-image-2", param="resolution")
        size = size or "1:1"
        if size not in GPT1_SIZES:
            raise self.refuse(f"size must be one of {', '.join(GPT1_SIZES)} (got {size!r})", param="size")
        return GPT1_SIZES[size]

    def _gpt2_size(self, size: Any, resolution: Any) -> tuple[int, int]:
        if resolution is not None and resolution not in ("1K", "2K", "4K"):
            raise self.refuse(f"resolution must be 1K, 2K or 4K (got {resolution!r})", param="resolution")
        if not isinstance(size, str):
            raise self.refuse("size must be a string", param="size")
        if size in GPT2_RATIOS:
            return ratio_to_pixels(size, resolution)
        # EvoLink's docs: resolution "does not apply" with auto and is "ignored in explicit pixel mode".
        if size == "auto":
            return 1024, 1024
        wh = parse_wxh(size)
        problem = (
            f"use an aspect ratio ({', '.join(GPT2_RATIOS)}), WIDTHxHEIGHT or auto"
            if wh is None
            else gpt2_size_problem(*wh)
        )
        if problem:
            raise self.refuse(f"size {size!r}: {problem}", param="size")
        assert wh is not None
        return wh

    def created(self, job: Job) -> Response:
        return self.json(self._task(job, "queued", 0))

    def _task(self, job: Job, state: str, progress: int) -> dict[str, Any]:
        terminal = state in ("succeeded", "failed", "canceled")
        return {
            "created": int(job.created_at),
            "id": job.id,
            "model": job.model,
            "object": "image.generation.task",
            "progress": progress,
            "status": STATUS[state],
            "task_info": {"can_cancel": not terminal, "estimated_time": math.ceil(job.job_time)},
            "type": "image",
            "usage": {
                "billing_rule": "per_call",
                "credits_reserved": job.params["credits"],
                "user_group": "default",
            },
        }

    def callback(self, job: Job, request: Request) -> webhooks.Plan | None:
        url = job.request.get("callback_url")
        if not isinstance(url, str) or not url:
            return None
        return webhooks.Plan(url, self.describe, retries=(1.0, 2.0, 4.0), timeout=10.0)

    def describe(self, job: Job) -> dict[str, Any]:
        state, progress, _ = self.store.observe(job)
        task = self._task(job, state, progress)
        if state == "succeeded":
            task["results"] = self.store.result_urls(job)
        elif state in ("failed", "canceled"):
            err = job.error or {"code": "request_cancelled", "message": "The task was cancelled"}
            task["error"] = {"code": err["code"], "message": err["message"]}
        return task

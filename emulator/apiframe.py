"""Apiframe v2 images API (asynchronous) under ``/apiframe/v2``.

Shapes from Apiframe's v2 docs (docs-v2.apiframe.ai). ``result`` is published two
ways; the emulator answers ``{"images": [...]}`` by default, or with
``apiframe_result_shape="string"`` a bare URL string when the job made one image
(a job with several images still answers ``{"images": [...]}``: one string cannot
hold them). Errors are ``{"error": "<message>", "code": "<code>"}`` (Apiframe's
documented errors are a string in ``error``; ``code`` is the emulator's addition).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import webhooks
from .common import RATIO_PIXELS, ProviderAPI, Refusal, is_bad_json, iso
from .store import Job

__all__ = ["CREDITS", "ApiframeAPI"]

STATUS = {"queued": "QUEUED", "running": "PROCESSING", "succeeded": "COMPLETED", "failed": "FAILED",
          "canceled": "FAILED"}  # fmt: skip
PARAMS_KEY = {"gpt-image-2": "gptImage2Params", "gpt-image-1.5": "gptImageParams"}
# Credits per image by quality (docs-v2 for gpt-image-2; apiframe.ai/docs for gpt-image-1.5).
CREDITS = {
    "gpt-image-2": {"low": 4, "medium": 9, "high": 23, "auto": 23},
    "gpt-image-1.5": {"low": 4, "medium": 9, "high": 24, "auto": 24},
}
TOP_FIELDS = {"prompt", "model", "gptImage2Params", "gptImageParams", "webhookUrl", "webhookEvents", "webhook_url"}
PARAM_FIELDS = {"input_images", "aspect_ratio", "quality", "background", "number_of_images", "output_format",
                "moderation"}  # fmt: skip
MAX_INPUT_BYTES = 50 * 1024 * 1024  # not published: OpenAI's own limit


class ApiframeAPI(ProviderAPI):
    name = "apiframe"
    FAULTS = {
        "rate_limit": (429, "rate_limited", "Rate limit exceeded", ""),
        "quota": (402, "insufficient_credits", "Insufficient credits", ""),
        "server_error": (500, "internal_error", "Internal server error", ""),
        "auth": (401, "unauthorized", "Invalid API key", ""),
        "model_not_found": (404, "model_not_found", "Model not found", ""),
    }
    FAILURES = {
        "job_failed": ("provider_error", "Provider returned an error: the image could not be generated"),
        "moderation": ("content_policy_violation", "Provider returned an error: content policy violation"),
    }

    def routes(self) -> list[Route]:
        return [
            Route("/apiframe/v2/images/generate", self.create, methods=["POST"]),
            Route("/apiframe/v2/jobs/{id}", self.poll, methods=["GET"]),
            Route("/apiframe/{rest:path}", self.not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
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
        body: dict[str, Any] = {"error": message, "code": code}
        if param:
            body["field"] = param
        if status == 402:
            body["balance"] = 0  # the documented 402 includes the balance and the cost
        return JSONResponse(body, status_code=status, headers=headers)

    def api_key(self, request: Request) -> str | None:
        return request.headers.get("x-api-key") or None

    def auth_error(self, key: str | None) -> Response:
        return self.error(401, "unauthorized", "Missing X-API-Key header" if not key else "Invalid API key")

    def job_missing(self, job_id: str) -> Response:
        return self.error(404, "not_found", "Job not found")

    async def not_found(self, request: Request) -> Response:
        return self.error(404, "not_found", f"Cannot {request.method} {request.url.path}")

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._in_flight: set[str] = set()

    async def create(self, request: Request) -> Response:
        key = request.headers.get("idempotency-key")
        if key and key in self._in_flight:
            # The first request with this key has not been answered yet (Stripe answers the same).
            return self.error(409, "idempotency_in_progress", "A request with this Idempotency-Key is in progress")
        if key:
            self._in_flight.add(key)
        try:
            return await self.submit(request, self._build)
        finally:
            if key:
                self._in_flight.discard(key)

    async def _build(self, request: Request) -> dict[str, Any] | Response:
        body = await self.read_json(request)
        if is_bad_json(body) or not isinstance(body, dict):
            raise self.refuse("The request body must be a JSON object", code="invalid_json")
        key = request.headers.get("idempotency-key")
        body_sha = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        if key:
            earlier = self.store.find_idempotent(self.name, key)
            if earlier is not None:
                if earlier.body_sha != body_sha:
                    raise Refusal(
                        self.error(
                            409, "idempotency_conflict", "Idempotency-Key was already used with a different body"
                        )
                    )
                state, _, _ = self.store.observe(earlier)
                return self.json({"jobId": earlier.id, "status": STATUS[state]}, status=202)
        spec = await self._spec(body)
        spec["job_id"] = str(uuid.uuid4())
        if key:
            spec["idempotency_key"], spec["body_sha"] = key, body_sha
        return spec

    async def _spec(self, body: dict[str, Any]) -> dict[str, Any]:
        self.only_keys(body, TOP_FIELDS)
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not 1 <= len(prompt) <= 2000:
            raise self.refuse("prompt is required and must be 1-2000 characters", param="prompt")
        model = body.get("model")
        if model not in PARAMS_KEY:
            raise self.refuse(f"model must be one of {', '.join(PARAMS_KEY)} (got {model!r})", param="model")
        key = PARAMS_KEY[model]
        other = next((k for k in PARAMS_KEY.values() if k != key and k in body), None)
        if other:
            raise self.refuse(f"{model} takes its options in {key}, not {other}", param=other)
        params = body.get(key) or {}
        if not isinstance(params, dict):
            raise self.refuse(f"{key} must be an object", param=key)
        where = f"{key}."
        allowed = PARAM_FIELDS | ({"input_fidelity"} if model == "gpt-image-1.5" else set())
        self.only_keys(params, allowed, where)
        ratio = self.pick(params, "aspect_ratio", tuple(RATIO_PIXELS), "1:1", where)
        quality = self.pick(params, "quality", ("auto", "low", "medium", "high"), "auto", where)
        backgrounds = ("auto", "opaque", "transparent") if model == "gpt-image-1.5" else ("auto", "opaque")
        background = self.pick(params, "background", backgrounds, "auto", where)
        n = self.int_in(params, "number_of_images", 1, 10, 1, where) or 1
        fmt = self.pick(params, "output_format", ("webp", "png", "jpeg"), "webp", where)
        self.pick(params, "moderation", ("auto", "low"), "auto", where)
        if model == "gpt-image-1.5":
            self.pick(params, "input_fidelity", ("low", "high"), "low", where)
        if background == "transparent" and fmt == "jpeg":
            raise self.refuse(
                f"{where}background transparent needs output_format png or webp", param=f"{where}background"
            )
        urls = self.url_list(params.get("input_images"), f"{where}input_images", single_ok=True)
        names = await self.files.fetch_inputs(urls, max_bytes=MAX_INPUT_BYTES, field=f"{where}input_images")
        width, height = RATIO_PIXELS[ratio]
        return {
            "model": model,
            "params": self.params_for(
                width=width,
                height=height,
                fmt=fmt,
                quality=quality,
                n=n,
                prompt=prompt,
                compression=90,
                transparent=background == "transparent",
                credit_cost=CREDITS[model][quality] * n,
            ),
            "request": dict(body),
            "inputs": names,
        }

    def created(self, job: Job) -> Response:
        return self.json({"jobId": job.id, "status": "QUEUED"}, status=202)

    def callback(self, job: Job, request: Request) -> webhooks.Plan | None:
        url = job.request.get("webhookUrl")
        key = self.api_key(request) or ""
        if not isinstance(url, str) or not url:
            return None
        events = job.request.get("webhookEvents") or ["completed", "failed"]

        def body(j: Job) -> dict[str, Any] | None:
            d = self.describe(j)
            event = "completed" if d["status"] == "COMPLETED" else "failed"
            if event not in events:
                return None
            fields = ("status", "progress", "result", "model", "creditCost", "completedAt") if event == "completed" \
                else ("status", "error", "model")
            return {"event": event, "jobId": d["id"], **{k: d[k] for k in fields}}

        def headers(raw: bytes, b: dict[str, Any]) -> dict[str, str]:
            return {"X-Webhook-Signature": webhooks.apiframe_signature(key, raw), "X-Webhook-Event": b["event"]}

        return webhooks.Plan(url, body, headers=headers)

    def describe(self, job: Job) -> dict[str, Any]:
        state, progress, finished = self.store.observe(job)
        result: Any = None
        if state == "succeeded":
            urls = self.store.result_urls(job)
            string_shape = self.store.apiframe_result_shape == "string" and len(urls) == 1
            result = urls[0] if string_shape else {"images": urls}
        return {
            "id": job.id,
            "status": STATUS[state],
            "model": job.model,
            "progress": progress,
            "result": result,
            "error": (job.error or {}).get("message") if state == "failed" else None,
            # Failed jobs are refunded (docs-v2 FAQ).
            "creditCost": 0 if state in ("failed", "canceled") else job.params["credit_cost"],
            "webhookStatus": None,
            "createdAt": iso(job.created_at),
            "completedAt": iso(finished),
        }

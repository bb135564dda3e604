"""core.today predictions API (asynchronous) under ``/coretoday/v1``.

Shapes from core.today's model page and API reference (console.core.today/docs). Where core.today
publishes nothing (failure/processing/cancel status names, the error body) the
emulator uses Replicate's words, since core.today relays Replicate:
statuses pending → processing → succeeded | failed | canceled, ``error`` a
string on failure, and errors ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import webhooks
from .common import RATIO_PIXELS, ProviderAPI, Refusal, bearer, is_bad_json, iso
from .files import new_token
from .store import QUEUE_FRACTION, Job

__all__ = ["CoreTodayAPI"]

MODEL = "openai/gpt-image-2"
STATUS = {"queued": "pending", "running": "processing", "succeeded": "succeeded", "failed": "failed",
          "canceled": "canceled"}  # fmt: skip
TOP_FIELDS = {"model", "input", "output_folder", "webhook_url", "webhook", "webhook_events", "is_public"}
INPUT_FIELDS = {
    "prompt", "input_images", "aspect_ratio", "quality", "background", "output_format", "output_compression",
    "moderation", "number_of_images", "user_id", "openai_api_key",
}  # fmt: skip
MAX_INPUT_BYTES = 50 * 1024 * 1024  # not published: OpenAI's own limit
PROMPT_LIMIT = 32000


class CoreTodayAPI(ProviderAPI):
    name = "coretoday"
    FAULTS = {
        "rate_limit": (429, "rate_limit_exceeded", "Too many requests: slow down and retry later", "rate_limit"),
        "quota": (402, "insufficient_credits", "Insufficient credits: top up your core.today balance", "billing"),
        "server_error": (500, "internal_error", "Internal server error", "server_error"),
        "auth": (401, "invalid_api_key", "Invalid API key", "authentication_error"),
        "model_not_found": (404, "model_not_found", f"Model {MODEL} not found", "invalid_request_error"),
    }
    FAILURES = {
        "job_failed": ("generation_failed", "Prediction failed: the model returned an error"),
        "moderation": (
            "content_policy_violation",
            "Your request was rejected by the safety system (content policy violation).",
        ),
    }

    def routes(self) -> list[Route]:
        return [
            Route("/coretoday/v1/predictions", self.create, methods=["POST"]),
            Route("/coretoday/v1/predictions/upload", self.create_upload, methods=["POST"]),
            Route("/coretoday/v1/predictions/{id}", self.poll, methods=["GET"]),
            Route("/coretoday/v1/predictions/{id}", self.cancel, methods=["DELETE"]),
            Route("/coretoday/{rest:path}", self.not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
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
        body: dict[str, Any] = {"code": code, "message": message}
        if param:
            body["param"] = param
        return JSONResponse({"error": body}, status_code=status, headers=headers)

    def api_key(self, request: Request) -> str | None:
        return request.headers.get("x-api-key") or bearer(request)

    def job_missing(self, job_id: str) -> Response:
        return self.error(404, "not_found", f"Prediction {job_id} not found")

    async def not_found(self, request: Request) -> Response:
        return self.error(404, "not_found", f"No route {request.method} {request.url.path}")

    # --- create ----------------------------------------------------------------------
    async def create(self, request: Request) -> Response:
        async def build(request: Request) -> dict[str, Any]:
            body = await self.read_json(request)
            if is_bad_json(body) or not isinstance(body, dict):
                raise self.refuse("The request body must be a JSON object", code="invalid_json")
            return await self._spec(body, [])

        return await self.submit(request, build)

    async def create_upload(self, request: Request) -> Response:
        async def build(request: Request) -> dict[str, Any]:
            if not request.headers.get("content-type", "").startswith("multipart/form-data"):
                raise self.refuse("predictions/upload takes multipart/form-data", code="invalid_content_type")
            try:
                form = await request.form(max_files=64, max_fields=64)
            except MultiPartException as e:
                raise self.refuse(f"Could not parse the multipart body: {e.message}", code="invalid_body") from e
            body: dict[str, Any] = {}
            uploads: list[tuple[str, bytes, str]] = []
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    if not key.startswith("file:"):
                        raise self.refuse(f"File part {key!r} must be named file:<input key>", param=key)
                    uploads.append((key.removeprefix("file:"), await value.read(), value.filename or key))
                elif key == "input":
                    try:
                        body["input"] = json.loads(value)
                    except ValueError:
                        raise self.refuse("input must be a JSON object (text)", param="input") from None
                elif key == "is_public":
                    body["is_public"] = value.lower() in ("1", "true", "yes")
                else:
                    body[key] = value
            return await self._spec(body, uploads)

        return await self.submit(request, build)

    async def _spec(self, body: dict[str, Any], uploads: list[tuple[str, bytes, str]]) -> dict[str, Any]:
        """A prediction's ``new_job`` arguments; checks run in the order core.today reports them."""
        inp = self._input(body)
        prompt = inp["prompt"]
        ratio = self.pick(inp, "aspect_ratio", tuple(RATIO_PIXELS), "1:1", "input.")
        quality = self.pick(inp, "quality", ("low", "medium", "high", "auto"), "auto", "input.")
        if inp.get("background") == "transparent":
            raise self.refuse(
                "input.background: transparent backgrounds are not supported; use auto or opaque",
                param="input.background",
            )
        self.pick(inp, "background", ("auto", "opaque"), "auto", "input.")
        fmt = self.pick(inp, "output_format", ("webp", "png", "jpeg"), "webp", "input.")
        compression = self.int_in(inp, "output_compression", 0, 100, 90, "input.")
        self.pick(inp, "moderation", ("auto", "low"), "auto", "input.")
        self.int_in(inp, "number_of_images", 1, 1, 1, "input.")
        folder = body.get("output_folder")
        if folder is not None and (not isinstance(folder, str) or len(folder) > 256 or ".." in folder):
            raise self.refuse("output_folder must be a path of at most 256 characters without '..'",
                              param="output_folder")  # fmt: skip
        names = await self._input_images(inp, uploads)
        width, height = RATIO_PIXELS[ratio]
        echo = {k: v for k, v in body.items() if k != "input"} | {"input": inp}
        return {
            "job_id": f"pred_{new_token(10)}",
            "model": MODEL,
            "params": self.params_for(
                width=width, height=height, fmt=fmt, quality=quality, n=1, prompt=prompt, compression=compression
            ),
            "request": echo,
            "inputs": names,
        }

    def _input(self, body: dict[str, Any]) -> dict[str, Any]:
        """The top-level fields and the model checked; a copy of ``input`` with a checked prompt."""
        self.only_keys(body, TOP_FIELDS)
        model = body.get("model")
        if not model:
            raise self.refuse("model is required", param="model")
        if model != MODEL:
            raise Refusal(self.error(404, "model_not_found", f"Model {model!r} not found; use {MODEL}", param="model"))
        inp = body.get("input")
        if not isinstance(inp, dict):
            raise self.refuse("input is required and must be an object", param="input")
        inp = dict(inp)
        self.only_keys(inp, INPUT_FIELDS, "input.")
        prompt = inp.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise self.refuse("input.prompt is required", param="input.prompt")
        if len(prompt) > PROMPT_LIMIT:
            raise self.refuse(f"input.prompt is longer than {PROMPT_LIMIT} characters", param="input.prompt")
        return inp

    async def _input_images(self, inp: dict[str, Any], uploads: list[tuple[str, bytes, str]]) -> list[str]:
        """Fetch the URL inputs and keep the uploaded files; ``inp`` is updated to echo the hosted copies."""
        urls = self.url_list(inp.get("input_images"), "input.input_images")
        for key, _, _ in uploads:
            if key != "input_images":
                raise self.refuse(f"file:{key}: only input_images takes files", param=f"file:{key}")
        names = await self.files.fetch_inputs(urls, max_bytes=MAX_INPUT_BYTES, field="input.input_images")
        for _, data, filename in uploads:
            if len(data) > MAX_INPUT_BYTES:
                raise self.refuse(f"{filename} is larger than 50 MB", param="file:input_images")
            name = self.files.keep_image(data, label=filename, field="file:input_images")
            names.append(name)
            urls = [*urls, self.store.upload_url(name)]  # the echoed input lists the hosted copy
        if urls:
            inp["input_images"] = urls
        return names

    def created(self, job: Job) -> Response:
        # The API reference answers `id`; the upload example reads `job_id`: give both.
        return self.json(
            {
                "id": job.id,
                "job_id": job.id,
                "status": "pending",
                "model": job.model,
                "input": job.request.get("input"),
                "output": None,
                "error": None,
                "created_at": iso(job.created_at),
            }
        )

    # --- poll / cancel -----------------------------------------------------------------
    def callback(self, job: Job, request: Request) -> webhooks.Plan | None:
        url = job.request.get("webhook") or job.request.get("webhook_url")
        if not isinstance(url, str) or not url:
            return None
        return webhooks.Plan(url, self.describe)

    def describe(self, job: Job) -> dict[str, Any]:
        state, _, finished = self.store.observe(job)
        queue = job.job_time * QUEUE_FRACTION
        body: dict[str, Any] = {
            "id": job.id,
            "job_id": job.id,
            "status": STATUS[state],
            "model": job.model,
            "input": job.request.get("input"),
            "output": self.store.result_urls(job) if state == "succeeded" else None,
            "error": job.error["message"] if state == "failed" and job.error else None,
            "created_at": iso(job.created_at),
            "started_at": None if state == "queued" else iso(job.created_at + queue),
            "completed_at": iso(finished),
        }
        if state == "succeeded" and finished is not None:
            total = finished - job.created_at
            body["metrics"] = {
                "total_time": round(total, 3),
                "queue_time": round(queue, 3),
                "run_time": round(total - queue, 3),
            }
        return body

    async def cancel(self, request: Request) -> Response:
        job_id = request.path_params["id"]
        stop, fault = await self.begin(request, "status")
        if stop is not None:
            return stop
        if fault is not None:
            self.store.give_back(fault)
        job = self.store.get(job_id)
        if job is None or job.provider != self.name:
            return self.job_missing(job_id)
        # Like Replicate: canceling a finished prediction answers it unchanged.
        self.store.cancel(job)
        return self.json(self.describe(job))

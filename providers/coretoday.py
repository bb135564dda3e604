"""core.today (Korean aggregator relaying Replicate's openai/gpt-image-2).

``POST /v1/predictions`` JSON ``{model, input}``, or ``POST /v1/predictions/upload``
multipart when local images are given; poll ``GET /v1/predictions/{id}``; cancel
``DELETE /v1/predictions/{id}``; results are ``output[]`` URLs. One image per call:
the caller makes ``n`` calls. Facts: core.today's model page
(https://console.core.today/en/docs/models/openai/gpt-image-2) and API reference
(https://console.core.today/docs/api-reference). Failure and processing status names
are not published, so the Replicate names are accepted too.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from . import validation
from .errors import InvalidRequest, JobCanceled, JobFailed, ModerationBlocked, ProviderError, ProviderUnavailable
from .http import CreateCall, HttpProvider
from .types import ImageRequest, JobState, JobStatus, ModelCaps

__all__ = ["MODELS", "CoreTodayProvider"]

LABEL = "core.today"

MODELS: dict[str, ModelCaps] = {
    "gpt-image-2": ModelCaps(
        provider="coretoday",
        provider_label=LABEL,
        model="openai/gpt-image-2",
        label="GPT Image 2",
        qualities=("auto", "low", "medium", "high"),
        default_quality="auto",
        sizes=("1:1", "3:2", "2:3"),
        backgrounds=("auto", "opaque"),
        output_formats=("webp", "png", "jpeg"),
        default_output_format="webp",
        compression=True,
        moderations=("auto", "low"),
        max_images_per_call=1,  # number_of_images is fixed at 1: "call multiple times for batches"
        max_n=10,
        max_input_images=16,
        accepts_local_files=True,  # via POST /v1/predictions/upload
        prompt_limit=32000,
        can_cancel=True,
        expected_seconds=45.0,  # relays Replicate: example runs took 41-46 s (cloudernative.com, 3P)
        notes="Priced in credits: 480 high/auto, 176 medium, 45 low per image (1 credit about $0.001).",
    ),
}

_STATES: dict[str, JobState] = {
    "pending": "queued",
    "queued": "queued",
    "starting": "running",
    "processing": "running",
    "running": "running",
    "succeeded": "succeeded",
    "completed": "succeeded",
    "failed": "failed",
    "error": "failed",
    "canceled": "canceled",
    "cancelled": "canceled",
}
_MODERATION_WORDS = ("moderation", "content policy", "content_policy", "safety system", "nsfw")


class CoreTodayProvider(HttpProvider):
    accepts_callback = True
    name = "coretoday"
    label = LABEL
    key_env = "CORETODAY_API_KEY"
    base_url_env = "CORETODAY_BASE_URL"
    default_base_url = "https://api.core.today"
    key_help = "Keys are issued in the core.today console (https://console.core.today)."
    MODELS: ClassVar[dict[str, ModelCaps]] = MODELS
    default_model = "gpt-image-2"
    key_header = "X-API-Key"
    version_suffix = "/v1"

    def submit(self, request: ImageRequest, *, idempotency_key: str | None = None) -> JobStatus:
        if request.n != 1:
            raise validation_error_n(request.n)
        return self._status(self.send_create(request, idempotency_key=idempotency_key))

    def create_call(
        self, request: ImageRequest, *, idempotency_key: str | None = None, display: bool = False
    ) -> CreateCall:
        caps = self.caps(request.model)
        inputs = self._input(request, caps)
        local = [image for image in request.images if image.is_local]
        urls = [image.url for image in request.images if image.url is not None]
        if urls:
            inputs["input_images"] = urls
        hook = self._callback(request)
        if not local:
            return CreateCall("/v1/predictions", json={"model": caps.model, "input": inputs, **hook})
        # One file:input_images part per file; the server appends them to input.input_images.
        files = tuple(
            ("file:input_images", (image.name, b"" if display else image.data or b"", image.mime or "image/png"))
            for image in local
        )
        return CreateCall(
            "/v1/predictions/upload",
            data={"model": caps.model, "input": json.dumps(inputs),
                  **{k: v if isinstance(v, str) else json.dumps(v) for k, v in hook.items()}},
            files=files,
        )

    @staticmethod
    def _callback(request: ImageRequest) -> dict[str, Any]:
        # core.today's API reference: "webhook" and "webhook_events" (its seed document says webhook_url;
        # the reference is the newer statement). Its payload is not documented: the app confirms by a read.
        if not request.callback_url:
            return {}
        return {"webhook": request.callback_url, "webhook_events": ["completed"]}

    def status(self, job_id: str) -> JobStatus:
        self.require_key()
        return self._status(self.get_job(f"/v1/predictions/{job_id}", job_id), job_id)

    def cancel(self, job_id: str) -> None:
        self.require_key()
        self.http.delete(f"/v1/predictions/{job_id}")

    # --- wire format --------------------------------------------------------------------
    def _input(self, request: ImageRequest, caps: ModelCaps) -> dict[str, Any]:
        inputs: dict[str, Any] = {
            "prompt": request.prompt,
            "aspect_ratio": validation.wire_size(request.size.strip().lower(), caps) or request.size,
            "quality": request.quality,
            "background": request.background,
            "output_format": request.output_format,
            "moderation": request.moderation,
            "number_of_images": 1,
        }
        if request.output_compression is not None:
            inputs["output_compression"] = request.output_compression
        return inputs

    def _status(self, body: Any, job_id: str | None = None) -> JobStatus:
        if not isinstance(body, dict):
            raise ProviderUnavailable(
                "core.today answered with something this app cannot read.",
                provider=self.name,
                code="malformed",
                detail=str(body)[:2000],
                sent=True,
            )
        job_id = str(body.get("id") or body.get("job_id") or job_id or "")
        if not job_id:
            raise ProviderUnavailable(
                "core.today accepted the request but sent no job id.",
                provider=self.name,
                code="malformed",
                detail=json.dumps(body)[:2000],
                sent=True,
            )
        raw_state = str(body.get("status") or "pending").lower()
        state = _STATES.get(raw_state)
        if state is None:
            raise ProviderUnavailable(
                f"core.today reported an unknown job status {raw_state!r}.",
                provider=self.name,
                code="malformed",
                detail=json.dumps(body)[:2000],
                sent=True,
            )
        output = body.get("output")
        if isinstance(output, str):
            output = [output]
        urls = tuple(u for u in (output or []) if isinstance(u, str)) if state == "succeeded" else ()
        error: ProviderError | None = None
        if state == "failed":
            error = self._failure(body, job_id)
        elif state == "canceled":
            error = JobCanceled("The core.today job was canceled.", provider=self.name, sent=True)
        progress = body.get("progress")
        return JobStatus(
            job_id=job_id,
            state=state,
            progress=_number(progress) if _number(progress) is not None else (100.0 if state == "succeeded" else None),
            estimated_seconds=_number(body.get("estimated_time")),
            result_urls=urls,
            billed=_billed(body),
            error=error,
            can_cancel=state in ("queued", "running"),
            raw={k: v for k, v in body.items() if k != "input"},
        )

    def _failure(self, body: dict[str, Any], job_id: str) -> ProviderError:
        err = body.get("error")
        if isinstance(err, dict):
            message, code = str(err.get("message") or err), err.get("code")
        else:
            message, code = str(err or "no reason given"), None
        text = f"{code or ''} {message}".lower()
        if any(word in text for word in _MODERATION_WORDS):
            stage = err.get("stage") if isinstance(err, dict) else None
            return ModerationBlocked(
                "core.today's safety filter refused this request. Reword the prompt or change the input images."
                f" core.today said: {message}",
                stage=stage,
                billed=None,
                provider=self.name,
                code=code or "moderation",
                detail=message,
                sent=True,
            )
        return JobFailed(
            f"core.today could not make the image: {message}. Try again, or change the prompt.",
            code=str(code) if code else "failed",
            provider=self.name,
            detail=json.dumps(body)[:2000],
            sent=True,
        )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _billed(body: dict[str, Any]) -> dict[str, Any] | None:
    # Not published: take whichever credit field the answer carries.
    for key in ("credits", "credit_cost", "creditCost", "cost", "credits_used"):
        if key in body and body[key] is not None:
            return {"credits": body[key]}
    return None


def validation_error_n(n: int) -> ProviderError:
    return InvalidRequest(
        f"core.today makes one image per call; send {n} separate requests (the job runner does this for you).",
        field="n",
        value=n,
        allowed=[1],
        provider="coretoday",
    )

"""Apiframe v2: one generate endpoint for many models, asynchronous jobs.

``POST /v2/images/generate`` with the model's parameters nested under
``gptImage2Params`` (gpt-image-2) or ``gptImageParams`` (gpt-image-1.5); poll
``GET /v2/jobs/{id}``. Every create carries an ``Idempotency-Key``, so it is safe
to resend: the same key returns the same job. Input images are URLs only.
Facts: Apiframe's v2 docs (https://docs-v2.apiframe.ai/docs/images/gpt-image-2,
https://docs-v2.apiframe.ai/docs/jobs/get).
"""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any, ClassVar

from . import validation
from .errors import JobFailed, ModerationBlocked, ProviderError, ProviderUnavailable, QuotaExceeded
from .http import CreateCall, ErrorInfo, HttpProvider
from .types import ImageRequest, JobState, JobStatus, ModelCaps

__all__ = ["MODELS", "ApiframeProvider"]

LABEL = "Apiframe"

_COMMON: dict[str, Any] = {
    "provider": "apiframe",
    "provider_label": LABEL,
    "qualities": ("auto", "low", "medium", "high"),
    "default_quality": "auto",
    "sizes": ("1:1", "3:2", "2:3"),
    "output_formats": ("webp", "png", "jpeg"),
    "default_output_format": "webp",
    "compression": False,  # no output_compression parameter is documented
    "moderations": ("auto", "low"),
    "max_images_per_call": 10,  # number_of_images 1-10
    "max_n": 10,
    "max_input_images": 16,
    "accepts_local_files": False,  # input_images are URLs; local files need an uploader
    "prompt_limit": 2000,
    "can_cancel": False,
    "expected_seconds": 15.0,  # "average completion time ~15s" (seed)
}

MODELS: dict[str, ModelCaps] = {
    "gpt-image-2": ModelCaps(
        model="gpt-image-2",
        label="GPT Image 2",
        backgrounds=("auto", "opaque"),
        notes="Credits per image: low 4, medium 9, high/auto 23 (docs-v2). Results kept 3 months.",
        **_COMMON,
    ),
    "gpt-image-1.5": ModelCaps(
        model="gpt-image-1.5",
        label="GPT Image 1.5",
        backgrounds=("auto", "opaque", "transparent"),
        input_fidelities=("low", "high"),
        # Apiframe relays OpenAI, which shuts gpt-image-1.5 down on 2026-12-01.
        shutdown=date(2026, 12, 1),
        replacement="gpt-image-2",
        recommended="gpt-image-2.6-sunburst or gpt-image-2.6-flare",
        notes="Credits per image differ between two doc snapshots (low 2-4, medium 5-9, high/auto 14-24).",
        **_COMMON,
    ),
}

_PARAMS_KEY = {"gpt-image-2": "gptImage2Params", "gpt-image-1.5": "gptImageParams"}
_STATES: dict[str, JobState] = {
    "QUEUED": "queued",
    "PENDING": "queued",
    "PROCESSING": "running",
    "RUNNING": "running",
    "COMPLETED": "succeeded",
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "CANCELED": "canceled",
    "CANCELLED": "canceled",
}


class ApiframeProvider(HttpProvider):
    accepts_callback = True
    name = "apiframe"
    label = LABEL
    key_env = "APIFRAME_API_KEY"
    base_url_env = "APIFRAME_BASE_URL"
    default_base_url = "https://api.apiframe.ai"
    key_help = "Keys are issued in the Apiframe dashboard (https://apiframe.ai)."
    MODELS: ClassVar[dict[str, ModelCaps]] = MODELS
    default_model = "gpt-image-2"
    key_header = "X-API-Key"
    version_suffix = "/v2"
    idempotent_create = True
    charges_failed_jobs = False  # FAQ: a FAILED job has creditCost 0, credits refunded

    def submit(self, request: ImageRequest, *, idempotency_key: str | None = None) -> JobStatus:
        # Always an idempotency key (same key -> same job), so a resend cannot create a second job.
        return self._status(self.send_create(request, idempotency_key=idempotency_key or str(uuid.uuid4())))

    def create_call(
        self, request: ImageRequest, *, idempotency_key: str | None = None, display: bool = False
    ) -> CreateCall:
        caps = self.caps(request.model)
        params: dict[str, Any] = {
            "aspect_ratio": validation.wire_size(request.size.strip().lower(), caps) or request.size,
            "quality": request.quality,
            "background": request.background,
            "number_of_images": request.n,
            "output_format": request.output_format,
            "moderation": request.moderation,
        }
        if request.images:
            urls = self.image_urls(request.images, display=display)
            # The seed shows one URL as a string; docs-v2 documents string[]: one -> string, several -> list.
            params["input_images"] = urls[0] if len(urls) == 1 else urls
            if request.input_fidelity is not None and caps.input_fidelities:
                params["input_fidelity"] = request.input_fidelity
        body = {"prompt": request.prompt, "model": caps.model, _PARAMS_KEY.get(caps.model, "gptImage2Params"): params}
        if request.callback_url:  # Apiframe's webhooks page: signed with X-Webhook-Signature
            body |= {"webhookUrl": request.callback_url, "webhookEvents": ["completed", "failed"]}
        return CreateCall(
            "/v2/images/generate", json=body, headers={"Idempotency-Key": idempotency_key or "<a unique key>"}
        )

    def status(self, job_id: str) -> JobStatus:
        self.require_key()
        return self._status(self.get_job(f"/v2/jobs/{job_id}", job_id), job_id)

    # --- wire format --------------------------------------------------------------------
    def _status(self, body: Any, job_id: str | None = None) -> JobStatus:
        if not isinstance(body, dict):
            raise ProviderUnavailable(
                "Apiframe answered with something this app cannot read.",
                provider=self.name,
                code="malformed",
                detail=str(body)[:2000],
                sent=True,
            )
        job_id = str(body.get("jobId") or body.get("id") or job_id or "")
        raw_state = str(body.get("status") or "").upper()
        state = _STATES.get(raw_state)
        if not job_id or state is None:
            raise ProviderUnavailable(
                "Apiframe answered without a job id or with an unknown status.",
                provider=self.name,
                code="malformed",
                detail=json.dumps(body)[:2000],
                sent=True,
            )
        credits = body.get("creditCost")
        error: ProviderError | None = None
        if state == "failed":
            error = self._failure(body)
        progress = body.get("progress")
        return JobStatus(
            job_id=job_id,
            state=state,
            progress=float(progress) if isinstance(progress, (int, float)) else None,
            result_urls=_result_urls(body.get("result")) if state == "succeeded" else (),
            billed={"credits": credits} if credits is not None else None,
            error=error,
            can_cancel=False,
            raw=body,
        )

    def _failure(self, body: dict[str, Any]) -> ProviderError:
        err = body.get("error")
        message = str(err.get("message") if isinstance(err, dict) else err or "no reason given")
        if "content policy" in message.lower() or "moderation" in message.lower():
            return ModerationBlocked(
                "Apiframe's provider refused this request under its content policy. Reword the prompt or change "
                f"the input images; failed jobs are not charged. Apiframe said: {message}",
                billed=False,
                provider=self.name,
                code="content_policy_violation",
                detail=message,
                sent=True,
            )
        return JobFailed(
            f"Apiframe could not make the image: {message}. Try again, or change the prompt.",
            code=(err.get("code") if isinstance(err, dict) else None) or "failed",
            provider=self.name,
            detail=json.dumps(body)[:2000],
            sent=True,
        )

    def _error_hook(self, info: ErrorInfo) -> ProviderError | None:
        if info.status == 409 and "in progress" in info.message.lower():
            # An earlier attempt with this Idempotency-Key is still being handled: retry shortly,
            # and the answer will be that attempt's job.
            return ProviderUnavailable(
                "Apiframe is still handling an earlier attempt of this request. Try again in a moment.",
                provider=self.name,
                code=info.code or "idempotency_in_progress",
            )
        if info.status == 402:
            return QuotaExceeded(
                f"Your Apiframe account does not have enough credits. Top it up at https://apiframe.ai, then try "
                f"again. Apiframe said: {info.message}",
                provider=self.name,
                code=info.code or "insufficient_credits",
            )
        return None


def _result_urls(result: Any) -> tuple[str, ...]:
    """``result`` is a URL string (docs-v2) or ``{"images": [...]}`` (apiframe.ai/docs): take both."""
    if isinstance(result, str):
        return (result,)
    if isinstance(result, list):
        return tuple(u for u in result if isinstance(u, str))
    if isinstance(result, dict):
        images = result.get("images") or result.get("urls") or ([result["url"]] if "url" in result else [])
        if isinstance(images, str):
            return (images,)
        return tuple(u for u in images if isinstance(u, str))
    return ()

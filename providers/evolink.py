"""EvoLink: an OpenAI-like path that is asynchronous.

``POST /v1/images/generations`` answers with a task object; poll
``GET /v1/tasks/{id}``; ``results`` are URLs valid for 24 hours, so ``result()``
downloads them at once. Input images are URLs only (``image_urls``).

No public source documents a cancel endpoint (docs.evolink.ai lists task detail
and error codes only, though tasks carry ``task_info.can_cancel``), so this
adapter cannot cancel. Facts: docs.evolink.ai's gpt-image-2 and gpt-image-1 pages
(https://docs.evolink.ai/en/api-manual/image-series/gpt-image-2/gpt-image-2-image-generation)
and its task-detail page.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from . import validation
from .errors import JobCanceled, JobFailed, ModerationBlocked, ProviderError, ProviderUnavailable
from .http import CreateCall, HttpProvider, is_loopback_host
from .types import ImageRequest, JobState, JobStatus, ModelCaps

__all__ = ["MODELS", "EvoLinkProvider"]

LABEL = "EvoLink"
_RATIOS = ("1:1", "1:2", "2:1", "1:3", "3:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "9:21", "21:9")

_COMMON: dict[str, Any] = {
    "provider": "evolink",
    "provider_label": LABEL,
    "qualities": ("low", "medium", "high"),
    "default_quality": "high",  # "auto" is accepted by validation and means: send no quality
    "backgrounds": (),
    "output_formats": (),
    "compression": False,
    "moderations": (),
    "max_images_per_call": 10,  # n 1-10 in one task
    "max_n": 10,
    "max_input_images": 16,
    "accepts_local_files": False,
    "can_cancel": False,
}

MODELS: dict[str, ModelCaps] = {
    "gpt-image-2": ModelCaps(
        model="gpt-image-2",
        label="GPT Image 2",
        sizes=(*_RATIOS, "auto"),
        free_size=True,
        resolutions=("1K", "2K", "4K"),
        max_input_bytes=50 * 1024 * 1024,
        prompt_limit=32000,
        notes="Ratio sizes take a 1K/2K/4K resolution; WxH follows the gpt-image-2 rules. Results kept 24 h.",
        **_COMMON,
    ),
    # The beta channel (https://evolink.ai/gpt-image-2?model=gpt-image-2-beta): one image per call, no
    # quality tiers, priced per call by resolution. Pixel sizes are not documented for it: ratios only.
    "gpt-image-2-beta": ModelCaps(
        model="gpt-image-2-beta",
        label="GPT Image 2 (beta channel)",
        sizes=_RATIOS,
        resolutions=("1K", "2K", "4K"),
        max_input_bytes=50 * 1024 * 1024,
        prompt_limit=32000,
        notes="EvoLink's beta channel: one image per call, no quality choice, priced by resolution "
        "($0.015 / $0.025 / $0.039 per image on EvoLink's page).",
        **(_COMMON | {"qualities": ("auto",), "default_quality": "auto", "max_images_per_call": 1}),
    ),
    "gpt-image-1": ModelCaps(
        model="gpt-image-1",
        label="GPT Image 1",
        sizes=("1:1", "2:3", "3:2", "1024x1024", "1024x1536", "1536x1024"),
        max_input_bytes=10 * 1024 * 1024,
        prompt_limit=2000,
        prompt_limit_unit="tokens",
        replacement="gpt-image-2",
        recommended="gpt-image-2.5-sunburst or gpt-image-2.5-flare",
        caution="OpenAI shut GPT Image 1 down on 2026-10-23. EvoLink still lists it (https://evolink.ai/gpt-image-1) "
        "with no notice, but whether it still routes it is not confirmed: a job may fail. GPT Image 2 is the safe "
        "choice.",
        notes="Prompt up to 2,000 tokens; sizes 1:1, 2:3, 3:2 and their pixel forms.",
        **_COMMON,
    ),
}

_STATES: dict[str, JobState] = {
    "pending": "queued",
    "queued": "queued",
    "processing": "running",
    "running": "running",
    "completed": "succeeded",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "canceled",
    "canceled": "canceled",
}


class EvoLinkProvider(HttpProvider):
    accepts_callback = True
    name = "evolink"
    label = LABEL
    key_env = "EVOLINK_API_KEY"
    base_url_env = "EVOLINK_BASE_URL"
    default_base_url = "https://api.evolink.ai"
    key_help = "Keys are issued on EvoLink's API key page (https://evolink.ai)."
    MODELS: ClassVar[dict[str, ModelCaps]] = MODELS
    default_model = "gpt-image-2"
    version_suffix = "/v1"
    charges_failed_jobs = False  # error-codes page: failed tasks are not charged (reserved credits returned)

    def submit(self, request: ImageRequest, *, idempotency_key: str | None = None) -> JobStatus:
        return self._status(self.send_create(request, idempotency_key=idempotency_key))

    def create_call(
        self, request: ImageRequest, *, idempotency_key: str | None = None, display: bool = False
    ) -> CreateCall:
        caps = self.caps(request.model)
        body: dict[str, Any] = {
            "model": caps.model,
            "prompt": request.prompt,
            "size": validation.wire_size(request.size.strip().lower(), caps) or request.size,
            "n": request.n,
        }
        if request.quality in caps.qualities and request.quality != "auto":  # auto: EvoLink's default (high)
            body["quality"] = request.quality
        if request.resolution is not None:
            body["resolution"] = request.resolution
        if request.images:
            body["image_urls"] = self.image_urls(request.images, display=display)
        if request.callback_url and (request.callback_url.startswith("https://") or self._to_loopback()):
            # EvoLink takes only HTTPS callbacks to public addresses (its gpt-image-2-beta page); the
            # emulator on loopback takes any, so the path is tested offline.
            body["callback_url"] = request.callback_url
        return CreateCall("/v1/images/generations", json=body)

    def _to_loopback(self) -> bool:
        return is_loopback_host(self.http.base_url.host)

    def status(self, job_id: str) -> JobStatus:
        self.require_key()
        return self._status(self.get_job(f"/v1/tasks/{job_id}", job_id), job_id)

    # --- wire format --------------------------------------------------------------------
    def _status(self, body: Any, job_id: str | None = None) -> JobStatus:
        if not isinstance(body, dict):
            raise ProviderUnavailable(
                "EvoLink answered with something this app cannot read.",
                provider=self.name,
                code="malformed",
                detail=str(body)[:2000],
                sent=True,
            )
        job_id = str(body.get("id") or job_id or "")
        state = _STATES.get(str(body.get("status") or "").lower())
        if not job_id or state is None:
            raise ProviderUnavailable(
                "EvoLink answered without a task id or with an unknown status.",
                provider=self.name,
                code="malformed",
                detail=json.dumps(body)[:2000],
                sent=True,
            )
        error: ProviderError | None = None
        if state == "failed":
            raw_error = body.get("error")
            err = raw_error if isinstance(raw_error, dict) else {"message": raw_error}
            if err.get("code") == "request_cancelled":
                state = "canceled"
            error = self._failure(err, body)
        elif state == "canceled":
            error = JobCanceled("The EvoLink task was canceled.", provider=self.name, sent=True)
        task_info = _object(body.get("task_info"))
        usage = _object(body.get("usage"))
        progress = body.get("progress")
        results = body.get("results") or []
        return JobStatus(
            job_id=job_id,
            state=state,
            progress=float(progress) if isinstance(progress, (int, float)) else None,
            estimated_seconds=_number(task_info.get("estimated_time")),
            result_urls=tuple(u for u in results if isinstance(u, str)) if state == "succeeded" else (),
            billed={"credits_reserved": usage["credits_reserved"]} if "credits_reserved" in usage else None,
            error=error,
            can_cancel=False,  # task_info.can_cancel is reported, but no cancel endpoint is documented
            raw=body,
        )

    def _failure(self, err: dict[str, Any], body: dict[str, Any]) -> ProviderError:
        code = str(err.get("code") or "failed")
        message = str(err.get("message") or "no reason given")
        if code == "request_cancelled":
            return JobCanceled(
                f"The EvoLink task was canceled. EvoLink said: {message}", provider=self.name, code=code, sent=True
            )
        if code == "content_policy_violation":
            return ModerationBlocked(
                "EvoLink's content filter refused this request. Reword the prompt or change the input images; "
                f"failed tasks are not charged. EvoLink said: {message}",
                stage=err.get("stage"),
                billed=False,
                provider=self.name,
                code=code,
                detail=message,
                sent=True,
            )
        return JobFailed(
            f"EvoLink could not make the image ({code}): {message}. Try again, or change the request.",
            code=code,
            provider=self.name,
            detail=json.dumps(body)[:2000],
            sent=True,
        )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _object(value: Any) -> dict[str, Any]:
    """A JSON object field, or an empty one when EvoLink sent something else (or nothing)."""
    return value if isinstance(value, dict) else {}

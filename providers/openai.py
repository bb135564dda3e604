"""OpenAI's Images API, direct: synchronous, images inline as base64.

``POST /v1/images/generations`` (JSON) and ``POST /v1/images/edits`` (multipart).
A submit answers with a finished ``JobStatus``; there is nothing to poll or cancel.
Facts and sources: OpenAI's API reference (https://developers.openai.com/api/reference/resources/images)
and the types of the official ``openai`` Python package (3.57: ``image_generate_params.py``,
``image_edit_params.py``, ``images_response.py``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator
from datetime import date
from typing import Any, ClassVar

from . import imagegate, validation
from .errors import (
    InvalidRequest,
    ModelUnavailable,
    ModerationBlocked,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
)
from .http import CreateCall, ErrorInfo, HttpProvider, image_format
from .sse import SseEvent
from .types import (
    MIME_BY_FORMAT,
    ImageRequest,
    InputImage,
    JobStatus,
    ModelCaps,
    OutputImage,
    PartialImage,
    PreviewSink,
)

__all__ = ["MODELS", "OpenAIProvider"]

_GPT2_SIZES = (
    "1024x1024",
    "1536x1024",
    "1024x1536",
    "2048x2048",
    "2048x1152",
    "1152x2048",
    "3840x2160",
    "2160x3840",
    "auto",
)
LABEL = "OpenAI"
_GPT1_SIZES = ("1024x1024", "1536x1024", "1024x1536", "auto")
_FORMATS = ("png", "jpeg", "webp")


def _caps(model: str, label: str, **kw: Any) -> ModelCaps:
    base: dict[str, Any] = {
        "provider": "openai",
        "provider_label": LABEL,
        "model": model,
        "label": label,
        "qualities": ("auto", "low", "medium", "high"),
        "default_quality": "auto",
        "sizes": _GPT2_SIZES,
        "free_size": True,
        "backgrounds": ("auto", "opaque"),
        "output_formats": _FORMATS,
        "default_output_format": "png",
        "compression": True,
        "moderations": ("auto", "low"),
        "moderation_on_edits": False,  # the edits endpoint has no moderation parameter
        "max_images_per_call": 10,
        "max_n": 10,
        "max_input_images": 16,
        "max_input_bytes": 50 * 1024 * 1024,
        "accepts_local_files": True,
        "accepts_mask": True,
        "mask_max_bytes": 4 * 1024 * 1024,
        "prompt_limit": 32000,
        "can_cancel": False,
        # stream + partial_images 0-3 on generations and edits, every GPT Image model (openai 3.57).
        "max_partial_images": 3,
        "takes_safety_identifier": True,  # openai 3.57, generate and edit
    }
    base.update(kw)
    return ModelCaps(**base)


_GPT1 = {
    "sizes": _GPT1_SIZES,
    "free_size": False,
    "backgrounds": ("auto", "opaque", "transparent"),
    "replacement": "gpt-image-2",
}
# OpenAI's deprecations page (https://developers.openai.com/api/docs/deprecations, read
# 2026-12-01): the successors it names for the models shut down on 2026-12-01.
_DEC_1 = {"shutdown": date(2026, 12, 1), "recommended": "gpt-image-2.6-sunburst or gpt-image-2.6-flare"}
_SOURCE = "https://developers.openai.com/api/docs/deprecations"

MODELS: dict[str, ModelCaps] = {
    "gpt-image-2": _caps(
        "gpt-image-2",
        "GPT Image 2",
        notes="Any WxH in multiples of 16 (ratio up to 3:1, 655,360-8,294,400 px); above 2560x1440 is "
        "experimental. Transparent background is in preview only, so not offered. Input fidelity is automatic "
        "(the openai package 3.57: 'For gpt-image-2, omit this parameter').",
    ),
    "gpt-image-2.6-sunburst": _caps(
        "gpt-image-2.6-sunburst",
        "GPT Image 2.6 Sunburst",
        backgrounds=("auto", "opaque", "transparent"),
        notes="Released 2026-11-04. Token prices from OpenAI's model page; how many output tokens each quality "
        "uses is not published, so estimates assume gpt-image-2's counts and the bill follows the usage.",
    ),
    "gpt-image-2.6-flare": _caps(
        "gpt-image-2.6-flare",
        "GPT Image 2.6 Flare",
        backgrounds=("auto", "opaque", "transparent"),
        notes="Released 2026-11-04. Token prices confirmed only by third parties; output tokens per quality are "
        "not published, so estimates assume gpt-image-2's counts and the bill follows the usage.",
    ),
    "gpt-image-2.5-sunburst": _caps(
        "gpt-image-2.5-sunburst",
        "GPT Image 2.5 Sunburst",
        qualities=("auto", "low", "medium", "high", "xhigh", "max"),
        backgrounds=("auto", "opaque", "transparent"),
        notes="Adds quality xhigh and max (openai package 3.57). The same token prices as gpt-image-2, but "
        "fewer output tokens per quality: max costs what gpt-image-2's high does (OpenAI's token calculator).",
    ),
    "gpt-image-2.5-flare": _caps(
        "gpt-image-2.5-flare",
        "GPT Image 2.5 Flare",
        qualities=("auto", "low", "medium", "high", "xhigh", "max"),
        backgrounds=("auto", "opaque", "transparent"),
        notes="Adds quality xhigh and max (openai package 3.57). The same token prices as gpt-image-2, but "
        "fewer output tokens per quality: max costs what gpt-image-2's high does (OpenAI's token calculator).",
    ),
    "gpt-image-1.5": _caps(
        "gpt-image-1.5",
        "GPT Image 1.5",
        input_fidelities=("low", "high"),
        notes=f"Deprecated by OpenAI; shut down on 2026-12-01 ({_SOURCE}).",
        **_GPT1,
        **_DEC_1,
    ),
    "gpt-image-1-mini": _caps(
        "gpt-image-1-mini",
        "GPT Image 1 Mini",
        input_fidelities=("low",),  # the openai package 3.57: "gpt-image-1-mini supports only low"
        notes=f"Deprecated by OpenAI; shut down on 2026-12-01 ({_SOURCE}). Input fidelity low only.",
        **_GPT1,
        **_DEC_1,
    ),
    "gpt-image-1": _caps(
        "gpt-image-1",
        "GPT Image 1",
        input_fidelities=("low", "high"),
        shutdown=date(2026, 10, 23),
        recommended="gpt-image-2.5-sunburst or gpt-image-2.5-flare",
        notes="Shut down by OpenAI on 2026-10-23 (the openai package 3.57: 'Use gpt-image-2.5-sunburst or "
        "gpt-image-2.5-flare instead').",
        **_GPT1,
    ),
}


def safety_identifier(user: str) -> str:
    """What OpenAI asks to send for a person: a hash of their username or email, never the address itself."""
    return hashlib.sha256(user.strip().lower().encode()).hexdigest()


def _form_value(value: Any) -> str:
    """A multipart field: booleans as JSON writes them ("true"), as the openai client sends them."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _ignore(_preview: PartialImage) -> None:
    return None


class OpenAIProvider(HttpProvider):
    name = "openai"
    label = LABEL
    key_env = "OPENAI_API_KEY"
    base_url_env = "OPENAI_BASE_URL"
    default_base_url = "https://api.openai.com"
    key_help = "Keys are issued at https://platform.openai.com/api-keys."
    MODELS: ClassVar[dict[str, ModelCaps]] = MODELS
    default_model = "gpt-image-2"
    synchronous = True
    version_suffix = "/v1"
    # One synchronous call renders the image: high quality at large sizes takes minutes.
    default_read_timeout = 120.0

    # --- wire format ------------------------------------------------------------------
    def submit(self, request: ImageRequest, *, idempotency_key: str | None = None) -> JobStatus:
        if validation.streamed_previews(request, self.caps(request.model)):  # asked to stream: nobody watches
            return self.submit_streaming(request, idempotency_key=idempotency_key, on_preview=_ignore)
        return self._finished(self.send_create(request, idempotency_key=idempotency_key), request)

    def submit_streaming(
        self, request: ImageRequest, *, idempotency_key: str | None = None, on_preview: PreviewSink
    ) -> JobStatus:
        """The create with ``stream=true``: each partial image goes to ``on_preview`` as it arrives,
        the completed event becomes the finished status (image and usage, as ``submit`` gives them).

        A stream that breaks or ends before its completed event is a create that may have been
        made and charged: it raises with ``sent=True`` and ``code="stream_cut"``, and is never resent."""
        caps = self.caps(request.model)
        if validation.streamed_previews(request, caps) == 0:
            return self.submit(request, idempotency_key=idempotency_key)
        self.require_key()
        call = self.create_call(request, idempotency_key=idempotency_key)
        stream = self.http.create_stream(
            call.path, json=call.json, data=call.data, files=list(call.files) or None, headers=call.headers or None
        )
        return self._read_stream(stream, request, on_preview)

    def _read_stream(self, stream: Iterator[SseEvent], request: ImageRequest, on_preview: PreviewSink) -> JobStatus:
        previews = 0
        try:
            for event in stream:
                body = self._event_body(event)
                kind = str(body.get("type") or event.event or "")
                if kind.endswith(".partial_image"):
                    preview = self._partial(body, previews, request)
                    previews += 1
                    if preview is not None:
                        on_preview(preview)
                elif kind.endswith(".completed") or (not kind and "data" in body):
                    return self._completed(body, request, previews)
        except ProviderError as err:
            if err.sent and err.status_code is None and err.code is None:  # the connection broke mid-way
                raise self._cut(previews, err) from err
            raise
        raise self._cut(previews, None)

    def _event_body(self, event: SseEvent) -> dict[str, Any]:
        try:
            body = json.loads(event.data)
        except ValueError as exc:
            raise ProviderUnavailable("OpenAI streamed an event this app cannot read.", provider=self.name,
                                      code="malformed", detail=event.data[:500], sent=True) from exc
        if not isinstance(body, dict):
            raise ProviderUnavailable("OpenAI streamed an event this app cannot read.", provider=self.name,
                                      code="malformed", detail=event.data[:500], sent=True)
        error = body.get("error")
        if isinstance(error, dict):  # an error event mid-stream: the openai client raises it as an APIError
            raise self._stream_error(error)
        return body

    def _stream_error(self, error: dict[str, Any]) -> ProviderError:
        message = str(error.get("message") or "OpenAI ended the stream with an error.")
        code = error.get("code")
        if code == "moderation_blocked":
            details = error.get("moderation_details") or {}
            stage = details.get("moderation_stage") if isinstance(details, dict) else None
            return ModerationBlocked(
                f"OpenAI's safety system withheld the image while it was being made. OpenAI said: {message}",
                stage=stage, billed=False if stage == "input" else None, provider=self.name, code=code, sent=True,
            )
        return ProviderUnavailable(
            f"OpenAI ended the stream with an error; the image may still have been charged. OpenAI said: {message}",
            provider=self.name, code=str(code) if code else "stream_error", detail=json.dumps(error)[:2000], sent=True,
        )

    def _partial(self, body: dict[str, Any], seen: int, request: ImageRequest) -> PartialImage | None:
        """A preview, or None for one that is no image within the gate (skipped: the job goes on)."""
        data = self._decode(body.get("b64_json"), body)
        try:
            if validation.sniff_format(data) is None or imagegate.check(data, "A preview OpenAI sent") is None:
                return None
        except InvalidRequest:
            return None
        index = body.get("partial_image_index")
        fmt = image_format(data)
        return PartialImage(index=index if isinstance(index, int) else seen, data=data,
                            format=fmt if fmt != "unknown" else request.output_format)

    def _completed(self, body: dict[str, Any], request: ImageRequest, previews: int) -> JobStatus:
        if "data" in body:  # not a stream after all: a whole ImagesResponse
            return self._finished(body, request)
        item = {"b64_json": body.get("b64_json")}
        status = self._finished({**{k: v for k, v in body.items() if k != "b64_json"}, "data": [item]}, request)
        status.raw["previews_received"] = previews
        return status

    def _cut(self, previews: int, cause: ProviderError | None) -> ProviderUnavailable:
        said = f" ({cause})" if cause is not None else ""
        return ProviderUnavailable(
            f"The stream from OpenAI ended before the finished image arrived, after {previews} preview"
            f"{'' if previews == 1 else 's'}{said}. The image may have been made and charged all the same.",
            provider=self.name,
            code="stream_cut",
            detail=f"previews received: {previews}" + (f"; {cause.detail}" if cause and cause.detail else ""),
            sent=True,
        )

    def create_call(
        self, request: ImageRequest, *, idempotency_key: str | None = None, display: bool = False
    ) -> CreateCall:
        caps = self.caps(request.model)
        fields = self._fields(request, caps)
        if not request.is_edit:
            return CreateCall("/v1/images/generations", json=fields)
        field = "image[]" if len(request.images) > 1 else "image"
        files = [(field, self._file(image, display=display)) for image in request.images]
        if request.mask is not None:
            files.append(("mask", self._file(request.mask, display=display)))
        return CreateCall("/v1/images/edits", data={k: _form_value(v) for k, v in fields.items()}, files=tuple(files))

    def status(self, job_id: str) -> JobStatus:
        raise InvalidRequest(
            "OpenAI answers at once; there is no job to ask about.", field="job_id", value=job_id, provider=self.name
        )

    def _fields(self, request: ImageRequest, caps: ModelCaps) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "model": caps.model,  # always: the generations default was dall-e-2, now retired
            "prompt": request.prompt,
            "n": request.n,
            "size": validation.wire_size(request.size.strip().lower(), caps) or request.size,
            "quality": request.quality,
            "background": request.background,
            "output_format": request.output_format,
        }
        if request.output_compression is not None:
            fields["output_compression"] = request.output_compression
        if request.safety_identifier and caps.takes_safety_identifier:
            fields["safety_identifier"] = request.safety_identifier
        previews = validation.streamed_previews(request, caps)
        if previews:
            fields["stream"] = True
            fields["partial_images"] = previews
        if not request.is_edit:
            fields["moderation"] = request.moderation
        elif request.input_fidelity is not None and caps.input_fidelities:
            fields["input_fidelity"] = request.input_fidelity
        return fields

    def _file(self, image: InputImage, *, display: bool = False) -> tuple[str, bytes, str]:
        if image.data is None:
            assert image.url is not None
            if display:
                return (image.url.rsplit("/", 1)[-1] or "image.png", b"", "image/png")
            data, content_type = self.fetch(image.url)  # the edits endpoint takes files, not links
            fmt = image_format(data, content_type)
            return (image.url.rsplit("/", 1)[-1] or "image", data, MIME_BY_FORMAT.get(fmt, "image/png"))
        fmt = validation.sniff_format(image.data) or "png"
        return (image.name, image.data, MIME_BY_FORMAT.get(fmt, image.mime or "image/png"))

    def _finished(self, body: Any, request: ImageRequest) -> JobStatus:
        items = body.get("data") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            raise ProviderUnavailable(
                "OpenAI answered without any image. Try again.",
                provider=self.name,
                code="malformed",
                detail=str(body)[:2000],
                sent=True,
            )
        images = []
        for item in items:
            data = self._decode(item.get("b64_json") if isinstance(item, dict) else None, item)
            fmt = image_format(data)
            images.append(OutputImage(data=data, format=fmt if fmt != "unknown" else request.output_format))
        usage = body.get("usage")
        raw = {k: v for k, v in body.items() if k != "data"}
        raw["revised_prompts"] = [i.get("revised_prompt") for i in items if isinstance(i, dict)]
        return JobStatus(
            job_id=None,
            state="succeeded",
            progress=100,
            images=tuple(images),
            billed=dict(usage) if isinstance(usage, dict) else None,
            raw=raw,
        )

    def _decode(self, b64: Any, item: Any) -> bytes:
        if not isinstance(b64, str):
            raise ProviderUnavailable(
                "OpenAI answered with an image this app cannot read.",
                provider=self.name,
                code="malformed",
                detail=str(item)[:500],
                sent=True,
            )
        if b64.startswith("data:"):  # some relays prefix data:image/png;base64,
            b64 = b64.split(",", 1)[1]
        try:
            return base64.b64decode(b64, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise ProviderUnavailable(
                "OpenAI answered with an image this app cannot decode.",
                provider=self.name,
                code="malformed",
                sent=True,
            ) from exc

    # --- errors -------------------------------------------------------------------------
    def _error_hook(self, info: ErrorInfo) -> ProviderError | None:
        said = f" OpenAI said: {info.message}"
        if info.code == "moderation_blocked":
            details = info.error.get("moderation_details") or {}
            stage = details.get("moderation_stage") if isinstance(details, dict) else None
            if stage == "input":
                msg = (
                    "OpenAI's safety system refused the prompt or an input image. Reword the prompt or use a "
                    "different image; nothing was billed."
                )
            elif stage == "output":
                msg = (
                    "OpenAI made an image but its safety system withheld it. Reword the prompt and try again; "
                    "OpenAI may still bill the attempt."
                )
            else:
                msg = "OpenAI's safety system refused this request. Reword the prompt or change the input images."
            return ModerationBlocked(
                msg + said, stage=stage, billed=False if stage == "input" else None, provider=self.name, code=info.code
            )
        if info.status == 429 and info.is_quota:
            return QuotaExceeded(
                "Your OpenAI account is out of credits or over its spending limit. Add credits or raise the "
                "limit at https://platform.openai.com/settings/organization/billing, then try again." + said,
                provider=self.name,
                code=info.code or info.type,
            )
        if info.code == "model_not_found" or (info.status == 404 and "model" in info.message.lower()):
            # create() names the requested model and its replacement.
            return ModelUnavailable(
                "OpenAI does not offer this model any more." + said, model="", provider=self.name, code=info.code
            )
        return None

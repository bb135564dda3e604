"""OpenAI Images API (synchronous): ``/openai/v1/images/generations`` and ``/edits``.

Validates like OpenAI (its API reference and the openai package's types), waits the job time, then answers an
``ImagesResponse`` whose ``usage`` comes from ``providers/tokens.py``.
"""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import date
from typing import Any

from PIL import UnidentifiedImageError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import clock
from providers import tokens
from providers.catalogue import load_catalogue

from . import images, openai_stream
from .common import (
    ProviderAPI,
    Refusal,
    drop_response,
    gpt2_size_problem,
    is_bad_json,
    is_int,
    parse_wxh,
    retry_headers,
)
from .files import new_token, sniff_format

__all__ = ["GPT1_MODELS", "GPT2_MODELS", "SHUT_DOWN", "OpenAIAPI"]

GPT2_MODELS = frozenset(
    {
        "gpt-image-2",
        "gpt-image-2-2026-04-21",
        "gpt-image-2.5-sunburst",
        "gpt-image-2.5-flare",
        "gpt-image-2.5-sunburst-2026-09-08",
        "gpt-image-2.5-flare-2026-09-08",
        "gpt-image-2.6-sunburst",
        "gpt-image-2.6-flare",
    }
)
GPT1_MODELS = frozenset({"gpt-image-1.5", "gpt-image-1.5-2025-12-16", "gpt-image-1-mini", "chatgpt-image-latest"})
# model -> (shutdown day, what OpenAI says to use instead), from OpenAI's deprecations page
# (https://developers.openai.com/api/docs/deprecations) and API reference. From that day on
# (on the one clock) the model answers 404 model_not_found, as OpenAI does for a removed model.
_DEC_1 = (date(2026, 12, 1), "gpt-image-2.6-sunburst or gpt-image-2.6-flare")
SHUT_DOWN: dict[str, tuple[date, str]] = {
    "gpt-image-1": (date(2026, 10, 23), "gpt-image-2.5-sunburst or gpt-image-2.5-flare"),
    "gpt-image-1.5": _DEC_1,
    "gpt-image-1.5-2025-12-16": _DEC_1,
    "gpt-image-1-mini": _DEC_1,
    "chatgpt-image-latest": _DEC_1,
    "dall-e-2": (date(2026, 5, 12), "gpt-image-2"),
    "dall-e-3": (date(2026, 5, 12), "gpt-image-2"),
}
GPT1_SIZES = ("1024x1024", "1536x1024", "1024x1536", "auto")
QUALITIES = ("low", "medium", "high", "auto")
# The openai package 3.57: the 2.5 models (and their 2026-09-08 snapshots) "also support xhigh and max".
QUALITIES_2_5 = ("low", "medium", "high", "xhigh", "max", "auto")
FORMATS = ("png", "jpeg", "webp")
BACKGROUNDS = ("transparent", "opaque", "auto")
MODERATIONS = ("auto", "low")
FIDELITIES = ("high", "low")
COMPLEXITIES = ("low", "medium", "high")  # openai 3.57: planning effort, independent of quality
PROMPT_LIMIT = 32000
MAX_INPUT_IMAGES = 16
MAX_INPUT_BYTES = 50 * 1024 * 1024
MAX_MASK_BYTES = 4 * 1024 * 1024

COMMON_FIELDS = {
    "prompt", "model", "n", "size", "quality", "background", "output_format", "output_compression",
    "stream", "partial_images", "user", "complexity", "safety_identifier",
}  # fmt: skip
GENERATE_FIELDS = COMMON_FIELDS | {"moderation"}
EDIT_FIELDS = COMMON_FIELDS | {"input_fidelity"}  # no moderation on edits (SDK image_edit_params)

SERVER_ERROR = (
    "The server had an error processing your request. Sorry about that! You can retry your request, "
    "or contact us through our help center at help.openai.com if you keep seeing this error."
)


def _supported(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}" if len(quoted) > 1 else quoted[0]


class OpenAIAPI(ProviderAPI):
    name = "openai"
    FAULTS = {
        "rate_limit": (
            429,
            "rate_limit_exceeded",
            "Rate limit reached for images per minute (IPM) in organization org-emulator. Please try again shortly.",
            "rate_limit_exceeded",
        ),
        "quota": (
            429,
            "insufficient_quota",
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
        ),
        "server_error": (500, "", SERVER_ERROR, "server_error"),
        "auth": (401, "invalid_api_key", "Incorrect API key provided.", "invalid_request_error"),
        "model_not_found": (
            404,
            "model_not_found",
            "The model does not exist or you do not have access to it.",
            "invalid_request_error",
        ),
    }

    def routes(self) -> list[Route]:
        return [
            Route("/openai/v1/images/generations", self.generations, methods=["POST"]),
            Route("/openai/v1/images/edits", self.edits, methods=["POST"]),
            Route("/openai/{rest:path}", self.not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        ]

    # --- shapes --------------------------------------------------------------------
    def error(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        etype: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Response:
        body = {"message": message, "type": etype or "invalid_request_error", "param": param, "code": code or None}
        body.update(extra or {})
        return JSONResponse({"error": body}, status_code=status, headers=headers)

    def fault_error(self, fault: dict[str, Any]) -> Response:
        resp = super().fault_error(fault)
        if fault["kind"] == "rate_limit":
            # The official SDK reads retry-after-ms before retry-after.
            seconds = float(retry_headers(fault.get("retry_after"))["Retry-After"])
            resp.headers["retry-after-ms"] = str(int(seconds * 1000))
        return resp

    def auth_error(self, key: str | None) -> Response:
        if not key:
            return self.error(
                401,
                "",
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        shown = key[:5] + "*" * 3 + key[-4:] if len(key) > 9 else key[:3] + "***"
        return self.error(
            401,
            "invalid_api_key",
            f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
        )

    def invalid(self, param: str, message: str, code: str = "invalid_value") -> Refusal:
        return Refusal(self.error(400, code, message, param=param))

    async def not_found(self, request: Request) -> Response:
        path = request.url.path.removeprefix("/openai")
        return self.error(404, "", f"Invalid URL ({request.method} {path})")

    # --- validation ------------------------------------------------------------------
    def _int(
        self, fields: dict[str, Any], name: str, lo: int, hi: int, default: int | None, form: bool = False
    ) -> int | None:
        value = fields.get(name)
        if value is None:
            return default
        if form and isinstance(value, str):  # multipart fields arrive as text
            try:
                value = int(value)
            except ValueError:
                raise self.invalid(
                    name,
                    f"Invalid type for '{name}': expected an integer, but got a string instead.",
                    "invalid_type",
                ) from None
        if not is_int(value):
            raise self.invalid(
                name,
                f"Invalid type for '{name}': expected an integer, but got {type(value).__name__} instead.",
                "invalid_type",
            )
        if value < lo:
            raise self.invalid(
                name,
                f"Invalid '{name}': integer below minimum value. Expected a value >= {lo}, but got {value} instead.",
                "integer_below_min_value",
            )
        if value > hi:
            raise self.invalid(
                name,
                f"Invalid '{name}': integer above maximum value. Expected a value <= {hi}, but got {value} instead.",
                "integer_above_max_value",
            )
        return value

    def _choice(self, fields: dict[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
        value = fields.get(name)
        if value is None:
            return default
        if not isinstance(value, str) or value not in allowed:
            raise self.invalid(name, f"Invalid value: '{value}'. Supported values are: {_supported(allowed)}.")
        return value

    def validate(self, fields: dict[str, Any], *, edit: bool) -> dict[str, Any]:
        """The request's parameters, checked in OpenAI's order: the first problem is the one reported."""
        form = edit  # edits are multipart: every field is text
        allowed = EDIT_FIELDS if edit else GENERATE_FIELDS
        for name in fields:
            if name not in allowed:
                raise self.invalid(name, f"Unknown parameter: '{name}'.", "unknown_parameter")
        model = self._model(fields)
        prompt = self._prompt(fields)
        n = self._int(fields, "n", 1, 10, 1, form)
        quality = self._choice(
            fields, "quality", QUALITIES_2_5 if model.startswith("gpt-image-2.5") else QUALITIES, "auto"
        )
        fmt = self._choice(fields, "output_format", FORMATS, "png")
        background = self._choice(fields, "background", BACKGROUNDS, "auto")
        compression = self._int(fields, "output_compression", 0, 100, None, form)
        self._check_encoding(fmt, background, compression)
        moderation = self._choice(fields, "moderation", MODERATIONS, "auto")
        fidelity = self._fidelity(fields, model)
        stream, partials = self._streaming(fields, form)
        complexity = self._choice(fields, "complexity", COMPLEXITIES, "auto") if fields.get("complexity") else None
        safety = self._safety_identifier(fields)
        size = self._size(fields, model)
        return {
            "model": model,
            "prompt": prompt,
            "n": n,
            "size": size,
            "quality": quality,
            "format": fmt,
            "background": background,
            "compression": compression,
            "moderation": moderation,
            "input_fidelity": fidelity,
            "stream": stream,
            "partial_images": partials,
            "complexity": complexity,
            "safety_identifier": safety,
        }

    def _safety_identifier(self, fields: dict[str, Any]) -> str | None:
        """The effective identifier: a non-empty safety_identifier, else the deprecated user (openai 3.57)."""
        for name in ("safety_identifier", "user"):
            value = fields.get(name)
            if value is not None and not isinstance(value, str):
                raise self.invalid(name, f"Invalid type for '{name}': expected a string.", "invalid_type")
            if value:
                return str(value)
        return None

    def _model(self, fields: dict[str, Any]) -> str:
        model = fields.get("model")
        if model is None:
            raise self.invalid("model", "Missing required parameter: 'model'.", "missing_required_parameter")
        if model in SHUT_DOWN and clock.today() >= SHUT_DOWN[model][0]:
            day, replacement = SHUT_DOWN[model]
            raise Refusal(
                self.error(
                    404,
                    "model_not_found",
                    f"The model `{model}` has been shut down on {day:%B} {day.day}, {day.year}. "
                    f"Use {replacement} instead.",
                    param="model",
                )
            )
        if model not in GPT2_MODELS and model not in GPT1_MODELS:
            raise Refusal(
                self.error(
                    404,
                    "model_not_found",
                    f"The model `{model}` does not exist or you do not have access to it.",
                    param="model",
                )
            )
        return str(model)

    def _prompt(self, fields: dict[str, Any]) -> str:
        prompt = fields.get("prompt")
        if prompt is None:
            raise self.invalid("prompt", "Missing required parameter: 'prompt'.", "missing_required_parameter")
        if not isinstance(prompt, str):
            raise self.invalid("prompt", "Invalid type for 'prompt': expected a string.", "invalid_type")
        if not prompt.strip():
            raise self.invalid("prompt", "Invalid 'prompt': empty string.", "empty_string")
        if len(prompt) > PROMPT_LIMIT:
            raise self.invalid(
                "prompt",
                f"Invalid 'prompt': string too long. Expected a string with maximum length {PROMPT_LIMIT}, "
                f"but got a string with length {len(prompt)} instead.",
                "string_above_max_length",
            )
        return prompt

    def _check_encoding(self, fmt: str, background: str, compression: int | None) -> None:
        if compression is not None and fmt == "png":
            raise self.invalid(
                "output_compression",
                "output_compression is only supported for the jpeg and webp output formats.",
            )
        if background == "transparent" and fmt == "jpeg":
            raise self.invalid("background", "Transparent background requires output_format png or webp, not jpeg.")

    def _fidelity(self, fields: dict[str, Any], model: str) -> str | None:
        if fields.get("input_fidelity") is None:
            return None
        # The openai package 3.57: "Supports high and low on gpt-image-1.5; gpt-image-1-mini supports only
        # low. For gpt-image-2, omit this parameter."
        if model in ("gpt-image-2", "gpt-image-2-2026-04-21"):
            raise self.invalid(
                "input_fidelity", f"input_fidelity is not supported for {model}: omit it.", "unsupported_parameter"
            )
        return self._choice(fields, "input_fidelity", ("low",) if model == "gpt-image-1-mini" else FIDELITIES, "low")

    def _streaming(self, fields: dict[str, Any], form: bool) -> tuple[bool, int]:
        """``stream`` and ``partial_images`` (0-3, OpenAI: "only supported for the GPT image models")."""
        raw = fields.get("stream")
        if raw is None or raw in (False, "false", "False", "0"):
            stream = False
        elif raw in (True, "true", "True", "1"):
            stream = True
        else:
            raise self.invalid("stream", f"Invalid type for 'stream': expected a boolean, but got {raw!r}.",
                               "invalid_type")
        partials = self._int(fields, "partial_images", 0, 3, 0, form) or 0
        return stream, partials

    def _size(self, fields: dict[str, Any], model: str) -> str:
        size = fields.get("size") or "auto"
        if not isinstance(size, str):
            raise self.invalid("size", "Invalid type for 'size': expected a string.", "invalid_type")
        if model in GPT1_MODELS:
            if size not in GPT1_SIZES:
                raise self.invalid("size", f"Invalid value: '{size}'. Supported values are: {_supported(GPT1_SIZES)}.")
        elif size != "auto":
            wh = parse_wxh(size)
            problem = "use WIDTHxHEIGHT (e.g. 1536x1024) or 'auto'" if wh is None else gpt2_size_problem(*wh)
            if problem:
                raise self.invalid("size", f"Invalid size '{size}': {problem}.")
        return size

    # --- handlers ----------------------------------------------------------------------
    async def generations(self, request: Request) -> Response:
        stop, fault = await self.begin(request, "submit", defer_slow=True)
        if stop is not None:
            return stop
        body = await self.read_json(request)
        try:
            if is_bad_json(body) or not isinstance(body, dict):
                raise Refusal(
                    self.error(
                        400,
                        "",
                        "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
                        "using your HTTP library correctly. The OpenAI API expects a JSON payload.)",
                    )
                )
            params = self.validate(body, edit=False)
        except Refusal as r:
            await self._unused(fault)
            return r.response
        return await self.run(params, [], fault, request_body=body)

    async def edits(self, request: Request) -> Response:
        stop, fault = await self.begin(request, "submit", defer_slow=True)
        if stop is not None:
            return stop
        try:
            params, inputs, echo = await self._edit_request(request)
        except Refusal as r:
            await self._unused(fault)
            return r.response
        return await self.run(params, inputs, fault, request_body=echo)

    async def _unused(self, fault: dict[str, Any] | None) -> None:
        """A refused request: a slow fault still delays it (as before it was deferred), others wait their turn."""
        if fault is not None and fault["kind"] == "slow":
            await asyncio.sleep(float(fault.get("delay") or 1.0))
        elif fault is not None:
            self.store.give_back(fault)

    async def _edit_request(self, request: Request) -> tuple[dict[str, Any], list[bytes], dict[str, Any]]:
        fields, files, mask = await self._edit_form(request)
        params = self.validate(fields, edit=True)
        if not files:
            raise self.invalid("image", "Missing required parameter: 'image'.", "missing_required_parameter")
        if len(files) > MAX_INPUT_IMAGES:
            raise self.invalid(
                "image", f"Too many images: at most {MAX_INPUT_IMAGES} input images are allowed.", "too_many_images"
            )
        datas, sizes = await self._edit_images(files)
        mask_data = await mask.read() if mask is not None else None
        if mask_data is not None:
            await self._check_mask(mask_data, sizes[0])
        if params["size"] == "auto":
            w, h = sizes[0]
            params["size"] = "1536x1024" if w > 1.2 * h else "1024x1536" if h > 1.2 * w else "1024x1024"
        params["input_sizes"] = sizes
        params["mask"] = mask_data  # rendered with the edit: the input is kept where the mask is opaque
        echo = {k: v for k, v in fields.items() if k != "prompt"} | {
            "prompt": params["prompt"],
            "images": len(datas),
            "mask": mask is not None,
        }
        return params, datas, echo

    async def _edit_form(self, request: Request) -> tuple[dict[str, Any], list[UploadFile], UploadFile | None]:
        """The multipart body split into text fields, image files and the mask file."""
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise self.invalid(
                "image",
                "Edits take multipart/form-data with the image file(s) in 'image' or 'image[]' parts.",
                "invalid_content_type",
            )
        try:
            form = await request.form(max_files=64, max_fields=64)
        except MultiPartException as e:
            raise self.invalid("image", f"Could not parse the multipart body: {e.message}", "invalid_body") from e
        fields: dict[str, Any] = {}
        files: list[UploadFile] = []
        mask: UploadFile | None = None
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key in ("image", "image[]"):
                    files.append(value)
                elif key == "mask":
                    mask = value
                else:
                    raise self.invalid(key, f"Unknown parameter: '{key}'.", "unknown_parameter")
            elif key in ("image", "image[]", "mask"):
                what = "mask" if key == "mask" else "image"
                raise self.invalid(what, f"'{what}' must be a file upload, not text.", "invalid_type")
            else:
                fields[key] = value
        return fields, files, mask

    async def _edit_images(self, files: list[UploadFile]) -> tuple[list[bytes], list[tuple[int, int]]]:
        """Each input image's bytes and size, refusing what OpenAI refuses."""
        datas: list[bytes] = []
        sizes: list[tuple[int, int]] = []
        for f in files:
            data = await f.read()
            if len(data) >= MAX_INPUT_BYTES:
                raise self.invalid("image", f"Image '{f.filename}' is too large: each image must be under 50 MB.")
            fmt = sniff_format(data)
            if fmt not in FORMATS:
                raise self.invalid(
                    "image",
                    f"Invalid image file or mode for image '{f.filename}', please check your image file. "
                    "Supported formats are png, jpeg and webp.",
                    "invalid_image_format",
                )
            datas.append(data)
            sizes.append(images.decode(data).size)
        return datas, sizes

    async def _check_mask(self, data: bytes, first_size: tuple[int, int]) -> None:
        if len(data) >= MAX_MASK_BYTES:
            raise self.invalid("mask", "The mask must be a PNG under 4 MB.")
        try:
            img = images.decode(data)
        except (UnidentifiedImageError, OSError, ValueError):
            raise self.invalid("mask", "Invalid mask: not an image.", "invalid_image_format") from None
        if img.format != "PNG":
            raise self.invalid("mask", "The mask must be a PNG file.", "invalid_image_format")
        if img.mode not in ("RGBA", "LA") and "transparency" not in img.info:
            raise self.invalid("mask", "Invalid mask image format - mask image missing alpha channel.")
        if img.size != first_size:
            raise self.invalid(
                "mask",
                f"The mask ({img.size[0]}x{img.size[1]}) must have the same dimensions as the first image "
                f"({first_size[0]}x{first_size[1]}).",
                "image_dimension_mismatch",
            )

    async def run(
        self,
        params: dict[str, Any],
        inputs: list[bytes],
        fault: dict[str, Any] | None,
        *,
        request_body: dict[str, Any],
    ) -> Response:
        """Create the (synchronous) job, wait its time, answer or fail as the fault says."""
        model = params["model"]
        if params["size"] == "auto":
            params["size"] = "1024x1024"
        width, height = parse_wxh(params["size"]) or (1024, 1024)
        transparent = params["background"] == "transparent"
        input_names = [self.files.keep_image(d, label="image", field="image") for d in inputs]
        job_params = {
            "width": width,
            "height": height,
            "format": params["format"],
            "compression": params["compression"],
            "transparent": transparent,
            "quality": params["quality"],
            "n": params["n"],
            "prompt": params["prompt"],
            "size": params["size"],
        }
        job = self.new_job(f"img_{new_token(12)}", model, job_params, request_body, input_names, None, sync=True)
        kind = fault["kind"] if fault else None
        started = time.monotonic()
        if fault is not None and kind == "moderation" and (fault.get("stage") or "output") == "input":
            return self._moderation(job, fault, "input")
        outputs: list[bytes] = []
        if kind not in ("job_failed", "moderation"):
            outputs = await run_in_threadpool(self._render_all, job, inputs, params.get("mask"))
        if not (params["stream"] and kind not in ("job_failed", "moderation")):
            await asyncio.sleep(max(0.0, job.job_time - (time.monotonic() - started)))
        if kind == "job_failed":
            self.store.finish_sync(job, "failed", {"code": "server_error", "message": SERVER_ERROR})
            return self.error(500, "", SERVER_ERROR, etype="server_error")
        if fault is not None and kind == "moderation":
            return self._moderation(job, fault, "output")
        if params["stream"]:
            return self._stream(job, params, outputs, fault, started)
        if fault is not None and kind == "slow":
            await asyncio.sleep(float(fault.get("delay") or 1.0))
        self.store.finish_sync(job, "succeeded")
        if fault is not None and kind == "drop_after_create":
            return drop_response(fault)
        return JSONResponse(self._images_response(job, params, outputs))

    def _stream(
        self, job: Any, params: dict[str, Any], outputs: list[bytes], fault: dict[str, Any] | None, started: float
    ) -> Response:
        whole = self._images_response(job, params, outputs)
        shape: dict[str, Any] = {k: whole[k] for k in ("background", "output_format", "quality", "size",
                                                       "safety_identifier") if k in whole}

        def usage(previews: int) -> dict[str, Any]:
            # Each preview is billed as more image output tokens (the catalogue's figure).
            extra = previews * load_catalogue().partial_image_tokens("openai")
            u = dict(whole["usage"])
            u["output_tokens"] += extra
            u["output_tokens_details"] = {"image_tokens": u["output_tokens"], "text_tokens": 0}
            u["total_tokens"] += extra
            return u

        return openai_stream.stream_response(
            edit=bool(params.get("input_sizes")), partials=params["partial_images"], finals=outputs, shape=shape,
            usage=usage, job_time=job.job_time, started=started, fault=fault,
            finish=lambda: self.store.finish_sync(job, "succeeded"),
        )

    def _render_all(self, job: Any, inputs: list[bytes], mask: bytes | None = None) -> list[bytes]:
        p = job.params
        return [
            images.render(
                width=p["width"],
                height=p["height"],
                fmt=p["format"],
                prompt=p["prompt"],
                index=i,
                provider=self.name,
                model=job.model,
                quality=p["quality"],
                compression=p["compression"],
                transparent=p["transparent"],
                inputs=inputs,
                mask=mask,
            )
            for i in range(p["n"])
        ]

    def _moderation(self, job: Any, fault: dict[str, Any], stage: str) -> Response:
        categories = fault.get("categories") or ["violence"]
        self.store.finish_sync(
            job, "failed", {"code": "moderation_blocked", "message": "rejected by the safety system", "stage": stage}
        )
        return self.error(
            400,
            "moderation_blocked",
            "Your request was rejected by the safety system. If you believe this is an error, contact us at "
            f"help.openai.com and include the request ID {job.id}. safety_violations=[{', '.join(categories)}].",
            etype="image_generation_user_error",
            extra={"moderation_details": {"moderation_stage": stage, "categories": categories}},
        )

    def _images_response(self, job: Any, params: dict[str, Any], outputs: list[bytes]) -> dict[str, Any]:
        model, quality = params["model"], params["quality"]
        text = tokens.text_tokens(params["prompt"])
        image_in = sum(
            tokens.input_image_tokens(model, w, h, params.get("input_fidelity"))
            for w, h in params.get("input_sizes", [])
        )
        image_out = tokens.output_image_tokens(model, quality, params["size"]) * params["n"]
        return {
            "created": int(job.created_at),
            "data": [{"b64_json": base64.b64encode(o).decode("ascii")} for o in outputs],
            "background": "transparent" if params["background"] == "transparent" else "opaque",
            "output_format": params["format"],
            # quality=auto is reported (and billed) as the tier tokens.py assumes for it.
            "quality": tokens.AUTO_BILLED_AS if quality == "auto" else quality,
            "size": params["size"],
            **({"safety_identifier": params["safety_identifier"]} if params.get("safety_identifier") else {}),
            "usage": {
                "input_tokens": text + image_in,
                "input_tokens_details": {"text_tokens": text, "image_tokens": image_in},
                "output_tokens": image_out,
                "output_tokens_details": {"image_tokens": image_out, "text_tokens": 0},
                "total_tokens": text + image_in + image_out,
            },
        }

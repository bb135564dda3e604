"""Check a request against one model's capabilities before any network call.

Every refusal is an ``InvalidRequest(field=, value=, allowed=)`` whose message
names the problem and the fix in words a non-engineer can act on. A retired
model raises ``ModelUnavailable`` naming its replacement.

Decisions worth knowing:

- ``auto`` (quality / background / moderation) means "let the provider decide": it
  is always accepted, and an adapter whose provider has no such parameter, or no
  ``auto`` value, simply does not send it.
- A parameter the provider does not take (an empty tuple in ``ModelCaps``) accepts
  only its neutral value (``auto``, ``None``, the default output format); anything
  else is refused rather than silently dropped.
- The one exception is ``moderation`` on an edit where the provider takes it on
  generations only (OpenAI, ``moderation_on_edits=False``): it is accepted and not
  sent, so one moderation setting can serve both tabs. The edit then runs at the
  provider's default (``auto``): never a laxer filter than asked for.
- Sizes: a value from ``caps.sizes`` is accepted as is; a ratio is accepted where
  its pixel equivalent (``caps.ratio_pixels``) is offered and vice versa, so one
  request can go to providers that speak ratios and ones that speak pixels
  (``wire_size`` gives the value to send). Free ``WxH`` follows the gpt-image-2 rules.
"""

from __future__ import annotations

import io
import math
import re
from datetime import date

from . import imagegate, urlpolicy
from .errors import InvalidRequest, ModelUnavailable
from .types import ImageRequest, InputImage, ModelCaps

__all__ = [
    "FREE_SIZE_EXPERIMENTAL_PIXELS",
    "FREE_SIZE_MAX_EDGE",
    "FREE_SIZE_MAX_PIXELS",
    "FREE_SIZE_MIN_PIXELS",
    "check_free_size",
    "is_experimental_size",
    "sniff_format",
    "url_only_message",
    "url_problem",
    "validate",
    "wire_size",
]

FREE_SIZE_MIN_PIXELS = 655_360
FREE_SIZE_MAX_PIXELS = 8_294_400
FREE_SIZE_MAX_EDGE = 3840
FREE_SIZE_MAX_RATIO = 3.0
FREE_SIZE_EXPERIMENTAL_PIXELS = 2560 * 1440
_WXH = re.compile(r"^(\d{2,5})x(\d{2,5})$")
_RATIO = re.compile(r"^(\d{1,2}):(\d{1,2})$")


def url_only_message(label: str) -> str:
    return (
        f"{label} accepts images only as public URLs: paste an image URL, "
        "or run on the built-in emulator which hosts uploads."
    )


def sniff_format(data: bytes) -> str | None:
    """png / jpeg / webp / gif from the first bytes (the file name is not trusted)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


def check_free_size(size: str) -> str | None:
    """Why ``WxH`` breaks the gpt-image-2 size rules, or None when it is fine."""
    m = _WXH.match(size)
    if not m:
        return "write it as width x height in pixels, like 1536x1024"
    w, h = int(m.group(1)), int(m.group(2))
    if w % 16 or h % 16:
        return f"both sides must be multiples of 16 (try {_round16(w)}x{_round16(h)})"
    if max(w, h) > FREE_SIZE_MAX_EDGE:
        return f"the longest side can be at most {FREE_SIZE_MAX_EDGE} pixels"
    if max(w, h) / min(w, h) > FREE_SIZE_MAX_RATIO:
        return "the long side can be at most 3 times the short side"
    if w * h < FREE_SIZE_MIN_PIXELS:
        return f"the image must have at least {FREE_SIZE_MIN_PIXELS:,} pixels (for example 1024x640)"
    if w * h > FREE_SIZE_MAX_PIXELS:
        return f"the image can have at most {FREE_SIZE_MAX_PIXELS:,} pixels (3840x2160)"
    return None


def is_experimental_size(size: str) -> bool:
    """Above 2560x1440 OpenAI calls gpt-image-2 output "experimental" (allowed; the UI may warn)."""
    m = _WXH.match(size)
    return m is not None and int(m.group(1)) * int(m.group(2)) > FREE_SIZE_EXPERIMENTAL_PIXELS


def _round16(v: int) -> int:
    return max(16, round(v / 16) * 16)


def wire_size(size: str, caps: ModelCaps) -> str | None:
    """The size value to send for ``size``, or None when this model cannot make it."""
    if size in caps.sizes:
        return size
    if _RATIO.match(size):
        pixels = caps.pixels_for(size)
        if pixels and (pixels in caps.sizes or (caps.free_size and check_free_size(pixels) is None)):
            return pixels
        return None
    if _WXH.match(size):
        for ratio, pixels in caps.ratio_pixels:
            if pixels == size and ratio in caps.sizes:
                return ratio
        if caps.free_size and check_free_size(size) is None:
            return size
    return None


def _who(caps: ModelCaps) -> str:
    return f"{caps.label} on {_provider_label(caps)}"


def _bad(message: str, field: str, value: object, allowed: object, caps: ModelCaps) -> InvalidRequest:
    return InvalidRequest(message, field=field, value=value, allowed=allowed, provider=caps.provider)


def _choice(
    field: str, value: str | None, offered: tuple[str, ...], neutral: tuple[object, ...], caps: ModelCaps, what: str
) -> None:
    if value in neutral:
        return
    if not offered:
        raise _bad(
            f"{_who(caps)} does not let you choose the {what}: leave it at "
            f"{neutral[0] if neutral[0] is not None else 'its default'}.",
            field,
            value,
            list(neutral),
            caps,
        )
    if value not in offered:
        raise _bad(
            f"{_who(caps)} does not offer {what} {value!r}. Choose one of: {', '.join(offered)}.",
            field,
            value,
            list(offered),
            caps,
        )


def validate(
    request: ImageRequest,
    caps: ModelCaps,
    *,
    can_upload: bool = True,
    today: date | None = None,
    allowed_origins: tuple[urlpolicy.Origin, ...] = (),
) -> None:
    """Raise ``InvalidRequest`` / ``ModelUnavailable`` for anything ``caps`` will not accept.

    ``can_upload`` says whether local files can reach a URL-only provider (an
    uploader is configured, as with the emulator). Image links must pass the URL
    policy (``providers.urlpolicy``, without DNS here); ``allowed_origins`` are the
    ones an adapter may use on purpose (its own base URL, which is the emulator's).
    Local images and masks pass the image gate (``providers.imagegate``).
    """
    if caps.retired(today):
        raise ModelUnavailable(
            caps.retirement_text(),
            model=caps.model,
            replacement=caps.replacement,
            provider=caps.provider,
            detail=caps.notes or None,
        )
    _validate_prompt(request.prompt, caps)
    # quality / background / moderation: "auto" always passes (not sent where not offered).
    _choice("quality", request.quality, caps.qualities, ("auto",), caps, "quality")
    _validate_size(request, caps)
    _validate_resolution(request, caps)
    _choice("background", request.background, caps.backgrounds, ("auto",), caps, "background")
    _validate_format(request, caps)
    if request.background == "transparent" and request.output_format not in ("png", "webp"):
        raise _bad(
            "A transparent background needs PNG or WebP output: switch the output format to png or webp.",
            "background",
            request.background,
            ["png", "webp"],
            caps,
        )
    if not (request.is_edit and not caps.moderation_on_edits):
        _choice("moderation", request.moderation, caps.moderations, ("auto",), caps, "moderation level")
    if not 1 <= request.n <= caps.max_n:
        raise _bad(
            f"{_who(caps)} makes 1 to {caps.max_n} images per prompt; you asked for {request.n}.",
            "n",
            request.n,
            f"1 to {caps.max_n}",
            caps,
        )
    if request.input_fidelity is not None:
        _choice("input_fidelity", request.input_fidelity, caps.input_fidelities, (None,), caps, "input fidelity")
    _validate_previews(request, caps)
    _validate_images(request, caps, can_upload=can_upload, allowed=allowed_origins)


def streamed_previews(request: ImageRequest, caps: ModelCaps) -> int:
    """How many previews a request is streamed with: 0 means an ordinary call, one answer.

    Only for one image per call: OpenAI's partial-image events carry no image index, so how
    several images would interleave in one stream is not documented."""
    if caps.max_partial_images <= 0 or request.n != 1:
        return 0
    return max(0, min(request.partial_images, caps.max_partial_images))


def _validate_previews(request: ImageRequest, caps: ModelCaps) -> None:
    previews = request.partial_images
    if previews == 0:
        return
    if caps.max_partial_images <= 0:
        raise _bad(f"{_who(caps)} sends no previews while it works: set previews to 0.",
                   "partial_images", previews, [0], caps)
    if not 0 <= previews <= caps.max_partial_images:
        raise _bad(f"{_who(caps)} streams 0 to {caps.max_partial_images} previews; you asked for {previews}.",
                   "partial_images", previews, f"0 to {caps.max_partial_images}", caps)


def _validate_prompt(prompt: str, caps: ModelCaps) -> None:
    if not prompt or not prompt.strip():
        raise _bad("The prompt is empty: describe the image you want.", "prompt", prompt, "some text", caps)
    if caps.prompt_limit_unit == "tokens":
        used = math.ceil(len(prompt) / 4)  # about four characters per token (tokens.text_tokens)
        if used > caps.prompt_limit:
            raise _bad(
                f"The prompt is too long for {_who(caps)}: about {used:,} tokens, the limit is "
                f"{caps.prompt_limit:,} tokens (roughly {caps.prompt_limit * 4:,} characters). Shorten it.",
                "prompt",
                f"{len(prompt)} characters",
                f"at most {caps.prompt_limit} tokens",
                caps,
            )
    elif len(prompt) > caps.prompt_limit:
        raise _bad(
            f"The prompt is too long for {_who(caps)}: {len(prompt):,} characters, the limit is "
            f"{caps.prompt_limit:,}. Shorten it by {len(prompt) - caps.prompt_limit:,} characters.",
            "prompt",
            f"{len(prompt)} characters",
            f"at most {caps.prompt_limit} characters",
            caps,
        )


def _validate_size(request: ImageRequest, caps: ModelCaps) -> None:
    size = request.size.strip().lower()
    if wire_size(size, caps) is not None:
        return
    offered = ", ".join(caps.sizes)
    if caps.free_size and _WXH.match(size):
        why = check_free_size(size)
        raise _bad(
            f"{size} is not a size {_who(caps)} can make: {why}.",
            "size",
            request.size,
            f"{offered}, or WxH within the gpt-image-2 rules",
            caps,
        )
    extra = ", or a custom size like 1536x864 (multiples of 16)" if caps.free_size else ""
    raise _bad(
        f"{_who(caps)} cannot make size {request.size!r}. Choose one of: {offered}{extra}.",
        "size",
        request.size,
        list(caps.sizes),
        caps,
    )


def _validate_resolution(request: ImageRequest, caps: ModelCaps) -> None:
    if request.resolution is None:
        return
    _choice("resolution", request.resolution, caps.resolutions, (None,), caps, "resolution")
    if _WXH.match(request.size.strip().lower()):
        raise _bad(
            f"Resolution ({request.resolution}) applies only to aspect-ratio sizes such as 16:9; "
            f"{request.size} already gives the pixels. Clear the resolution or pick a ratio.",
            "resolution",
            request.resolution,
            "a ratio size",
            caps,
        )


def _validate_format(request: ImageRequest, caps: ModelCaps) -> None:
    neutral = ("png", caps.default_output_format)
    _choice("output_format", request.output_format, caps.output_formats, neutral, caps, "output format")
    c = request.output_compression
    if c is None:
        return
    if not caps.compression:
        raise _bad(f"{_who(caps)} does not let you set compression: clear it.", "output_compression", c, None, caps)
    if request.output_format not in ("jpeg", "webp"):
        raise _bad(
            "Compression applies only to JPEG and WebP output: clear it, or switch the format to jpeg or webp.",
            "output_compression",
            c,
            ["jpeg", "webp"],
            caps,
        )
    if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= 100:
        raise _bad("Compression must be a whole number from 0 to 100.", "output_compression", c, "0 to 100", caps)


def _validate_images(
    request: ImageRequest, caps: ModelCaps, *, can_upload: bool, allowed: tuple[urlpolicy.Origin, ...]
) -> None:
    images = request.images
    if len(images) > caps.max_input_images:
        raise _bad(
            f"{_who(caps)} takes at most {caps.max_input_images} input images; "
            f"remove {len(images) - caps.max_input_images}.",
            "images",
            len(images),
            f"at most {caps.max_input_images}",
            caps,
        )
    if not caps.accepts_local_files and not can_upload and any(i.is_local for i in images):
        raise _bad(url_only_message(_provider_label(caps)), "images", "a local file", "a public image URL", caps)
    for n, image in enumerate(images, 1):
        _validate_image(image, f"Input image {n} ({image.name})", caps, allowed)
    if request.mask is not None:
        _validate_mask(request, caps)


def _provider_label(caps: ModelCaps) -> str:
    return caps.provider_label or caps.provider


def url_problem(url: str, allowed: tuple[urlpolicy.Origin, ...] = ()) -> str | None:
    """Why an image link the person gave cannot be used (no DNS lookup), or None."""
    try:
        urlpolicy.check_literal(url, allowed)
    except urlpolicy.UrlRefused as refused:
        return refused.reason
    return None


def _validate_image(image: InputImage, what: str, caps: ModelCaps, allowed: tuple[urlpolicy.Origin, ...]) -> None:
    if image.url is not None:
        why = url_problem(image.url, allowed)
        if why is not None:
            raise _bad(f"{what}: {why}. Give a public https link to the image, or upload the file.",
                       "images", image.url, "a public https URL", caps)
        return
    assert image.data is not None
    _gate(image.data, what, "images", caps)
    fmt = sniff_format(image.data)
    if fmt not in caps.input_formats:
        shown = fmt.upper() if fmt else "not an image this app recognises"
        raise _bad(
            f"{what} is {shown}; {_who(caps)} accepts {', '.join(f.upper() for f in caps.input_formats)}. "
            "Convert it and upload again.",
            "images",
            fmt or "unknown",
            list(caps.input_formats),
            caps,
        )
    if len(image.data) > caps.max_input_bytes:
        raise _bad(
            f"{what} is {len(image.data) / 2**20:.1f} MB; {_who(caps)} accepts at most "
            f"{caps.max_input_bytes / 2**20:.0f} MB per image. Use a smaller file.",
            "images",
            len(image.data),
            f"at most {caps.max_input_bytes} bytes",
            caps,
        )


def _validate_mask(request: ImageRequest, caps: ModelCaps) -> None:
    mask = request.mask
    assert mask is not None
    if not caps.accepts_mask:
        raise _bad(f"{_who(caps)} does not take a mask: remove it.", "mask", "a mask", None, caps)
    if not request.images:
        raise _bad("A mask needs an image to edit: add the image the mask belongs to.", "mask", "a mask", None, caps)
    if mask.data is None:
        raise _bad("The mask must be an uploaded PNG file, not a link.", "mask", mask.url, "a PNG file", caps)
    if sniff_format(mask.data) != "png":
        raise _bad(
            "The mask must be a PNG file (with transparency). Save it as PNG.",
            "mask",
            sniff_format(mask.data) or "unknown",
            ["png"],
            caps,
        )
    _gate(mask.data, "The mask", "mask", caps)
    if len(mask.data) >= caps.mask_max_bytes:
        raise _bad(
            f"The mask is {len(mask.data) / 2**20:.1f} MB; it must be under {caps.mask_max_bytes / 2**20:.0f} MB.",
            "mask",
            len(mask.data),
            f"under {caps.mask_max_bytes} bytes",
            caps,
        )
    mask_size, has_alpha = _image_info(mask.data)
    if mask_size is None:
        raise _bad(
            "The mask file could not be read as an image. Save it again as PNG.", "mask", "unreadable", ["png"], caps
        )
    if not has_alpha:
        raise _bad(
            "The mask has no transparency: paint the area to change as transparent (alpha) and save as PNG.",
            "mask",
            "no alpha channel",
            "a PNG with an alpha channel",
            caps,
        )
    first = request.images[0]
    if first.data is not None:
        image_size, _ = _image_info(first.data)
        if image_size is not None and image_size != mask_size:
            raise _bad(
                f"The mask is {mask_size[0]}x{mask_size[1]} but the first image is {image_size[0]}x{image_size[1]}: "
                "they must be the same size.",
                "mask",
                f"{mask_size[0]}x{mask_size[1]}",
                f"{image_size[0]}x{image_size[1]}",
                caps,
            )


def _gate(data: bytes, what: str, field: str, caps: ModelCaps) -> None:
    try:
        imagegate.check(data, what, field=field)
    except InvalidRequest as err:
        err.provider = caps.provider
        raise


def _image_info(data: bytes) -> tuple[tuple[int, int] | None, bool]:
    """(width, height) and whether the image has an alpha channel; (None, False) if unreadable."""
    from PIL import Image, UnidentifiedImageError  # imported late: only masks need Pillow

    try:
        with Image.open(io.BytesIO(data)) as img:
            alpha = img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info
            return img.size, alpha
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None, False

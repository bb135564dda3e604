"""Making uploaded images ready for a provider, before any paid call.

Everything here works on bytes and answers with bytes, so pages, the job runner
and the store can share it. Problems a person can fix are raised as
``InvalidRequest`` with a message that names the problem and the fix; changes
made on the person's behalf (rotation, downscaling, mask resizing) are reported
as plain-language notices for the page to show.

Speed and memory matter: uploads can be 24-megapixel phone photos. Files that
need no change are never decoded in full; JPEGs are decoded at reduced scale
with ``Image.draft`` whenever a smaller image is wanted; re-encodes start from
one decode of the original so quality loss does not compound.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import Any

from PIL import Image, ImageChops, ImageFilter, JpegImagePlugin

from providers import validation
from providers.errors import InvalidRequest
from providers.types import MIME_BY_FORMAT, InputImage, ModelCaps

__all__ = [
    "CHANGE_THRESHOLD",
    "MIN_USEFUL_LONG_SIDE",
    "SUPPORTED",
    "ImageInfo",
    "MaskReport",
    "Prepared",
    "composite_outside_mask",
    "inspect",
    "mask_from_strokes",
    "mask_report",
    "prepare",
    "prepare_mask",
    "provider_name",
    "sniff_format",
    "thumbnail",
]

# Below this the model sees too little detail for an edit to be worth paying for.
MIN_USEFUL_LONG_SIDE = 512
# Per-channel difference that counts as "changed": JPEG/WEBP re-encoding noise stays below it.
CHANGE_THRESHOLD = 24

SUPPORTED = ("png", "jpeg", "webp")
_EXTENSIONS = {"png": (".png",), "jpeg": (".jpg", ".jpeg"), "webp": (".webp",)}
_PROVIDER_NAMES = {"openai": "OpenAI", "coretoday": "core.today", "apiframe": "Apiframe", "evolink": "EvoLink"}
_FORMAT_WORDS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "gif": "GIF", "bmp": "BMP", "tiff": "TIFF"}
_ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transpose that makes the pixels upright (the table ImageOps.exif_transpose uses).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ORIENTATION_WORDS = {
    2: "mirrored",
    3: "turned 180°",
    4: "flipped upside down",
    5: "turned and mirrored",
    6: "turned 90° clockwise",
    7: "turned and mirrored",
    8: "turned 90° counter-clockwise",
}
# What Pillow raises on damaged or truncated data (UnidentifiedImageError is an OSError).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError)


# --------------------------------------------------------------------------- types


@dataclass(frozen=True)
class ImageInfo:
    """What an image file is, read from its content (never its file name).

    ``width``/``height`` are as stored; ``orientation`` is the EXIF orientation
    tag (1 = upright) and ``display_size`` the size once it is applied.
    """

    name: str
    format: str  # png / jpeg / webp (or another format Pillow reads, which prepare() refuses)
    width: int
    height: int
    bytes: int
    has_alpha: bool
    mode: str
    orientation: int = 1

    @property
    def mime(self) -> str:
        return MIME_BY_FORMAT.get(self.format, f"image/{self.format}")

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)

    @property
    def display_size(self) -> tuple[int, int]:
        if self.orientation in (5, 6, 7, 8):
            return (self.height, self.width)
        return (self.width, self.height)

    @property
    def long_side(self) -> int:
        return max(self.width, self.height)


@dataclass
class Prepared:
    """The result of :func:`prepare`: images ready to send, what they are, and what was changed."""

    images: tuple[InputImage, ...] = ()
    infos: tuple[ImageInfo, ...] = ()  # describe the prepared images, not the uploads
    notices: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MaskReport:
    """How many pixels outside the mask's edit area the model changed."""

    changed_outside: int
    total_outside: int
    fraction: float
    resized: bool = False  # the edited image came back at another size and was scaled to the original's

    @property
    def percent(self) -> float:
        return round(self.fraction * 100, 1)


# --------------------------------------------------------------------------- helpers


def provider_name(caps: ModelCaps) -> str:
    """The provider's name as people know it (``core.today``, not ``coretoday``)."""
    return _PROVIDER_NAMES.get(caps.provider, caps.provider)


def sniff_format(data: bytes) -> str | None:
    """png / jpeg / webp from the file's first bytes, else None (a GIF is not an input format here)."""
    fmt = validation.sniff_format(data)
    return fmt if fmt in ("png", "jpeg", "webp") else None


def _mb(n: float) -> str:
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KB"
    value = n / (1024 * 1024)
    if value >= 10 or value == int(value):
        return f"{value:.0f} MB"
    return f"{value:.1f} MB"


def _formats_words(formats: Sequence[str]) -> str:
    words = [_FORMAT_WORDS.get(f, f.upper()) for f in formats]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def _what_is_it(data: bytes) -> str:
    """A guess, for the error message, at what a non-image upload really is."""
    if not data:
        return "the file is empty"
    head = data[:2048]
    if head.lstrip().lower().startswith((b"<svg", b"<?xml")) and b"<svg" in head.lower():
        return "it is an SVG drawing"
    if head.startswith(b"%PDF"):
        return "it is a PDF document"
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftyphevc", b"ftypavif"):
        return "it is a HEIC/AVIF photo; export it as JPEG first"
    if head.startswith(b"PK\x03\x04"):
        return "it is a ZIP archive"
    if b"\x00" not in head:
        printable = sum(1 for b in head if b >= 0x20 or b in b"\t\r\n\x0c")
        if printable / len(head) > 0.95:
            return "it looks like text"
    return "its content is not a picture format this app knows"


def _unreadable(name: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"{name} is not an image Pillow can read ({why}); upload a PNG, JPEG or WEBP file",
        field="images",
        value=name,
        allowed=SUPPORTED,
    )


def _damaged(name: str) -> InvalidRequest:
    return _unreadable(name, "it is cut off or damaged, often from an interrupted download or copy")


def _orientation_of(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except (*_DECODE_ERRORS, KeyError, TypeError):
        return 1  # unreadable EXIF is treated as "no rotation" rather than failing the upload
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info


def _check_complete(data: bytes, fmt: str, name: str) -> None:
    """Catch truncated files cheaply, without decoding whole images where possible."""
    if fmt == "png":
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.verify()  # walks every chunk and checks CRCs, no decompression
        except _DECODE_ERRORS as exc:
            raise _damaged(name) from exc
    elif fmt == "jpeg":
        if data.rstrip(b"\x00")[-2:] == b"\xff\xd9":
            return
        # No end marker: either truncated or followed by a trailer (motion photos append
        # a video). Decoding at 1/8 scale reads the whole entropy stream, so it tells.
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.draft(None, (max(1, im.width // 8), max(1, im.height // 8)))
                im.load()
        except _DECODE_ERRORS as exc:
            raise _damaged(name) from exc
    elif fmt == "webp":
        riff_size = int.from_bytes(data[4:8], "little") + 8
        if riff_size > len(data):
            raise _damaged(name)


# --------------------------------------------------------------------------- inspect


def inspect(data: bytes, name: str = "image") -> ImageInfo:
    """Read what an uploaded file is, by content. Raises ``InvalidRequest`` for non-images and damaged files."""
    if not data:
        raise _unreadable(name, "the file is empty")
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = (im.format or "").lower()
            if fmt == "mpo":  # phone cameras' multi-picture JPEG: the first picture is a plain JPEG
                fmt = "jpeg"
            info = _info_for(name, fmt, im, data, orientation=_orientation_of(im))
    except Image.DecompressionBombError as exc:
        raise InvalidRequest(
            f"{name} has too many pixels to open safely; resize it below 80 megapixels and upload it again",
            field="images",
            value=name,
            allowed="at most about 89 million pixels",
        ) from exc
    except _DECODE_ERRORS as exc:
        sniffed = sniff_format(data)
        why = "it is cut off or damaged" if sniffed else _what_is_it(data)
        raise _unreadable(name, why) from exc
    _check_complete(data, fmt, name)
    return info


# --------------------------------------------------------------------------- decode / encode


def _normalise_mode(im: Image.Image, fmt: str) -> Image.Image:
    """A mode every resampling filter and the target encoder accept, keeping alpha."""
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode in ("I", "I;16", "I;16B", "I;16L"):
        im = im.convert("I").point(lambda v: v * (1 / 256)).convert("L")  # 16-bit grey: keep the tones
    elif im.mode in ("1", "F"):
        im = im.convert("L")
    elif im.mode in ("PA", "La", "RGBa"):
        im = im.convert("RGBA")
    if fmt == "webp" and im.mode not in ("RGB", "RGBA"):
        im = im.convert("RGBA" if _has_alpha(im) else "RGB")
    return im


def _decode(data: bytes, info: ImageInfo, target_long: int | None, *, exact: bool = True) -> Image.Image:
    """Decode upright, at ``target_long`` (display long side) or full size.

    With ``exact=False`` a JPEG comes back at libjpeg's reduced scale (at least
    ``target_long``), for the caller to resample further.
    """
    im = Image.open(io.BytesIO(data))
    if im.format == "MPO":  # decode only the first picture, as a JPEG would be
        im.seek(0)
    w, h = im.size
    target: tuple[int, int] | None = None
    if target_long is not None and target_long < max(w, h):
        scale = target_long / max(w, h)
        target = (max(1, round(w * scale)), max(1, round(h * scale)))
        if info.format == "jpeg":
            im.draft(None, target)  # libjpeg scales by 1/2, 1/4, 1/8 while decoding: far less memory
    im.load()
    im = _normalise_mode(im, info.format)
    if exact and target is not None and im.size != target:
        im = im.resize(target, Image.Resampling.BILINEAR, reducing_gap=2.0)
    transpose = _TRANSPOSE.get(info.orientation)
    if transpose is not None:
        im = im.transpose(transpose)  # after the resize: rotating the smaller image is cheaper
    return im


def _is_lossless_webp(data: bytes) -> bool:
    return b"VP8L" in data[12:64] and b"VP8 " not in data[12:64]


def _encode(
    im: Image.Image,
    fmt: str,
    *,
    quality: int | None = None,
    source: Image.Image | None = None,
    icc: bytes | None = None,
    lossless: bool = False,
) -> bytes:
    """Encode one image; ``source`` (a JPEG) lends its quantisation tables to keep its quality."""
    out = io.BytesIO()
    params: dict[str, Any] = {}
    if icc:
        params["icc_profile"] = icc  # colour-managed photos look wrong without their profile
    if fmt == "jpeg":
        if im.mode not in ("RGB", "L", "CMYK"):
            im = im.convert("RGB")
        if source is not None and quality is None and getattr(source, "quantization", None):
            params["qtables"] = source.quantization
            sampling = JpegImagePlugin.get_sampling(source)
            if sampling != -1:
                params["subsampling"] = sampling
        else:
            params["quality"] = quality or 90
        im.save(out, "JPEG", **params)
    elif fmt == "webp":
        if lossless:
            im.save(out, "WEBP", lossless=True, quality=80, method=2, **params)
        else:
            im.save(out, "WEBP", quality=quality or 90, method=4, **params)
    else:
        if "transparency" in im.info and im.mode in ("P", "L", "RGB"):
            params["transparency"] = im.info["transparency"]
        im.save(out, "PNG", compress_level=6, **params)
    return out.getvalue()


def _info_for(name: str, fmt: str, im: Image.Image, data: bytes, *, orientation: int = 1) -> ImageInfo:
    """What ``data`` (encoded as ``fmt``, decoded as ``im``) is; prepared images are upright (1)."""
    return ImageInfo(
        name=name,
        format=fmt,
        width=im.width,
        height=im.height,
        bytes=len(data),
        has_alpha=_has_alpha(im),
        mode=im.mode,
        orientation=orientation,
    )


def _fit(data: bytes, info: ImageInfo, caps: ModelCaps, name: str, notices: list[str]) -> tuple[bytes, ImageInfo]:
    """Turn upright and/or bring under ``caps.max_input_bytes``; files needing neither come back untouched."""
    limit = caps.max_input_bytes
    who = provider_name(caps)
    fmt = info.format
    needs_turn = info.orientation in _TRANSPOSE
    if not needs_turn and len(data) <= limit:
        return data, info

    with Image.open(io.BytesIO(data)) as probe:
        icc = probe.info.get("icc_profile")
        lossless = fmt == "webp" and _is_lossless_webp(data)
        # The upright decode (full size, or a JPEG's reduced-scale one), kept so each later step resamples it once.
        base: Image.Image | None = None
        measured = len(data)
        turned = ""
        if needs_turn:
            turned = f", and {_ORIENTATION_WORDS[info.orientation]} to stand upright as its camera tag asks"
        if needs_turn and len(data) <= limit:
            base = _decode(data, info, None)
            out = _encode(base, fmt, source=probe if fmt == "jpeg" else None, icc=icc, lossless=lossless)
            if len(out) <= limit:
                notices.append(
                    f"{name} was {_ORIENTATION_WORDS[info.orientation]} to stand upright, as its camera "
                    "orientation tag asks; the provider would otherwise see it sideways."
                )
                return out, _info_for(name, fmt, base, out)
            measured = len(out)

        long0 = max(info.display_size)
        # A mild overshoot of a lossy file usually fits at a lower quality, keeping every pixel
        # (and an encode costs less than resampling a big image).
        if fmt in ("jpeg", "webp") and measured <= 1.5 * limit:
            if base is None:
                base = _decode(data, info, None)
            quality = 85 if measured <= 1.1 * limit else 75
            out = _encode(base, fmt, quality=quality, icc=icc)
            if len(out) <= limit:
                notices.append(
                    f"{name} was {_mb(info.bytes)}, over {who}'s {_mb(limit)} limit per image; "
                    f"re-saved at {_FORMAT_WORDS[fmt]} quality {quality} ({_mb(len(out))}), same "
                    f"{base.width}×{base.height} size{turned}."
                )
                return out, _info_for(name, fmt, base, out)
            measured = len(out)

        if base is None and fmt != "jpeg":
            base = _decode(data, info, None)  # PNG/WEBP have no reduced-scale decode
        long_side = long0
        while long_side > MIN_USEFUL_LONG_SIDE:
            # Bytes grow slower than pixels shrink (detail gets denser), hence the margin below 1.
            factor = min(0.9, max(0.25, math.sqrt(limit / measured) * 0.85))
            target = max(MIN_USEFUL_LONG_SIDE, int(long_side * factor))
            if base is None:
                if long0 // 2 < target < long0:
                    # Between full and half size: take libjpeg's half-scale decode as the step. Resampling
                    # a full 24 MP decode would cost several times more for a little extra resolution.
                    target = max(MIN_USEFUL_LONG_SIDE, (long0 + 1) // 2)
                # JPEG: draft() decodes straight at 1/2, 1/4 or 1/8 scale (at least ``target``); later
                # steps resample this smaller decode instead of decoding again.
                base = _decode(data, info, target, exact=False)
            # A fresh decode within 10% of the target is taken as is (resampling costs two image-sized
            # buffers); otherwise resample, which also guarantees each step is smaller than the last.
            if max(base.size) > target * 1.1 or max(base.size) >= long_side:
                scale = target / max(base.size)
                size = (max(1, round(base.width * scale)), max(1, round(base.height * scale)))
                # Bilinear is antialiased when shrinking and a third faster than bicubic on big images.
                img = base.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
            else:
                img = base
            out = _encode(img, fmt, quality=None if fmt == "png" else 90, icc=icc)
            if len(out) <= limit:
                notices.append(
                    f"{name} was {_mb(info.bytes)}, over {who}'s {_mb(limit)} limit per image; "
                    f"scaled down from {long0} px to {max(img.size)} px on the long side "
                    f"({img.width}×{img.height}, {_mb(len(out))}){turned}."
                )
                return out, _info_for(name, fmt, img, out)
            long_side, measured = max(img.size), len(out)

    tail = " or save it as JPEG." if fmt == "png" else "."
    raise InvalidRequest(
        f"{name} is {_mb(info.bytes)}; {who} takes at most {_mb(limit)} per image, and even at "
        f"{long_side} px on the long side it would still be {_mb(measured)}. Upload a smaller image{tail}",
        field="images",
        value=name,
        allowed=f"at most {_mb(limit)} per image",
        provider=caps.provider,
    )


def _sent_name(name: str, fmt: str, notices: list[str]) -> str:
    """A file name whose extension matches the content: multipart uploads are typed by it."""
    path = PurePath(name or "image")
    if path.suffix.lower() in _EXTENSIONS.get(fmt, ()):
        return path.name
    fixed = path.stem + _EXTENSIONS.get(fmt, ("." + fmt,))[0]
    if path.suffix:
        notices.append(f"{path.name} is really a {_FORMAT_WORDS.get(fmt, fmt)} file; it is sent as {fixed}.")
    return fixed


# --------------------------------------------------------------------------- prepare


def prepare(files: Sequence[tuple[str, bytes]], caps: ModelCaps) -> Prepared:
    """Check and adapt uploads for one provider/model; raise ``InvalidRequest`` for what can't be fixed."""
    who = provider_name(caps)
    if len(files) > caps.max_input_images:
        extra = len(files) - caps.max_input_images
        raise InvalidRequest(
            f"{who} takes at most {caps.max_input_images} input image{'s' if caps.max_input_images != 1 else ''} "
            f"for {caps.label}; you gave {len(files)}. Remove {extra}.",
            field="images",
            value=len(files),
            allowed=f"at most {caps.max_input_images}",
            provider=caps.provider,
        )
    notices: list[str] = []
    images: list[InputImage] = []
    infos: list[ImageInfo] = []
    for name, data in files:
        info = inspect(data, name)
        if info.format not in caps.input_formats or info.format not in SUPPORTED:
            raise InvalidRequest(
                f"{name} is a {_FORMAT_WORDS.get(info.format, info.format.upper())} image; {who} takes "
                f"{_formats_words(caps.input_formats)} for {caps.label}. Save it in one of those formats and "
                "upload it again.",
                field="images",
                value=name,
                allowed=tuple(caps.input_formats),
                provider=caps.provider,
            )
        sent_name = _sent_name(name, info.format, notices)
        out, out_info = _fit(data, info, caps, sent_name, notices)
        images.append(InputImage(data=out, mime=MIME_BY_FORMAT[info.format], name=sent_name))
        infos.append(replace(out_info, name=sent_name))
    return Prepared(images=tuple(images), infos=tuple(infos), notices=notices)


# --------------------------------------------------------------------------- masks


def _binary(alpha: Image.Image) -> Image.Image:
    """0 or 255 only: OpenAI edits where alpha is 0, so half-transparent edges are decided once, here."""
    return alpha.point(lambda v: 255 if v >= 128 else 0)


def _mask_png(alpha: Image.Image) -> bytes:
    black = Image.new("L", alpha.size, 0)
    out = io.BytesIO()
    Image.merge("RGBA", (black, black, black, alpha)).save(out, "PNG", compress_level=9)
    return out.getvalue()


def prepare_mask(
    mask_bytes: bytes,
    first_image: ImageInfo | bytes,
    caps: ModelCaps,
    *,
    notices: list[str] | None = None,
    name: str = "mask.png",
) -> InputImage:
    """A mask the provider takes: PNG with alpha (0 = edit here), the first image's size, under the limit.

    A mask without transparency is read as black-and-white, white = area to edit
    (the convention of most inpainting tools). ``notices`` receives what was changed.
    """
    who = provider_name(caps)
    notes = notices if notices is not None else []
    if not caps.accepts_mask:
        raise InvalidRequest(
            f"{who} does not take a mask for {caps.label}; describe the change in the prompt instead, "
            "or pick a provider that takes masks.",
            field="mask",
            value=name,
            allowed="no mask",
            provider=caps.provider,
        )
    if isinstance(first_image, ImageInfo):
        target = first_image.display_size
    else:
        target = inspect(first_image, "image").display_size
    minfo = inspect(mask_bytes, name)
    tw, th = target
    with Image.open(io.BytesIO(mask_bytes)) as m:
        m.load()
        untouched = (
            minfo.format == "png"
            and m.mode in ("RGBA", "LA")
            and m.size == target
            and len(mask_bytes) <= caps.mask_max_bytes
        )
        if minfo.has_alpha:
            alpha = (m.convert("RGBA") if m.mode not in ("RGBA", "LA") else m).getchannel("A")
        else:
            # No alpha: read luminance, white = edit (alpha 0), as most inpainting tools draw masks.
            alpha = m.convert("L").point(lambda v: 0 if v >= 128 else 255)
            notes.append(f"{name} has no transparency, so its white areas were taken as the area to edit.")
    if alpha.size != target:
        mw, mh = alpha.size
        if abs((mw / mh) / (tw / th) - 1) > 0.02:
            raise InvalidRequest(
                f"The mask is {mw}×{mh} but the image is {tw}×{th}; their proportions differ, so the mask "
                "cannot line up. Draw the mask over this image, or upload a mask made from it.",
                field="mask",
                value=f"{mw}x{mh}",
                allowed=f"{tw}x{th}",
                provider=caps.provider,
            )
        alpha = alpha.resize(target, Image.Resampling.BILINEAR)
        notes.append(f"The mask was {mw}×{mh} and was resized to {tw}×{th} to match the image.")
    alpha = _binary(alpha)
    hist = alpha.histogram()
    if hist[0] == 0:
        raise InvalidRequest(
            "The mask has no transparent area, so nothing would be edited. Paint (erase to transparent) "
            "the part of the image to change.",
            field="mask",
            value=name,
            allowed="a PNG whose transparent pixels mark the area to edit",
            provider=caps.provider,
        )
    if hist[255] == 0:
        notes.append("The mask covers the whole image, so the model may change everything.")
    data = mask_bytes if untouched else _mask_png(alpha)
    if len(data) > caps.mask_max_bytes:
        raise InvalidRequest(
            f"The mask is {_mb(len(data))}; {who} takes masks up to {_mb(caps.mask_max_bytes)}. Use a smaller image.",
            field="mask",
            value=name,
            allowed=f"at most {_mb(caps.mask_max_bytes)}",
            provider=caps.provider,
        )
    return InputImage(data=data, mime="image/png", name="mask.png")


def mask_from_strokes(strokes: Any, size: tuple[int, int]) -> bytes:
    """A mask PNG from a drawing canvas: painted pixels become transparent (alpha 0 = area to edit).

    ``strokes`` is an RGBA array (``H×W×4`` uint8, as drawing canvases return) or
    a PIL image; painted means alpha above a small threshold (for images without
    alpha: not black). The drawing is scaled to ``size`` (the image's width, height).
    """
    if isinstance(strokes, Image.Image):
        img = strokes
    else:
        dtype = getattr(strokes, "dtype", None)
        if dtype is not None and str(dtype) != "uint8":
            strokes = strokes.clip(0, 255).astype("uint8")  # canvases sometimes hand back floats
        try:
            img = Image.fromarray(strokes)
        except (TypeError, ValueError, AttributeError) as exc:
            raise InvalidRequest(
                "The drawn mask could not be read; draw it again.",
                field="mask",
                value=type(strokes).__name__,
                allowed="an RGBA drawing",
            ) from exc
    if img.mode == "P":
        img = img.convert("RGBA")
    painted = img.getchannel("A") if "A" in img.getbands() else img.convert("L")
    width, height = size
    if painted.size != (width, height):
        # Bilinear plus a low threshold grows the strokes by a hair: better to edit a little more than to leave a seam.
        painted = painted.resize((width, height), Image.Resampling.BILINEAR)
    alpha = painted.point(lambda v: 0 if v > 32 else 255)
    if alpha.histogram()[0] == 0:
        raise InvalidRequest(
            "Nothing is painted on the mask yet; paint over the part of the image to change.",
            field="mask",
            value="empty drawing",
            allowed="at least one painted stroke",
        )
    return _mask_png(alpha)


def _open_upright(data: bytes, what: str) -> Image.Image:
    try:
        im = Image.open(io.BytesIO(data))
        im.load()
    except _DECODE_ERRORS as exc:
        raise _unreadable(what, _what_is_it(data) if sniff_format(data) is None else "it is damaged") from exc
    transpose = _TRANSPOSE.get(_orientation_of(im))
    return im.transpose(transpose) if transpose is not None else im


def _changed(a: Image.Image, b: Image.Image, threshold: int) -> Image.Image:
    """255 where any channel differs by more than ``threshold``, else 0."""
    lut = [0] * (threshold + 1) + [255] * (255 - threshold)
    bands = [band.point(lut) for band in ImageChops.difference(a, b).split()]
    out = bands[0]
    for band in bands[1:]:
        out = ImageChops.lighter(out, band)
    return out


def _aligned(original: bytes, edited: bytes, mask: bytes) -> tuple[Image.Image, Image.Image, Image.Image, bool]:
    """Original and edited in one mode and size, and the keep-mask (255 = outside the edit area)."""
    orig = _open_upright(original, "the original image")
    edit = _open_upright(edited, "the edited image")
    mask_im = _open_upright(mask, "the mask")
    mode = "RGBA" if _has_alpha(orig) or _has_alpha(edit) else "RGB"
    orig, edit = orig.convert(mode), edit.convert(mode)
    resized = edit.size != orig.size
    if resized:
        edit = edit.resize(orig.size, Image.Resampling.LANCZOS)
    if "A" in mask_im.getbands() or "transparency" in mask_im.info:
        alpha = mask_im.convert("RGBA").getchannel("A")
    else:
        alpha = mask_im.convert("L").point(lambda v: 0 if v >= 128 else 255)  # white = edit, as in prepare_mask
    if alpha.size != orig.size:
        alpha = alpha.resize(orig.size, Image.Resampling.NEAREST)
    return orig, edit, _binary(alpha), resized


def _report(orig: Image.Image, edit: Image.Image, keep: Image.Image, threshold: int, resized: bool) -> MaskReport:
    total = keep.histogram()[255]
    changed = ImageChops.multiply(_changed(orig, edit, threshold), keep).histogram()[255]
    return MaskReport(
        changed_outside=changed, total_outside=total, fraction=changed / total if total else 0.0, resized=resized
    )


def mask_report(original: bytes, edited: bytes, mask: bytes, *, threshold: int = CHANGE_THRESHOLD) -> MaskReport:
    """Count pixels outside the mask's edit area that the model changed, without changing anything."""
    orig, edit, keep, resized = _aligned(original, edited, mask)
    return _report(orig, edit, keep, threshold, resized)


def _encode_output(im: Image.Image, fmt: str) -> bytes:
    fmt = "jpeg" if fmt.lower() == "jpg" else fmt.lower()
    out = io.BytesIO()
    if fmt == "jpeg":
        # 4:4:4: chroma subsampling would smear the edit's colours across the mask edge.
        im.convert("RGB").save(out, "JPEG", quality=95, subsampling=0)
    elif fmt == "webp":
        im.save(out, "WEBP", quality=95, method=4)
    elif fmt == "png":
        im.save(out, "PNG", compress_level=6)
    else:
        raise InvalidRequest(field="output_format", value=fmt, allowed=SUPPORTED)
    return out.getvalue()


def composite_outside_mask(
    original: bytes,
    edited: bytes,
    mask: bytes,
    output_format: str,
    *,
    threshold: int = CHANGE_THRESHOLD,
    feather: int = 2,
) -> tuple[bytes, MaskReport]:
    """Put the original back wherever the mask is opaque; report what the model had changed there.

    GPT Image models treat a mask as a hint and often repaint the whole image, so
    this makes the edit a true inpaint. ``feather`` softens the seam by blending a
    few pixels *inside* the edit area; pixels outside it are exactly the original's
    before ``output_format``'s own compression (PNG keeps them exactly, JPEG is
    written 4:4:4 at quality 95; lossy WEBP always halves colour resolution, so a
    thin seam along a high-contrast mask edge can shift). An edited image of
    another size is scaled to the original's first (``MaskReport.resized``).
    """
    orig, edit, keep, resized = _aligned(original, edited, mask)
    report = _report(orig, edit, keep, threshold, resized)
    blend = keep
    if feather > 0:
        # lighter() keeps 255 everywhere outside, so the blur only reaches into the edit area.
        blend = ImageChops.lighter(keep, keep.filter(ImageFilter.GaussianBlur(feather)))
    result = Image.composite(orig, edit, blend)
    return _encode_output(result, output_format), report


# --------------------------------------------------------------------------- thumbnails


def thumbnail(data: bytes, long_side: int = 384) -> bytes:
    """A small upright WEBP preview (never upscaled); JPEGs are decoded at reduced scale."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            orientation = _orientation_of(im)
            work = im.convert("RGBA" if "transparency" in im.info else "RGB") if im.mode == "P" else im
            work.thumbnail((long_side, long_side), Image.Resampling.LANCZOS, reducing_gap=2.0)
            small = _normalise_mode(work, "webp")
    except Image.DecompressionBombError as exc:
        raise InvalidRequest("The image has too many pixels to preview.", field="image", value=len(data)) from exc
    except _DECODE_ERRORS as exc:
        raise _unreadable("The image", _what_is_it(data) if sniff_format(data) is None else "it is damaged") from exc
    transpose = _TRANSPOSE.get(orientation)
    if transpose is not None:
        small = small.transpose(transpose)
    out = io.BytesIO()
    small.save(out, "WEBP", quality=80, method=4)
    return out.getvalue()

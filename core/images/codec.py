"""Decoding and encoding: upright, at reduced scale where a smaller image is wanted, and
re-encoded from one decode so quality loss does not compound; plus the history's previews.

Speed and memory matter: uploads can be 24-megapixel phone photos. JPEGs are decoded at
reduced scale with ``Image.draft`` whenever a smaller image is wanted.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image, JpegImagePlugin

from providers import imagegate
from providers.errors import InvalidRequest

from .info import DECODE_ERRORS, TRANSPOSE, ImageInfo, has_alpha, orientation_of, sniff_format, unreadable, what_is_it

__all__ = ["decode", "encode", "is_lossless_webp", "normalise_mode", "thumbnail"]


def normalise_mode(im: Image.Image, fmt: str) -> Image.Image:
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
        im = im.convert("RGBA" if has_alpha(im) else "RGB")
    return im


def decode(data: bytes, info: ImageInfo, target_long: int | None, *, exact: bool = True) -> Image.Image:
    """Decode upright, at ``target_long`` (display long side) or full size.

    With ``exact=False`` a JPEG comes back at libjpeg's reduced scale (at least
    ``target_long``), for the caller to resample further.
    """
    im: Image.Image = Image.open(io.BytesIO(data))
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
    im = normalise_mode(im, info.format)
    if exact and target is not None and im.size != target:
        im = im.resize(target, Image.Resampling.BILINEAR, reducing_gap=2.0)
    transpose = TRANSPOSE.get(info.orientation)
    if transpose is not None:
        im = im.transpose(transpose)  # after the resize: rotating the smaller image is cheaper
    return im


def is_lossless_webp(data: bytes) -> bool:
    return b"VP8L" in data[12:64] and b"VP8 " not in data[12:64]


def encode(
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
        qtables = getattr(source, "quantization", None)  # only a decoded JPEG has them
        if source is not None and quality is None and qtables:
            params["qtables"] = qtables
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


def thumbnail(data: bytes, long_side: int = 384) -> bytes:
    """A small upright WEBP preview (never upscaled); JPEGs are decoded at reduced scale."""
    imagegate.check(data, "The image", field="image")  # sized from its header before any decode
    try:
        with Image.open(io.BytesIO(data)) as im:
            orientation = orientation_of(im)
            work = im.convert("RGBA" if "transparency" in im.info else "RGB") if im.mode == "P" else im
            work.thumbnail((long_side, long_side), Image.Resampling.LANCZOS, reducing_gap=2.0)
            small = normalise_mode(work, "webp")
    except Image.DecompressionBombError as exc:
        raise InvalidRequest("The image has too many pixels to preview.", field="image", value=len(data)) from exc
    except DECODE_ERRORS as exc:
        raise unreadable("The image", what_is_it(data) if sniff_format(data) is None else "it is damaged") from exc
    transpose = TRANSPOSE.get(orientation)
    if transpose is not None:
        small = small.transpose(transpose)
    out = io.BytesIO()
    small.save(out, "WEBP", quality=80, method=4)
    return out.getvalue()

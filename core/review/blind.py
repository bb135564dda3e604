"""The picture a voter gets: the pixels only, so nothing in the file says where it came from.

Providers' files differ in more than pixels: format (PNG, JPEG, WEBP), embedded metadata (C2PA
manifests name the generator, text chunks, EXIF), size on disk. Every image of a review goes to
the voter re-encoded the same way (upright, RGB, at most ``MAX_SIDE`` pixels, JPEG, no metadata),
and through ``st.image`` of bytes its URL is a hash of those bytes, never a file name.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageOps

from providers import imagegate

__all__ = ["MAX_SIDE", "blind_jpeg"]

MAX_SIDE = 1024


def blind_jpeg(path: Path) -> bytes:
    data = path.read_bytes()
    imagegate.check(data, "A review image")
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        upright = ImageOps.exif_transpose(im)
        rgb = upright.convert("RGB")
    rgb.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=90, optimize=True)  # no exif=, no icc_profile=: nothing but pixels
    return out.getvalue()

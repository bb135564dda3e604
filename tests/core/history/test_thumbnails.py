"""Thumbnails made on the way to "done": right size, right colours, whatever the source format."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from core.history.files import THUMB_LONG_SIDE, make_thumbnail


def _encode(img: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("size", [(4000, 3000), (1024, 1536), (1536, 1024)])
def test_thumbnail_keeps_the_shape_and_the_colours(fmt, size):
    left, right = (200, 40, 40), (30, 90, 220)
    img = Image.new("RGB", size, left)
    img.paste(right, (size[0] // 2, 0, size[0], size[1]))
    with Image.open(io.BytesIO(make_thumbnail(_encode(img, fmt)))) as thumb:
        thumb.load()
        assert thumb.format == "WEBP" and thumb.mode == "RGB"
        assert max(thumb.size) == THUMB_LONG_SIDE
        assert thumb.size[0] / thumb.size[1] == pytest.approx(size[0] / size[1], rel=0.01)
        w, h = thumb.size
        for (x, colour) in ((w // 4, left), (3 * w // 4, right)):
            assert all(abs(a - b) <= 12 for a, b in zip(thumb.getpixel((x, h // 2)), colour, strict=True))


def test_grayscale_jpeg_thumbnail():
    gray = Image.linear_gradient("L").resize((2000, 1000))
    with Image.open(io.BytesIO(make_thumbnail(_encode(gray, "JPEG")))) as thumb:
        assert thumb.size == (384, 192)

"""Deterministic stand-in images: real files, visibly labelled SIMULATED.

The same prompt and index always give the same picture (colours come from
sha256(prompt + index)); an edit starts from its input images so a person can
see it derives from them. Everything is whole-image Pillow operations (no
per-pixel Python loops) so a 1024x1024 image takes tens of milliseconds.
"""

from __future__ import annotations

import hashlib
import io
import math
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont, ImageOps

__all__ = ["decode", "render"]

PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


@lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def decode(data: bytes) -> Image.Image:
    """Open image bytes fully (raises PIL.UnidentifiedImageError / OSError when not an image)."""
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def _colour(b: bytes) -> tuple[int, int, int]:
    # Keep colours mid-range so the white label stays readable on any of them.
    return (40 + b[0] % 176, 40 + b[1] % 176, 40 + b[2] % 176)


def _background(width: int, height: int, seed: bytes) -> Image.Image:
    c1, c2 = _colour(seed[0:3]), _colour(seed[3:6])
    style = seed[6] % 3
    if style == 2:
        mask = Image.radial_gradient("L")
    else:
        mask = Image.linear_gradient("L")
        if style == 1:
            mask = mask.transpose(Image.Transpose.ROTATE_90)
    mask = mask.resize((width, height), Image.Resampling.BILINEAR)
    img = Image.composite(Image.new("RGB", (width, height), c1), Image.new("RGB", (width, height), c2), mask)
    # A few seeded discs so two prompts with similar colours still look different.
    draw = ImageDraw.Draw(img)
    short = min(width, height)
    for i in range(3):
        b = seed[8 + 4 * i : 12 + 4 * i]
        r = short * (0.08 + (b[2] % 20) / 100)
        cx, cy = width * b[0] / 255, height * b[1] / 255
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=_colour(b[1:4]))
    return img


def _cover(img: Image.Image, width: int, height: int) -> Image.Image:
    return ImageOps.fit(img.convert("RGB"), (width, height), Image.Resampling.BILINEAR)


def _from_inputs(inputs: list[Image.Image], width: int, height: int, seed: bytes) -> Image.Image:
    """The first input filling the canvas, or several inputs tiled, then tinted."""
    if len(inputs) == 1:
        base = _cover(inputs[0], width, height)
    else:
        cols = math.ceil(math.sqrt(len(inputs)))
        rows = math.ceil(len(inputs) / cols)
        base = Image.new("RGB", (width, height), _colour(seed[0:3]))
        cw, ch = width // cols, height // rows
        for i, img in enumerate(inputs):
            base.paste(_cover(img, cw, ch), ((i % cols) * cw, (i // cols) * ch))
    return Image.blend(base, Image.new("RGB", (width, height), _colour(seed[3:6])), 0.3)


def _label(img: Image.Image, lines: list[str], *, opaque: bool = False) -> None:
    short = min(img.size)
    big, small = max(14, short // 11), max(10, short // 34)
    pad = max(6, short // 60)
    heights = [big] + [small] * (len(lines) - 1)
    band = pad * (len(lines) + 2) + sum(heights)
    overlay = Image.new("RGBA", img.size, (0, 0, 0, 0))
    # An edit's input may carry a label of its own: cover it so the two never overlap.
    ImageDraw.Draw(overlay).rectangle((0, 0, img.size[0], band), fill=(0, 0, 0, 235 if opaque else 150))
    img.alpha_composite(overlay)
    draw = ImageDraw.Draw(img)
    y = pad
    for line, size in zip(lines, heights, strict=True):
        draw.text((pad * 2, y), line, font=_font(size), fill=(255, 255, 255, 255))
        y += size + pad


def render(
    *,
    width: int,
    height: int,
    fmt: str,
    prompt: str,
    index: int = 0,
    provider: str = "",
    model: str = "",
    quality: str = "",
    compression: int | None = None,
    transparent: bool = False,
    inputs: list[bytes] | None = None,
) -> bytes:
    """One image as encoded bytes of ``fmt`` (png / jpeg / webp)."""
    seed = hashlib.sha256(f"{prompt}\x00{index}".encode()).digest()
    decoded = [decode(b) for b in inputs or ()]
    content = _from_inputs(decoded, width, height, seed) if decoded else _background(width, height, seed)
    img = content.convert("RGBA")
    if transparent and fmt != "jpeg":
        # Transparent background: keep an inset ellipse of content on a clear canvas.
        mask = Image.new("L", (width, height), 0)
        ImageDraw.Draw(mask).ellipse((width * 0.06, height * 0.06, width * 0.94, height * 0.94), fill=255)
        img.putalpha(mask)
    words = prompt.split()
    excerpt = " ".join(words[:8]) + (" …" if len(words) > 8 else "")
    kind = f"edit of {len(decoded)} image(s)" if decoded else "generation"
    _label(
        img,
        [
            "SIMULATED",
            f"{provider} · {model} · quality {quality or 'auto'}",
            f"{kind} · #{index + 1} · {width}x{height}",
            excerpt,
        ],
        opaque=bool(decoded),
    )
    out = io.BytesIO()
    if fmt == "jpeg":
        img.convert("RGB").save(out, "JPEG", quality=100 if compression is None else compression)
    elif fmt == "webp":
        if not transparent:
            img = img.convert("RGB")
        img.save(out, "WEBP", quality=100 if compression is None else compression, method=0)
    else:
        if not transparent:
            img = img.convert("RGB")
        img.save(out, "PNG", compress_level=1)  # speed over size: these are throwaway files
    return out.getvalue()

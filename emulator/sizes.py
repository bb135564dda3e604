"""Image size rules the emulated providers check: gpt-image-2's pixel limits, the aspect
ratios, and the pixels a ratio (and an EvoLink resolution tier) stands for."""

from __future__ import annotations

import math

__all__ = [
    "GPT2_RATIOS",
    "MAX_EDGE",
    "MAX_PIXELS",
    "MIN_PIXELS",
    "RATIO_PIXELS",
    "gpt2_size_problem",
    "parse_wxh",
    "ratio_to_pixels",
]

# gpt-image-2 size rules (the openai package 3.57, image_generate_params.py `size`).
MIN_PIXELS = 655_360
MAX_PIXELS = 8_294_400
MAX_EDGE = 3840
MAX_RATIO = 3
RATIO_PIXELS = {"1:1": (1024, 1024), "3:2": (1536, 1024), "2:3": (1024, 1536)}
GPT2_RATIOS = (
    "1:1", "1:2", "2:1", "1:3", "3:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "9:21", "21:9",
)  # fmt: skip
# EvoLink's resolution tiers, read as a target pixel area (our stand-in: not published).
RESOLUTION_AREA = {"1K": 1024 * 1024, "2K": 2048 * 2048, "4K": 3840 * 2160}


def parse_wxh(size: str) -> tuple[int, int] | None:
    w, sep, h = size.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit():
        return None
    return int(w), int(h)


def gpt2_size_problem(width: int, height: int) -> str | None:
    """Why ``width``x``height`` breaks the gpt-image-2 rules, or None when it is fine."""
    if width % 16 or height % 16:
        return "both edges must be multiples of 16"
    if max(width, height) > MAX_EDGE:
        return f"the longest edge must be at most {MAX_EDGE} px"
    if max(width, height) > MAX_RATIO * min(width, height):
        return "the aspect ratio must be between 1:3 and 3:1"
    if not MIN_PIXELS <= width * height <= MAX_PIXELS:
        return f"the image must have between {MIN_PIXELS:,} and {MAX_PIXELS:,} pixels"
    return None


def ratio_to_pixels(ratio: str, resolution: str | None = None) -> tuple[int, int]:
    """Pixels for an aspect ratio: the classic three map to OpenAI's sizes; other
    ratios (and any ratio with a 1K/2K/4K tier) get about the tier's pixel area,
    edges multiples of 16, within the gpt-image-2 limits."""
    if resolution is None and ratio in RATIO_PIXELS:
        return RATIO_PIXELS[ratio]
    a, b = (int(x) for x in ratio.split(":"))
    area = RESOLUTION_AREA[resolution or "1K"]
    w = math.sqrt(area * a / b)
    h = w * b / a
    scale = min(1.0, MAX_EDGE / max(w, h))
    w16 = max(16, int(w * scale / 16) * 16)  # round down: never above the tier area
    h16 = max(16, int(h * scale / 16) * 16)
    while max(w16, h16) > MAX_RATIO * min(w16, h16):  # rounding pushed it past 3:1
        if w16 > h16:
            w16 -= 16
        else:
            h16 -= 16
    return w16, h16  # every tier's area is far above MIN_PIXELS (tests check each ratio and tier)

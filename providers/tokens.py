"""How OpenAI's GPT Image models count tokens, as far as public sources say.

Used by the price catalogue (estimates) and by the emulator (the ``usage`` it
reports), so both sides agree on one formula. Sources are in
``providers/prices.toml``; where OpenAI publishes nothing exact the numbers are
community-measured and the catalogue marks them so.
"""

from __future__ import annotations

import math

__all__ = [
    "GPT_IMAGE_1_OUTPUT_TOKENS",
    "input_image_tokens",
    "output_image_tokens",
    "parse_size",
    "priced_qualities",
    "text_tokens",
]

# gpt-image-1 family: output image tokens by quality and size (community.openai.com
# threads 1243630 and 1371851; matches OpenAI's published per-image prices).
GPT_IMAGE_1_OUTPUT_TOKENS: dict[str, dict[str, int]] = {
    "low": {"1024x1024": 272, "1024x1536": 408, "1536x1024": 400},
    "medium": {"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568},
    "high": {"1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208},
}

# gpt-image-2 and later: output tokens from a per-quality factor f and the size, by the
# formula of OpenAI's image token calculator (the guide's GptImageTokenCalculator; reproduces
# OpenAI's published gpt-image-2 prices exactly: community.openai.com/t/1382699). The 2.5
# models use fewer tokens per quality and add xhigh and max (the same calculator, read by
# third parties, matched by real usage). The 2.6 models' factors are not published: they are
# assumed to be gpt-image-2's.
_GPT_IMAGE_2_FACTOR = {"low": 16, "medium": 48, "high": 96}
_GPT_IMAGE_2_5_FACTOR = {"low": 16, "medium": 24, "high": 48, "xhigh": 64, "max": 96}

# How OpenAI bills quality=auto is not published: estimate it as high (conservative).
AUTO_BILLED_AS = "high"


def parse_size(size: str) -> tuple[int, int]:
    w, _, h = size.lower().partition("x")
    return int(w), int(h)


def _family(model: str) -> str:
    if model.startswith(("gpt-image-1", "chatgpt-image")):
        return "gpt-image-1"
    return "gpt-image-2.5" if model.startswith("gpt-image-2.5") else "gpt-image-2"


def _factors(model: str) -> dict[str, int]:
    return _GPT_IMAGE_2_5_FACTOR if _family(model) == "gpt-image-2.5" else _GPT_IMAGE_2_FACTOR


def priced_qualities(model: str) -> tuple[str, ...]:
    """The qualities whose output tokens are known for ``model`` (``auto`` always: it is billed as high)."""
    if _family(model) == "gpt-image-1":
        return (*GPT_IMAGE_1_OUTPUT_TOKENS, "auto")
    return (*_factors(model), "auto")


def output_image_tokens(model: str, quality: str, size: str) -> int:
    """Output image tokens for one image of ``size`` ("WxH") at ``quality``."""
    q = AUTO_BILLED_AS if quality == "auto" else quality
    if _family(model) == "gpt-image-1":
        table = GPT_IMAGE_1_OUTPUT_TOKENS[q]
        if size not in table:  # 1.x models only make the three sizes; "auto" -> the dearest
            return max(table.values())
        return table[size]
    w, h = parse_size(size)
    f = _factors(model)[q]
    long_side, short_side = max(w, h), min(w, h)
    s = (2 * f * short_side + long_side) // (2 * long_side)
    return math.ceil(f * s * (2_000_000 + w * h) / 4_000_000)


def input_image_tokens(model: str, width: int, height: int, fidelity: str | None = None) -> int:
    """Image input tokens for one input image of an edit.

    gpt-image-1/1.5: scale so the short side is at most 512 px, 65 base + 129 per
    512-px tile (community-verified). gpt-image-2: 32-px patches with a 1,536-patch
    budget, small inputs magnified to about 1024 px on the long side (community
    post; not official). ``input_fidelity=high`` on 1.x adds a large fixed charge.
    """
    if width <= 0 or height <= 0:
        raise ValueError("image dimensions must be positive")
    if _family(model) == "gpt-image-1":
        scale = min(1.0, 512 / min(width, height))
        w, h = width * scale, height * scale
        tiles = math.ceil(w / 512) * math.ceil(h / 512)
        tokens = 65 + 129 * tiles
        if fidelity == "high":
            tokens += 6000  # community-measured (~$0.06 at $10/M): see prices.toml
        return tokens
    long_side = max(width, height)
    scale = 1024 / long_side if long_side < 1024 else 1.0
    w, h = width * scale, height * scale
    patches = math.ceil(w / 32) * math.ceil(h / 32)
    if patches > 1536:
        shrink = math.sqrt(1536 / patches)
        patches = math.ceil(w * shrink / 32) * math.ceil(h * shrink / 32)
        patches = min(patches, 1536)
    return patches


def text_tokens(text: str) -> int:
    """Prompt text tokens, estimated at one token per four characters (rounded up).

    Exact counts need the model's tokenizer; the billed ``usage`` corrects this.
    """
    return max(1, math.ceil(len(text) / 4)) if text else 0

"""How sizes and times are written on the page (money: ``core.spend.money.format_usd``)."""

from __future__ import annotations

from decimal import Decimal

from core.spend.money import format_usd


def per_image(total: Decimal | None, count: int) -> str:
    """A total's share per image, so that per image × count is the total shown beside it.

    Where the share has more than four decimals (``format_usd`` would round it, and the product
    would miss the total by a rounding step) it is marked as approximate.
    """
    if total is None:
        return "—"
    share = total / max(1, count)
    shown = format_usd(share)
    exact = not shown.startswith("<") and Decimal(shown.replace("$", "").replace(",", "")) == share
    return shown if exact or count <= 1 else f"≈ {shown}"


def nbytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(int(round(value)), 60)
    return f"{minutes} min {secs:02d} s"


# The price catalogue's item keys in plain words (Settings' price table).
_ITEM_WORDS = {
    "text_input": "Prompt text in", "text_input_cached": "Prompt text in, cached", "text_output": "Text out",
    "image_input": "Input image", "image_input_cached": "Input image, cached", "image_output": "Output image",
    "usd_per_credit": "US dollars per credit",
}


def price_item(item: str) -> str:
    """``text_input_cached`` -> "Prompt text in, cached"; ``published per image 1024x1536 high`` ->
    "Published per image · 1024×1536 · High"; a quality key -> its word; anything else as it is."""
    from providers.types import QUALITY_WORDS

    base, _, extra = item.partition(" (")
    if base in _ITEM_WORDS:
        return _ITEM_WORDS[base] + (f" ({extra}" if extra else "")
    if base in QUALITY_WORDS:
        return f"{QUALITY_WORDS[base]} quality"
    if base in ("1K", "2K", "4K"):
        return f"{base} resolution"
    words = base.split()
    if words[:3] == ["published", "per", "image"] and len(words) == 5:
        return f"Published per image · {words[3].replace('x', '×')} · {QUALITY_WORDS.get(words[4], words[4])}"
    return item

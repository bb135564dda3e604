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

"""How money, sizes and times are written on the page."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal


def usd(value: Decimal | None, *, places: int | None = None) -> str:
    if value is None:
        return "—"
    if places is None:
        # Cents hide the difference between a $0.005 and a $0.011 image: show more where it matters.
        places = 2 if abs(value) >= 1 else 4 if abs(value) >= Decimal("0.0001") or value == 0 else 6
    q = Decimal(1).scaleb(-places)
    shown = value.quantize(q, rounding=ROUND_HALF_UP)
    if places > 2:
        shown = shown.normalize()
        if shown == shown.to_integral():
            shown = shown.quantize(Decimal("0.01"))
        # keep at least two decimals ($0.48, not $0.48000 or $0.5)
        text = format(shown, "f")
        whole, _, frac = text.partition(".")
        if len(frac) < 2:
            text = f"{whole}.{frac.ljust(2, '0')}"
        return f"${text}"
    return f"${shown:,.{places}f}"


def amount(value: Decimal, unit: str) -> str:
    if unit.upper() == "USD":
        return usd(value)
    return f"{format(value.normalize(), 'f')} {unit}"


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

"""Exact money: USD as integer nano-dollars in the database, ``Decimal`` everywhere else.

Integers sum exactly in SQL on SQLite and PostgreSQL alike, so a budget check
computed by ``SUM`` can never drift by a rounding error.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal, InvalidOperation

__all__ = ["NANOS_PER_USD", "format_usd", "nanos_to_usd", "parse_decimal", "usd_to_nanos"]

NANOS_PER_USD = 1_000_000_000


def usd_to_nanos(usd: Decimal | int | str, *, round_up: bool = False) -> int:
    """Whole nano-dollars for an amount in USD.

    ``round_up`` is for reservations: a sub-nano remainder must never let a
    submission slip under a cap it does not fit.
    """
    value = Decimal(usd) * NANOS_PER_USD
    return int(value.to_integral_value(rounding=ROUND_CEILING if round_up else ROUND_HALF_EVEN))


def nanos_to_usd(nanos: int | None) -> Decimal | None:
    if nanos is None:
        return None
    return Decimal(int(nanos)) / NANOS_PER_USD


def parse_decimal(raw: object) -> Decimal | None:
    """A Decimal from a stored string/number, or None (never a float round trip)."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, Decimal):
        return raw
    try:
        return Decimal(str(raw))
    except InvalidOperation:
        return None


def format_usd(usd: Decimal | None) -> str:
    """``$0.042`` style: cents for amounts of a dollar or more, more digits below that."""
    if usd is None:
        return "unknown"
    if usd == 0:
        return "$0.00"
    if abs(usd) >= 1:
        return f"${usd.quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN):,}"
    # Keep three significant digits so $0.0053 does not show as $0.01.
    text = f"{usd.normalize():f}"
    whole, _, frac = text.partition(".")
    digits = 0
    out = []
    for ch in frac:
        out.append(ch)
        if ch != "0" or digits:
            digits += 1
        if digits >= 3:
            break
    frac = "".join(out).rstrip("0")
    if len(frac) < 2:
        frac = frac.ljust(2, "0")
    sign = "-" if usd < 0 else ""
    return f"{sign}${whole.lstrip('-') or '0'}.{frac}"

"""Exact money: USD as integer nano-dollars in the database, ``Decimal`` everywhere else, and the one way it is written.

Integers sum exactly in SQL on SQLite and PostgreSQL alike, so a budget check
computed by ``SUM`` can never drift by a rounding error.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import overload

__all__ = [
    "NANOS_PER_USD",
    "format_amount",
    "format_exact",
    "format_usd",
    "nanos_to_usd",
    "parse_decimal",
    "usd_to_nanos",
    "vega_usd",
]

NANOS_PER_USD = 1_000_000_000


def usd_to_nanos(usd: Decimal | int | str, *, round_up: bool = False) -> int:
    """Whole nano-dollars for an amount in USD.

    ``round_up`` is for reservations: a sub-nano remainder must never let a
    submission slip under a cap it does not fit.
    """
    value = Decimal(usd) * NANOS_PER_USD
    return int(value.to_integral_value(rounding=ROUND_CEILING if round_up else ROUND_HALF_EVEN))


@overload
def nanos_to_usd(nanos: int) -> Decimal: ...
@overload
def nanos_to_usd(nanos: None) -> None: ...
@overload
def nanos_to_usd(nanos: int | None) -> Decimal | None: ...
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


_CENT = Decimal("0.01")
_TENTH_MILLI = Decimal("0.0001")


def format_usd(usd: Decimal | int | float | None) -> str:
    """The one way the app writes a USD amount: pages, exports, reports and charts.

    ``$0.00`` for zero; a dollar or more in cents with thousands separators
    (``$1,234.57``); below a dollar exactly four decimals, never trimmed
    (``$0.0527``), so two prices on one page always line up and a $0.005 image
    does not read as $0.01; a nonzero amount under $0.0001 as ``<$0.0001``;
    negatives with a leading minus; None (not known) as ``—``. Halves round up.
    """
    if usd is None:
        return "—"
    value = usd if isinstance(usd, Decimal) else Decimal(str(usd))
    if value.is_nan():
        return "—"
    if value == 0:
        return "$0.00"
    sign = "-" if value < 0 else ""
    size = abs(value)
    if size < _TENTH_MILLI:
        return f"{sign}<$0.0001"
    four = size.quantize(_TENTH_MILLI, rounding=ROUND_HALF_UP)
    if four < 1:
        return f"{sign}${four}"
    return f"{sign}${size.quantize(_CENT, rounding=ROUND_HALF_UP):,}"


def format_exact(usd: Decimal | None) -> str:
    """An exact USD figure for files meant for other programs (CSV): plain digits, no rounding; None as ""."""
    return "" if usd is None else format(usd.normalize(), "f")


def format_amount(value: Decimal, unit: str) -> str:
    """An amount in its own unit: USD through ``format_usd``, anything else (credits) exact."""
    if unit.upper() == "USD":
        return format_usd(value)
    return f"{format(value.normalize(), 'f')} {unit}"


def vega_usd(field: str = "datum.value") -> str:
    """``format_usd``'s rule as a Vega expression, for chart axes (the browser formats their ticks).

    Tooltips and labels carry text made by ``format_usd`` itself; only axis ticks,
    which Vega picks, need the rule in Vega's own language.
    """
    size = f"abs({field})"
    sign = f"({field} < 0 ? '-' : '')"
    return (
        f"{field} == 0 ? '$0.00' : {size} < 0.0001 ? {sign} + '<$0.0001' : "
        f"round({size} * 10000) < 10000 ? {sign} + format({size}, '$.4f') : {sign} + format({size}, '$,.2f')"
    )

"""The one money formatter: every page, export, report and chart writes USD through ``format_usd``."""

from __future__ import annotations

import ast
from decimal import Decimal
from pathlib import Path

import pytest

from core.spend.money import format_amount, format_exact, format_usd, vega_usd

ROOT = Path(__file__).resolve().parents[3]

RULE = [
    # zero
    (Decimal(0), "$0.00"),
    (Decimal("0.000"), "$0.00"),
    (Decimal("-0"), "$0.00"),
    # a dollar or more: cents, thousands separators, halves up
    (Decimal(1), "$1.00"),
    (Decimal("1.5"), "$1.50"),
    (Decimal("1234.567"), "$1,234.57"),
    (Decimal("12345.675"), "$12,345.68"),
    (Decimal("1000000"), "$1,000,000.00"),
    # below a dollar: exactly four decimals, never trimmed
    (Decimal("0.0527"), "$0.0527"),
    (Decimal("0.21065"), "$0.2107"),
    (Decimal("0.422"), "$0.4220"),
    (Decimal("0.07"), "$0.0700"),
    (Decimal("0.0053"), "$0.0053"),
    (Decimal("0.00593"), "$0.0059"),
    (Decimal("0.0001"), "$0.0001"),
    (Decimal("0.99994"), "$0.9999"),
    # rounds up to a dollar: written as one
    (Decimal("0.99996"), "$1.00"),
    # nonzero under $0.0001
    (Decimal("0.00005"), "<$0.0001"),
    (Decimal("0.000000001"), "<$0.0001"),
    # negatives: a leading minus, the same rule for the size
    (Decimal("-0.5"), "-$0.5000"),
    (Decimal("-1234.5"), "-$1,234.50"),
    (Decimal("-0.00005"), "-<$0.0001"),
    # unknown
    (None, "—"),
    # ints and chart floats go through the same rule
    (3, "$3.00"),
    (0.1 + 0.2, "$0.3000"),
    (0.0, "$0.00"),
]


@pytest.mark.parametrize(("amount", "text"), RULE)
def test_format_usd_follows_the_rule(amount, text):
    assert format_usd(amount) == text


def test_format_amount_writes_usd_by_the_rule_and_credits_exactly():
    assert format_amount(Decimal("0.422"), "USD") == "$0.4220"
    assert format_amount(Decimal("12.50"), "credits") == "12.5 credits"
    assert format_amount(Decimal("3"), "credits") == "3 credits"


def test_chart_axes_use_the_same_rule():
    expr = vega_usd("datum.value")
    assert "'$0.00'" in expr and "'<$0.0001'" in expr and "'$.4f'" in expr and "'$,.2f'" in expr


def test_format_exact_is_plain_digits_for_csv():
    assert format_exact(Decimal("0.0527000")) == "0.0527"
    assert format_exact(Decimal("0E-9")) == "0"
    assert format_exact(Decimal("1234.5")) == "1234.5"
    assert format_exact(None) == ""


def test_no_other_usd_formatter_is_left():
    # The old ui.format.usd rounded differently; a new local copy would bring the disagreement back.
    offenders = []
    for folder in ("ui", "app_pages", "core", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if not isinstance(node, ast.FunctionDef) or node.returns is None:
                    continue
                if ast.unparse(node.returns) == "str" and node.name in ("usd", "_usd", "format_money", "money_text"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not offenders

"""The caption beside Generate says what is left of a signed-in member's own daily budget, and its refusal
names that budget (issue 14: money per person)."""

from __future__ import annotations

from decimal import Decimal

from core.jobs.submission import Quote
from core.spend.budget import Caps, Spend
from ui.studio_cost import _budget_line


def _quote(total: str, *, member_left: str | None, member_cap: str | None = "1.00") -> Quote:
    caps = Caps(daily=Decimal("50"), total=None, daily_source="settings", total_source=None,
                member_daily=None if member_cap is None else Decimal(member_cap))
    spend = Spend(endpoint="live", today=Decimal("2"), total=Decimal("2"), pending=Decimal(0), caps=caps,
                  left_today=Decimal("48"), left_total=None, member_today=Decimal("0.60"),
                  member_left=None if member_left is None else Decimal(member_left))
    return Quote(jobs=1, images=1, estimates=(), total_usd=Decimal(total), spend=spend)


def test_a_member_sees_their_own_budget_left_beside_generate() -> None:
    line, block = _budget_line(_quote("0.10", member_left="0.40"))
    assert block is None
    assert line is not None and "$0.4000 of your own $1.00 left today" in line and "$48.00 left today" in line


def test_a_batch_over_the_members_own_budget_is_blocked_and_says_which() -> None:
    quote = _quote("0.50", member_left="0.40")
    assert not quote.fits
    _, block = _budget_line(quote)
    assert block is not None and "your own daily budget has $0.4000 left" in block
    assert "ask an owner to raise your cap" in block  # a maker cannot raise it themselves


def test_the_local_operator_has_no_member_line() -> None:
    line, _ = _budget_line(_quote("0.10", member_left=None, member_cap=None))
    assert line is not None and "your own" not in line

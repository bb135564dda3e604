"""Results from stored votes: ratings, win rates, cost per winning image and best value, checked by hand."""

from __future__ import annotations

import math
from decimal import Decimal

from conftest import finished_jobs

from core.accounts import Identity
from core.history.store import Store
from core.review import rating
from core.review.results import cost_per_win, results
from core.review.store import ReviewStore, voter_key

MAKER = Identity(user_id="u-maker", email="m@example.com", name="M", role="maker")


def test_cost_per_win_is_exact() -> None:
    assert cost_per_win(Decimal("0.042"), 1.5, 4) == Decimal("0.112")
    assert cost_per_win(Decimal("0.011"), 0.0, 4) is None
    assert cost_per_win(None, 2.0, 4) is None
    assert cost_per_win(Decimal("0.167"), 3.0, 3) == Decimal("0.167")


def test_results_match_a_hand_computation_on_the_stored_votes(store: Store) -> None:
    reviews = ReviewStore(store)
    review = reviews.create("r", finished_jobs(store), MAKER)
    idx = {(i.prompt, i.quality): i.idx for i in review.items}
    fox = "a red fox in snow"
    high, low, medium = idx[(fox, "high")], idx[(fox, "low")], idx[(fox, "medium")]
    cast = [  # (voter, left, right, choice)
        ("a", high, low, "left"), ("a", medium, high, "right"), ("a", low, medium, "tie"),
        ("b", low, high, "right"), ("b", high, medium, "tie"), ("b", medium, low, "left"),
    ]
    for voter, left, right, choice in cast:
        v = Identity(user_id=voter, email=f"{voter}@example.com", name=voter, role="viewer")
        assert reviews.vote(review, v, voter_key(v, None), left, right, choice) == "recorded"
    out = results(review, reviews.votes(review.id))
    by = {c.quality: c for c in out.candidates}
    # By hand: high beat low twice, beat medium once, tied medium once -> 3.5 of 4.
    assert (by["high"].wins, by["high"].votes) == (3.5, 4)
    assert (by["medium"].wins, by["medium"].votes) == (2.0, 4)  # lost to high, tied low and high, beat low
    assert (by["low"].wins, by["low"].votes) == (0.5, 4)  # one tie
    assert by["high"].win_rate == 0.875
    assert by["high"].cost_per_win == Decimal("0.167") * 4 / Decimal("3.5")
    assert by["medium"].cost_per_win == Decimal("0.084")  # 0.042 / (2 / 4)
    assert by["low"].cost_per_win == Decimal("0.088")  # 0.011 / (0.5 / 4)
    assert [c.quality for c in out.candidates] == ["high", "medium", "low"]
    assert (out.votes, out.voters) == (6, 2)
    # The ratings are rating.rate's on the same votes, mapped to candidates.
    expected = rating.rate([i.candidate for i in review.items], [
        rating.Vote(review.item(lf).candidate, review.item(rt).candidate, ch) for _, lf, rt, ch in cast])
    assert [round(c.score, 9) for c in out.candidates] == [round(r.score, 9) for r in expected]
    assert all(c.low < c.score < c.high for c in out.candidates)
    assert math.isclose(sum(c.score for c in out.candidates) / 3, 1000, abs_tol=1e-6)
    # Six votes leave wide intervals: every candidate reaches the best, so the cheapest is best value.
    assert [c.quality for c in out.candidates if c.best_value] == ["low"]


def test_no_votes_no_best_value(store: Store) -> None:
    review = ReviewStore(store).create("r", finished_jobs(store), MAKER)
    out = results(review, [])
    assert all(not c.best_value and c.votes == 0 and c.cost_per_win is None for c in out.candidates)


def test_the_html_report_shows_the_verdict(store: Store) -> None:
    from core.exports.report import build_report

    reviews = ReviewStore(store)
    review = reviews.create("Tiers <b>", finished_jobs(store), MAKER)
    fox = [i for i in review.items if i.prompt == "a red fox in snow"]
    high = next(i.idx for i in fox if i.quality == "high")
    low = next(i.idx for i in fox if i.quality == "low")
    for voter in ("a", "b", "c"):
        v = Identity(user_id=voter, email=f"{voter}@example.com", name=voter, role="viewer")
        reviews.vote(review, v, voter_key(v, None), high, low, "left")
    res = results(review, reviews.votes(review.id))
    html = build_report("Report", [], reviews=[(review.name, res)])
    assert "Blind review: Tiers &lt;b&gt;" in html and "Tiers <b>" not in html  # the name is escaped
    assert "3 votes from 3 voters" in html
    by = {c.quality: c for c in res.candidates}
    assert by["high"].cost_per_win == Decimal("0.167") and "$0.1670" in html  # won all three: the price itself
    assert "no wins" in html  # low never won
    assert html.count("best value") == 1

"""Bradley-Terry ratings: closed-form answers, agreement with choix, recovery of known strengths."""

from __future__ import annotations

import math
import random
from decimal import Decimal

import numpy as np
import pytest

from core.review.rating import ELO, Vote, best_value, rate


def votes(pairs: list[tuple[str, str, str]]) -> list[Vote]:
    return [Vote(a, b, o) for a, b, o in pairs]  # type: ignore[arg-type]


def test_two_candidates_three_wins_in_four_give_odds_of_three():
    # With a flat prior the MLE makes P(A beats B) = 3/4 exactly: theta_A - theta_B = ln 3.
    data = votes([("A", "B", "left")] * 3 + [("A", "B", "right")])
    ratings = {r.candidate: r for r in rate(["A", "B"], data, prior_sd=1e6)}
    assert ratings["A"].theta - ratings["B"].theta == pytest.approx(math.log(3), abs=1e-9)
    assert ratings["A"].score - ratings["B"].score == pytest.approx(ELO * math.log(3), abs=1e-6)
    assert (ratings["A"].wins, ratings["A"].votes, ratings["A"].win_rate) == (3.0, 4, 0.75)
    # The Fisher information of one difference is n p (1 - p) = 4 * 3/16: its sd is 1/sqrt(0.75).
    sd_diff = 1 / math.sqrt(4 * 0.75 * 0.25)
    half_width = ratings["A"].high - ratings["A"].score  # each theta carries half the difference
    # (a nearly flat prior leaves the inverse Hessian ill-conditioned: agree to 1e-4)
    assert half_width == pytest.approx(1.959963984540054 * ELO * sd_diff / 2, rel=1e-4)


def test_a_tie_is_half_a_win_each():
    data = votes([("A", "B", "tie")] * 4)
    ratings = {r.candidate: r for r in rate(["A", "B"], data)}
    assert ratings["A"].score == pytest.approx(ratings["B"].score)
    assert ratings["A"].wins == 2.0 and ratings["A"].win_rate == 0.5


def test_agrees_with_choix_on_the_same_votes():
    choix = pytest.importorskip("choix")
    rng = random.Random(7)
    names = ["a", "b", "c", "d"]
    strength = {"a": 1.2, "b": 0.4, "c": 0.0, "d": -1.0}
    data = []
    for _ in range(300):
        x, y = rng.sample(names, 2)
        p = 1 / (1 + math.exp(strength[y] - strength[x]))
        data.append(Vote(x, y, "left" if rng.random() < p else "right"))
    sd = 2.0
    ours = {r.candidate: r.theta for r in rate(names, data, prior_sd=sd)}
    index = {n: i for i, n in enumerate(names)}
    pairs = [(index[v.left], index[v.right]) if v.outcome == "left" else (index[v.right], index[v.left]) for v in data]
    # choix's penalty is alpha * sum(theta^2): a prior precision of 2 * alpha.
    theirs = choix.opt_pairwise(len(names), pairs, alpha=1 / (2 * sd**2), tol=1e-10)
    theirs = theirs - theirs.mean()
    assert np.allclose([ours[n] for n in names], theirs, atol=1e-4)


def test_many_votes_recover_known_strengths_within_their_intervals():
    rng = random.Random(11)
    strength = {"high": 1.0, "medium": 0.0, "low": -1.0}
    names = list(strength)
    data = []
    for _ in range(3000):
        x, y = rng.sample(names, 2)
        p = 1 / (1 + math.exp(strength[y] - strength[x]))
        data.append(Vote(x, y, "left" if rng.random() < p else "right"))
    ratings = rate(names, data)
    assert [r.candidate for r in ratings] == ["high", "medium", "low"]
    for r in ratings:
        true_score = 1000 + ELO * strength[r.candidate]
        assert r.low <= true_score <= r.high


def test_best_value_is_the_cheapest_not_worse_than_the_best():
    # "low" is clearly worse; "medium" and "high" cannot be told apart with these votes.
    data = votes([("high", "low", "left")] * 8 + [("medium", "low", "left")] * 8
                 + [("high", "medium", "left")] * 3 + [("high", "medium", "right")] * 2)
    ratings = rate(["high", "medium", "low"], data)
    assert ratings[0].candidate == "high" and ratings[-1].candidate == "low"
    price = {"high": Decimal("0.2107"), "medium": Decimal("0.0527"), "low": Decimal("0.0059")}
    assert best_value(ratings, price) == "medium"
    assert best_value(ratings, {"high": Decimal("0.2"), "medium": None, "low": Decimal("0.01")}) == "high"


def test_no_votes_rates_everyone_equal_with_wide_intervals():
    ratings = rate(["x", "y"], [])
    assert all(r.score == pytest.approx(1000) and r.votes == 0 and r.win_rate == 0 for r in ratings)
    assert ratings[0].high - ratings[0].low > 400

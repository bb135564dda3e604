"""Ratings from pairwise votes: a Bradley-Terry model with its uncertainty.

Each candidate (provider x model x quality) has a strength ``theta``; the chance that A is
picked over B is ``1 / (1 + exp(theta_B - theta_A))``. The strengths are the maximum of the
votes' likelihood times a weak normal prior (sd ``PRIOR_SD`` on each theta): without it a
candidate that won every vote would have an infinite strength, and two candidates never
compared would have no relation at all. "Can't tell" counts as half a win for each side.
The uncertainty is the usual one of that estimate: the inverse of the Hessian of the
negative log posterior at its maximum (a Laplace approximation), reported as a 95% interval.

Why our own few lines instead of ``choix`` (a maintained library for these models): choix
gives the point estimates but neither intervals nor ties, and would add SciPy to the app;
the tests check that these estimates agree with choix's.

Scores are shown on the Elo scale (400 points = ten-to-one odds), centred on 1000.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import numpy as np

__all__ = ["PRIOR_SD", "Rating", "Vote", "best_value", "rate"]

PRIOR_SD = 2.0  # on theta: a 1-in-50 chance that a candidate is 8:1 better than the average
ELO = 400 / math.log(10)
Z95 = 1.959963984540054

Outcome = Literal["left", "right", "tie"]


@dataclass(frozen=True)
class Vote:
    left: str
    right: str
    outcome: Outcome


@dataclass(frozen=True)
class Rating:
    candidate: str
    score: float  # Elo scale, centred on 1000
    low: float  # 95% interval on the same scale
    high: float
    votes: int  # pairs this candidate was in
    wins: float  # a tie counts half
    theta: float  # the model's own log-strength (mean 0)

    @property
    def win_rate(self) -> float:
        return self.wins / self.votes if self.votes else 0.0


def _tallies(candidates: Sequence[str], votes: Iterable[Vote]) -> tuple[np.ndarray, np.ndarray]:
    """``w[i, j]``: times i beat j (ties half each); ``n[i, j]``: times they met."""
    index = {c: i for i, c in enumerate(candidates)}
    size = len(candidates)
    w = np.zeros((size, size))
    n = np.zeros((size, size))
    for v in votes:
        i, j = index[v.left], index[v.right]
        if i == j:
            continue
        n[i, j] += 1
        n[j, i] += 1
        if v.outcome == "left":
            w[i, j] += 1
        elif v.outcome == "right":
            w[j, i] += 1
        else:
            w[i, j] += 0.5
            w[j, i] += 0.5
    return w, n


def _fit(w: np.ndarray, n: np.ndarray, prior_sd: float) -> tuple[np.ndarray, np.ndarray]:
    """Newton's method on the log posterior; returns theta and its covariance."""
    size = w.shape[0]
    theta = np.zeros(size)
    precision = 1.0 / prior_sd**2
    hessian = np.eye(size) * precision
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(theta[None, :] - theta[:, None]))  # p[i, j] = P(i beats j)
        gradient = (w - n * p).sum(axis=1) - precision * theta
        pq = n * p * p.T
        hessian = np.diag(pq.sum(axis=1)) - pq + np.eye(size) * precision
        step = np.linalg.solve(hessian, gradient)
        theta = theta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return theta, np.linalg.inv(hessian)


def rate(candidates: Sequence[str], votes: Iterable[Vote], *, prior_sd: float = PRIOR_SD) -> list[Rating]:
    """One rating per candidate, best first (ties in score keep the given order)."""
    names = list(dict.fromkeys(candidates))
    if not names:
        return []
    w, n = _tallies(names, votes)
    theta, cov = _fit(w, n, prior_sd)
    # Report strengths relative to their mean; the mean's own variance is removed with it.
    centre = np.full((len(names), len(names)), 1.0 / len(names))
    shifted = np.eye(len(names)) - centre
    cov = shifted @ cov @ shifted.T
    theta = theta - theta.mean()
    out = []
    for i, name in enumerate(names):
        sd = math.sqrt(max(cov[i, i], 0.0))
        out.append(
            Rating(
                candidate=name,
                score=1000 + ELO * theta[i],
                low=1000 + ELO * (theta[i] - Z95 * sd),
                high=1000 + ELO * (theta[i] + Z95 * sd),
                votes=int(n[i].sum()),
                wins=float(w[i].sum()),
                theta=float(theta[i]),
            )
        )
    return sorted(out, key=lambda r: -r.score)


def best_value(ratings: Sequence[Rating], price: Mapping[str, Decimal | None]) -> str | None:
    """The cheapest candidate whose interval reaches the best one's: not worse at the shown uncertainty."""
    if not ratings:
        return None
    best = ratings[0]
    contenders = [r for r in ratings if r.high >= best.low and price.get(r.candidate) is not None]
    if not contenders:
        return None
    return min(contenders, key=lambda r: (price[r.candidate] or Decimal(0), -r.score)).candidate

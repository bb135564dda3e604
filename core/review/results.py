"""What a review's stored votes say: per candidate a rating with its uncertainty, win rate, cost per win.

Always recomputed from the stored votes (``ReviewStore.votes``), so the same votes give the same
table. Cost per winning image is the candidate's price per image divided by its win rate
(ties count half a win), in exact Decimal; a candidate that never won has none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from core.review import rating
from core.review.store import Item, Review, StoredVote
from providers import registry

__all__ = ["CandidateResult", "Results", "candidate_words", "cost_per_win", "results"]


@dataclass(frozen=True)
class CandidateResult:
    candidate: str
    provider: str
    model: str
    quality: str
    score: float  # Elo scale
    low: float  # 95% interval
    high: float
    votes: int
    wins: float  # ties count half
    price: Decimal | None  # per image
    cost_per_win: Decimal | None
    best_value: bool

    @property
    def win_rate(self) -> float:
        return self.wins / self.votes if self.votes else 0.0


@dataclass(frozen=True)
class Results:
    candidates: tuple[CandidateResult, ...]  # best rating first
    votes: int
    voters: int
    comments: tuple[str, ...]


def cost_per_win(price: Decimal | None, wins: float, votes: int) -> Decimal | None:
    """price / (wins / votes), exact: wins are whole or half votes."""
    if price is None or votes == 0 or wins <= 0:
        return None
    return price * Decimal(votes) / Decimal(str(wins))


def _price(items: Sequence[Item]) -> Decimal | None:
    """A candidate's price per image: its items' mean (they normally agree), None if any is unknown."""
    prices = [i.price for i in items]
    if not prices or any(p is None for p in prices):
        return None
    return sum((p for p in prices if p is not None), Decimal(0)) / len(prices)


def results(review: Review, votes: Sequence[StoredVote]) -> Results:
    by_candidate: dict[str, list[Item]] = {}
    for item in review.items:
        by_candidate.setdefault(item.candidate, []).append(item)
    cand_of = {i.idx: i.candidate for i in review.items}
    model_votes = [
        rating.Vote(left=cand_of[v.left], right=cand_of[v.right], outcome=v.choice)
        for v in votes
        if v.left in cand_of and v.right in cand_of
    ]
    ratings = rating.rate(list(by_candidate), model_votes)
    prices = {c: _price(items) for c, items in by_candidate.items()}
    best = rating.best_value(ratings, prices) if model_votes else None
    out = []
    for r in ratings:
        first = by_candidate[r.candidate][0]
        out.append(CandidateResult(
            candidate=r.candidate, provider=first.provider, model=first.model, quality=first.quality,
            score=r.score, low=r.low, high=r.high, votes=r.votes, wins=r.wins, price=prices[r.candidate],
            cost_per_win=cost_per_win(prices[r.candidate], r.wins, r.votes), best_value=r.candidate == best,
        ))
    return Results(candidates=tuple(out), votes=len(model_votes), voters=len({v.voter for v in votes}),
                   comments=tuple(v.comment for v in votes if v.comment))


def candidate_words(c: CandidateResult | Item) -> str:
    """provider · model · quality, in the words people read (for results pages and reports only)."""
    return f"{registry.label(c.provider)} · {registry.model_label(c.model, c.provider)} · {c.quality}"

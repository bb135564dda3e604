"""Which pair a voter sees next: every pair about equally often, never one twice, sides at random.

A pair is two items of the same prompt from different candidates (two images of one candidate
say nothing about candidates). The next pair for a voter is, among the pairs this voter has not
voted on, one of those with the fewest votes from everyone; which one, and which image goes on
the left, comes from a random generator seeded by the review, the voter and how many votes
they have cast, so the choice is reproducible (tests) and a refresh shows the same pair.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from core.review.store import Item

__all__ = ["Shown", "all_pairs", "next_pair", "progress"]


@dataclass(frozen=True)
class Shown:
    """A pair as the voter sees it: item numbers on the left and the right."""

    left: int
    right: int

    @property
    def pair(self) -> tuple[int, int]:
        return (min(self.left, self.right), max(self.left, self.right))


def all_pairs(items: Sequence[Item]) -> list[tuple[int, int]]:
    """Every votable pair (lower item number first), in a stable order."""
    out = []
    for a, b in itertools.combinations(sorted(items, key=lambda i: i.idx), 2):
        if a.prompt == b.prompt and a.candidate != b.candidate:
            out.append((a.idx, b.idx))
    return out


def _rng(seed: int, voter: str, cast: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}|{voter}|{cast}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def next_pair(
    items: Sequence[Item],
    seen_by_all: Iterable[tuple[int, int]],
    seen_by_voter: Iterable[tuple[int, int]],
    *,
    seed: int,
    voter: str,
) -> Shown | None:
    """The pair to show next, or None when this voter has voted on every pair."""
    counts = Counter((min(a, b), max(a, b)) for a, b in seen_by_all)
    mine = {(min(a, b), max(a, b)) for a, b in seen_by_voter}
    open_pairs = [p for p in all_pairs(items) if p not in mine]
    if not open_pairs:
        return None
    fewest = min(counts[p] for p in open_pairs)
    least_seen = [p for p in open_pairs if counts[p] == fewest]
    rng = _rng(seed, voter, len(mine))
    a, b = rng.choice(least_seen)
    return Shown(a, b) if rng.random() < 0.5 else Shown(b, a)


def progress(items: Sequence[Item], seen_by_voter: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """(pairs this voter has voted on, pairs there are)."""
    pairs = set(all_pairs(items))
    mine = {(min(a, b), max(a, b)) for a, b in seen_by_voter} & pairs
    return len(mine), len(pairs)

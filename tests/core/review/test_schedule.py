"""The pair schedule: same prompt, different candidates, least seen first, never twice, sides at random."""

from __future__ import annotations

from collections import Counter

from core.review.schedule import Shown, all_pairs, next_pair, progress
from core.review.store import Item


def _items() -> list[Item]:
    out = []
    for p, prompt in enumerate(("fox", "lighthouse")):
        for c, quality in enumerate(("low", "medium", "high")):
            out.append(Item(idx=p * 3 + c, job_id=f"j{p}{c}", image_idx=0, sha256="0" * 64, prompt=prompt,
                            provider="openai", model="gpt-image-1", quality=quality, price=None))
    # A second image of one candidate on one prompt: never paired with its twin.
    out.append(Item(idx=6, job_id="j00b", image_idx=0, sha256="1" * 64, prompt="fox", provider="openai",
                    model="gpt-image-1", quality="low", price=None))
    return out


def test_pairs_are_of_one_prompt_and_two_candidates() -> None:
    pairs = all_pairs(_items())
    assert pairs == [(0, 1), (0, 2), (1, 2), (1, 6), (2, 6), (3, 4), (3, 5), (4, 5)]
    assert (0, 6) not in pairs and (0, 3) not in pairs


def test_a_voter_gets_every_pair_once_then_none() -> None:
    items = _items()
    mine: list[tuple[int, int]] = []
    for _ in range(len(all_pairs(items))):
        shown = next_pair(items, mine, mine, seed=7, voter="browser:a")
        assert shown is not None and shown.pair not in mine
        mine.append(shown.pair)
    assert next_pair(items, mine, mine, seed=7, voter="browser:a") is None
    assert sorted(mine) == all_pairs(items)
    assert progress(items, mine) == (8, 8)


def test_the_least_seen_pair_comes_first() -> None:
    items = _items()
    everyone = [p for p in all_pairs(items) if p != (4, 5)] * 3
    assert next_pair(items, everyone, [], seed=1, voter="browser:new").pair == (4, 5)


def test_the_same_state_gives_the_same_pair_and_sides_vary() -> None:
    items = _items()
    first = next_pair(items, [], [], seed=42, voter="user:x")
    assert next_pair(items, [], [], seed=42, voter="user:x") == first  # a refresh shows the same pair
    lefts = Counter()
    for s in range(400):
        shown = next_pair(items, [], [], seed=s, voter="user:x")
        assert isinstance(shown, Shown)
        lefts[shown.left == min(shown.pair)] += 1
    assert 140 < lefts[True] < 260  # about half the time the lower item is on the left


def test_votes_spread_evenly_over_many_voters() -> None:
    items = _items()
    everyone: list[tuple[int, int]] = []
    for v in range(6):
        mine: list[tuple[int, int]] = []
        for _ in range(3):  # each voter stops after three votes
            shown = next_pair(items, everyone, mine, seed=3, voter=f"browser:{v}")
            assert shown is not None
            mine.append(shown.pair)
            everyone.append(shown.pair)
    counts = Counter(everyone)
    assert max(counts.values()) - min(counts[p] for p in all_pairs(items)) <= 1

"""Planning a submission: how many provider calls a request makes, what each costs, how long it takes.

Pure pieces the runner's ``quote`` and ``submit`` are made of. ``n`` images
become ``ceil(n / max_images_per_call)`` jobs per prompt; each job is priced on
its own so a batch's estimate is the sum of what its calls will cost.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from core.history.store import Store
from core.history.views import Money, NewJob
from core.jobs.settlement import Pricing
from core.spend import budget
from providers import validation
from providers.errors import ProviderError
from providers.types import ImageRequest, ModelCaps

__all__ = [
    "Planned",
    "Quote",
    "Submitted",
    "estimate",
    "expected_seconds",
    "new_jobs",
    "plan",
    "total_usd",
    "validate",
]

log = logging.getLogger(__name__)

# (the request one call sends, the index of the prompt it was rendered from)
Planned = tuple[ImageRequest, int]


@dataclass(frozen=True)
class Submitted:
    run_id: str
    job_ids: tuple[str, ...]
    estimate_usd: Decimal | None  # all jobs together; None where some could not be priced in USD


@dataclass(frozen=True)
class Quote:
    """What a submission would cost and whether it fits, before the button is pressed."""

    jobs: int
    images: int
    estimates: tuple[Money, ...]
    total_usd: Decimal | None
    spend: budget.Spend

    @property
    def fits(self) -> bool:
        if self.total_usd is None:
            return self.spend.caps.daily is None and self.spend.caps.total is None and self.spend.member_left is None
        return all(
            left is None or self.total_usd <= left
            for left in (self.spend.left_today, self.spend.left_total, self.spend.member_left)
        )


def plan(request: ImageRequest, caps: ModelCaps, prompts: Sequence[str] | None) -> list[Planned]:
    """(request for one call, index of its prompt) for every job of a submission."""
    per_call = max(1, caps.max_images_per_call)
    out = []
    for index, prompt in enumerate(list(prompts) if prompts else [request.prompt]):
        left = request.n
        while left > 0:
            k = min(per_call, left)
            out.append((request.with_(prompt=prompt, n=k), index))
            left -= k
    return out


def validate(planned: Sequence[Planned], request: ImageRequest, caps: ModelCaps, *, can_upload: bool) -> None:
    """Raise ``InvalidRequest``/``ModelUnavailable`` for a request the model does not accept.

    Each distinct prompt is checked with the whole batch's ``n``: the batch as
    asked is what must fit the model.
    """
    for req in dict.fromkeys(r.with_(n=request.n) for r, _ in planned):
        validation.validate(req, caps, can_upload=can_upload)


def estimate(pricing: Pricing, provider: str, request: ImageRequest, caps: ModelCaps) -> Money:
    """One call's estimate; unpriced (``usd`` None) where the catalogue cannot price it."""
    try:
        total = pricing.estimate(provider, request, caps).total
    except (ProviderError, ValueError, KeyError) as err:
        log.warning("no estimate for %s %s: %s", provider, request.model, err)
        return Money(usd=None)
    return Money(usd=total.usd, amount=total.amount, unit=total.unit)


def total_usd(estimates: Iterable[Money | None]) -> Decimal | None:
    """The sum in USD, or None when any part has no USD price."""
    usd = [e.usd if e is not None else None for e in estimates]
    if any(u is None for u in usd):
        return None
    return sum((u for u in usd if u is not None), Decimal(0))


def expected_seconds(
    store: Store, provider: str, model: str, quality: str, endpoint: str, caps: ModelCaps | None
) -> float | None:
    """How long a job like this takes: the provider's recent median here, else the model's own figure."""
    learned = store.learned_seconds(provider, model, quality, endpoint)
    if learned is not None:
        return learned
    return caps.expected_seconds if caps is not None else None


def new_jobs(
    planned: Sequence[Planned],
    request: ImageRequest,
    estimates: Sequence[Money],
    *,
    variables: Sequence[Mapping[str, Any]] | None,
    expected: float | None,
) -> list[NewJob]:
    """The jobs to store, one per planned call."""
    return [
        NewJob(
            prompt=req.prompt,
            n=req.n,
            quality=request.quality,
            size=request.size,
            estimate=est,
            variables=None if variables is None else variables[index],
            expected_seconds=expected,
        )
        for (req, index), est in zip(planned, estimates, strict=True)
    ]

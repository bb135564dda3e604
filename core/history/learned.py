"""How much a provider's time varies, from the same recent jobs ``Store.learned_seconds`` takes its median of.

The polling schedule (``providers.polling``) opens a watchful window before the
expected end as wide as this spread (never narrower than its default 20 %), so a job
that ends early by the usual amount is still seen soon (issue 17: a 45-s job ending
at 36 s was seen 6.75 s late).
"""

from __future__ import annotations

import statistics

import sqlalchemy as sa

from core import db
from core.history.store import Store

__all__ = ["MIN_SAMPLES", "learned_spread"]

MIN_SAMPLES = 5  # fewer times than this say nothing about their spread


def learned_spread(store: Store, provider: str, model: str, quality: str, endpoint: str, *,
                   sample: int = 50) -> float | None:
    """Half the 10-90 % range of the recent provider times, as a share of their median; None when unknown.

    The same jobs and the same time as ``Store.learned_seconds`` (``provider_seconds`` where the polls
    bracketed it, else submit-to-finish): a spread of 0.2 means most jobs end within ±20 % of the median.
    """
    j = db.jobs.c
    query = (
        sa.select(j.submitted_at, j.finished_at, j.provider_seconds)
        .where(
            j.provider == provider, j.model == model, j.quality == quality, j.endpoint == endpoint,
            j.status == "succeeded", j.submitted_at.is_not(None), j.finished_at.is_not(None),
        )
        .order_by(j.finished_at.desc())
        .limit(sample)
    )
    with db.read(store.engine) as conn:
        times = [p if p is not None else (f - s).total_seconds() for s, f, p in conn.execute(query)]
    times = [t for t in times if t > 0]
    if len(times) < MIN_SAMPLES:
        return None
    deciles = statistics.quantiles(times, n=10, method="inclusive")
    median = statistics.median(times)
    return max(0.0, (deciles[-1] - deciles[0]) / 2 / median) if median > 0 else None

"""Finished jobs of several candidates on several prompts, for the review tests (both backends)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from store_helpers import new_run, put_image

from core.history.store import Store
from core.history.views import Billing
from core.jobs.claims import JobClaims

# (provider, model, quality, price per image)
CANDIDATES = (("openai", "gpt-image-1", "high", "0.167"), ("evolink", "gpt-image-1", "low", "0.011"),
              ("apiframe", "gpt-image-1", "medium", "0.042"))
PROMPTS = ("a red fox in snow", "a lighthouse at dawn")


def finished_jobs(store: Store, candidates: Sequence[tuple[str, str, str, str]] = CANDIDATES,
                  prompts: Sequence[str] = PROMPTS) -> list[str]:
    """One finished one-image job per candidate per prompt, billed at its price."""
    claims = JobClaims(store.engine)
    out = []
    for prompt in prompts:
        for provider, model, quality, usd in candidates:
            _, (job_id,) = new_run(store, provider=provider, model=model, quality=quality, prompt=prompt, usd=usd)
            claims.finish(job_id, None, status="succeeded", billing=Billing("estimated"),
                          images=[(put_image(store, f"{prompt}-{provider}-{quality}"), None)])
            out.append(job_id)
    return out


@pytest.fixture
def store(db_url: str, data_dir: Path) -> Store:
    return Store(db_url, data_dir)

"""Runs and images for the store and claims tests (both backends)."""

from __future__ import annotations

from decimal import Decimal

from core_fakes import png_bytes

from core.history.files import ImageInfo
from core.history.store import Store
from core.history.views import Money, NewJob
from providers.types import ImageRequest


def new_run(store: Store, *, provider: str = "fake", model: str = "m1", prompt: str = "a red fox", jobs: int = 1,
            usd: str | None = "0.07", endpoint: str = "live", quality: str = "low", request: ImageRequest | None = None,
            **kw) -> tuple[str, list[str]]:
    request = request or ImageRequest(prompt=prompt, model=model, quality=quality)
    new_jobs = [NewJob(prompt=request.prompt, n=1, quality=request.quality, size=request.size,
                       estimate=Money(None if usd is None else Decimal(usd), None if usd is None else Decimal(usd),
                                      "USD"))
                for _ in range(jobs)]
    return store.create_run(provider=provider, endpoint=endpoint, request=request, jobs=new_jobs, **kw)


def put_image(store: Store, seed: str) -> ImageInfo:
    return store.files.put(png_bytes(seed))

"""The one store and one job runner of this server process.

Both the server's start-up hook (``app.py``'s lifespan, which runs before any
browser connects, so unfinished jobs resume at once) and the pages use them.
``st.cache_resource`` cannot be the holder: the lifespan runs outside any script,
and Streamlit gives it a separate cache, which would make a second runner. A
module is imported once per process, so a plain guarded singleton is shared.
The services are keyed by the data directory and database URL: when those
change (tests give every case its own), the old runner is stopped and new ones
are made.
"""

from __future__ import annotations

import atexit
import threading
from dataclasses import dataclass
from typing import Any

from core import config
from core import settings as app_settings
from core.history.store import Store
from core.jobs.runner import JobRunner
from providers.catalogue import Catalogue, load_catalogue
from providers.types import ImageRequest, JobStatus, ModelCaps

__all__ = ["LivePricing", "pricing", "runner", "shutdown", "store"]


class LivePricing:
    """The catalogue with the credit values set in Settings, read at each use.

    The runner is long-lived; reading the (small) settings file on each estimate
    keeps a changed credit value effective without a restart.
    """

    def current(self) -> Catalogue:
        return load_catalogue().with_overrides(app_settings.load().credit_overrides())

    def estimate(self, provider: str, request: ImageRequest, caps: ModelCaps | None = None, **kw: Any):
        return self.current().estimate(provider, request, caps, **kw)

    def billed(self, provider: str, request: ImageRequest, status: JobStatus):
        return self.current().billed(provider, request, status)


@dataclass
class _Services:
    key: tuple[str, str]
    store: Store
    pricing: LivePricing
    runner: JobRunner | None = None


_lock = threading.RLock()
_current: _Services | None = None


def _key() -> tuple[str, str]:
    return str(config.data_dir()), config.database_url()


def _services() -> _Services:
    global _current
    key = _key()
    with _lock:
        if _current is not None and _current.key != key:
            _stop(_current)
            _current = None
        if _current is None:
            _current = _Services(key=key, store=Store(), pricing=LivePricing())
        return _current


def store() -> Store:
    return _services().store


def pricing() -> LivePricing:
    return _services().pricing


def runner() -> JobRunner:
    """The started runner (starting it resumes every unfinished job in the store)."""
    with _lock:
        services = _services()
        if services.runner is None or not services.runner.running:
            services.runner = JobRunner(services.store, pricing=services.pricing).start()
        return services.runner


def _stop(services: _Services) -> None:
    if services.runner is not None:
        services.runner.stop()
        services.runner = None


def shutdown() -> None:
    """Stop the runner (its jobs resume at the next start); used at exit and between tests."""
    global _current
    with _lock:
        if _current is not None:
            _stop(_current)
            _current = None


atexit.register(shutdown)

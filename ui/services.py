"""What the pages use: the process's store and runner, routes (live or emulator), spend.

The store and runner are the process-wide ones of ``core.services`` (also
started by the server's lifespan hook); per-user choices stay in
``st.session_state`` (ui.state). Keys are resolved by ``core.services.provider_key``,
the same function the runner's provider factory uses. Nothing here makes a
provider call on the page's thread: the runner works in the background.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from core import db
from core import services as app_services
from core.config import KeySource
from core.history.store import Store
from core.jobs.runner import JobRunner
from core.spend import budget
from providers.catalogue import Catalogue
from ui import state


@dataclass(frozen=True)
class Route:
    """Where a provider's requests go for this session, and why."""

    provider: str
    endpoint: str  # live / emulator
    key_source: KeySource

    @property
    def simulated(self) -> bool:
        return self.endpoint == "emulator"


def store() -> Store:
    return app_services.store()


def pricing() -> app_services.LivePricing:
    return app_services.pricing()


def runner() -> JobRunner:
    return app_services.runner()


def catalogue() -> Catalogue:
    return pricing().current()


def route(provider: str) -> Route:
    _, source = app_services.provider_key(provider, session=state.session_keys())
    return Route(provider=provider, endpoint="live" if source != "none" else "emulator", key_source=source)


def session_key(provider: str) -> str | None:
    """A key typed in Settings for this session (handed to the runner in memory only)."""
    value, source = app_services.provider_key(provider, session=state.session_keys())
    return value if source == "session" else None


@dataclass(frozen=True)
class SpendSummary:
    """Today's spend as the sidebar shows it (the Spend page and the budget check read ``Store.spend``)."""

    endpoint: str
    today_usd: Decimal
    daily_cap: Decimal | None
    daily_left: Decimal | None


def spend_today(endpoint: str | None = None) -> SpendSummary:
    if endpoint is None:
        endpoint = route(state.selection().provider).endpoint
    with db.read(store().engine) as conn:
        spent, caps, left = budget.spent_today(conn, endpoint)  # today's rows only: flat in the ledger's size
    return SpendSummary(endpoint=endpoint, today_usd=spent, daily_cap=caps.daily, daily_left=left)

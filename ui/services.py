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
from core.accounts import Identity
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
    key_source: str  # session / secrets / environment / none, or yours / team (a stored key)
    key_holder: str | None = None  # jobs.key_holder (core.services.KeyChoice)

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


def user() -> Identity:
    """Who this run acts for (``ui.auth.current_user``): every write a page makes passes it on."""
    from ui import auth

    return auth.current_user()


def route(provider: str, who: Identity | None = None) -> Route:
    choice = app_services.key_choice(who or user(), provider, state.session_keys())
    return Route(provider=provider, endpoint=choice.endpoint, key_source=choice.source, key_holder=choice.holder)


def session_key(provider: str, who: Identity | None = None) -> str | None:
    """A key typed in Settings for this session (the local operator's only; handed to the runner in memory)."""
    if not (who or user()).local:
        return None
    value, source = app_services.provider_key(provider, session=state.session_keys())
    return value if source == "session" else None


def member_id() -> str | None:
    """The signed-in member whose own cap applies (None: the local operator, who has only the team's)."""
    who = user()
    return None if who.local else who.user_id


def key_holder(provider: str) -> str | None:
    """Whose stored key this person's next job of ``provider`` uses (None: a session or configured key)."""
    found = route(provider)
    return found.key_holder if found.key_holder not in ("session", "config") else None


@dataclass(frozen=True)
class SpendSummary:
    """Today's spend as the sidebar shows it (the Spend page and the budget check read ``Store.spend``)."""

    endpoint: str
    today_usd: Decimal
    daily_cap: Decimal | None
    daily_left: Decimal | None
    member_cap: Decimal | None = None  # the signed-in member's own daily cap
    member_today: Decimal | None = None
    member_left: Decimal | None = None


def spend_today(endpoint: str | None = None) -> SpendSummary:
    who = user()
    if endpoint is None:
        endpoint = route(state.selection().provider, who).endpoint
    with db.read(store().engine) as conn:  # today's rows only: flat in the ledger's size (issue 17)
        spent, caps, left = budget.spent_today(conn, endpoint)
        member = (None, None) if who.local else budget.member_spent_today(conn, who.user_id, endpoint)
    return SpendSummary(endpoint=endpoint, today_usd=spent, daily_cap=caps.daily, daily_left=left,
                        member_cap=None if who.local else caps.member_daily,
                        member_today=member[0], member_left=member[1])

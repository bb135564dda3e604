"""Process-wide services for the pages: one store, one job runner, one emulator per server process.

Held with ``st.cache_resource`` so every session shares them; per-user choices
stay in ``st.session_state`` (ui.state). Nothing here makes a provider call on
the page's thread: the runner works in the background.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import streamlit as st

from providers.catalogue import Catalogue, load_catalogue
from providers.registry import PROVIDERS
from providers.types import ImageRequest, JobStatus, ModelCaps
from studio import settings as app_settings
from studio.config import KeySource, get_secret
from studio.runner import JobRunner
from studio.store import Store
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


class LivePricing:
    """The catalogue with the credit values set in Settings, read at each use.

    The runner is process-wide and long-lived; reading the settings file on each
    estimate keeps a changed credit value effective without a restart.
    """

    def current(self) -> Catalogue:
        return load_catalogue().with_overrides(app_settings.load().credit_overrides())

    def estimate(self, provider: str, request: ImageRequest, caps: ModelCaps | None = None, **kw: Any):
        return self.current().estimate(provider, request, caps, **kw)

    def billed(self, provider: str, request: ImageRequest, status: JobStatus):
        return self.current().billed(provider, request, status)


@st.cache_resource(show_spinner=False)
def store() -> Store:
    return Store()


@st.cache_resource(show_spinner=False)
def pricing() -> LivePricing:
    return LivePricing()


@st.cache_resource(show_spinner=False, on_release=lambda r: r.stop())
def runner() -> JobRunner:
    # Starting it also resumes any job a previous process left unfinished.
    return JobRunner(store(), pricing=pricing()).start()


def catalogue() -> Catalogue:
    return pricing().current()


def route(provider: str) -> Route:
    cls = PROVIDERS[provider]
    _, source = get_secret(cls.key_env, state.session_keys())
    return Route(provider=provider, endpoint="live" if source != "none" else "emulator", key_source=source)


def session_key(provider: str) -> str | None:
    """A key typed in Settings for this session (handed to the runner in memory only)."""
    cls = PROVIDERS[provider]
    value, source = get_secret(cls.key_env, state.session_keys())
    return value if source == "session" else None


@dataclass(frozen=True)
class SpendSummary:
    endpoint: str
    today_usd: Decimal
    total_usd: Decimal
    daily_cap: Decimal | None
    total_cap: Decimal | None
    daily_left: Decimal | None
    total_left: Decimal | None


def spend_today(endpoint: str | None = None) -> SpendSummary:
    if endpoint is None:
        endpoint = route(state.selection().provider).endpoint
    s = store().spend(endpoint)
    return SpendSummary(
        endpoint=endpoint,
        today_usd=s.today,
        total_usd=s.total,
        daily_cap=s.caps.daily,
        total_cap=s.caps.total,
        daily_left=s.left_today,
        total_left=s.left_total,
    )

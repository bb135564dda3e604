"""The sidebar every page shows: the emulator banner, key sources, spend."""

from __future__ import annotations

from decimal import Decimal

import streamlit as st

from core.config import get_secret
from core.spend.money import format_usd
from providers import registry
from providers.registry import PROVIDERS
from ui import refresh, services, state

_SOURCE_TEXT = {
    "session": "key typed in Settings (this session only)",
    "secrets": "key from .streamlit/secrets.toml",
    "environment": "key from the environment",
    "none": "no key: built-in emulator",
    "yours": "your own stored key",
    "team": "the team's stored key",
}

_RENDERED = "_sidebar_rendered_by_app"


def mark_app_run() -> None:
    """app.py draws the sidebar for every page; a page run on its own draws it itself."""
    st.session_state[_RENDERED] = True


def ensure() -> None:
    if not st.session_state.get(_RENDERED):
        render()


def render() -> None:
    state.init()
    with st.sidebar:
        # Provider and model are chosen in the Studio's settings card (and Compare's builder), not here.
        provider = state.selection().provider
        route = services.route(provider)
        if route.endpoint == "emulator":
            st.warning(
                f"**Simulated results.** {registry.label(provider)} has no API key, so requests go to "
                "the built-in emulator: images are made locally and nothing is billed. "
                "Add a key in Settings to use the real service.",
                icon=":material/science:",
            )

        with st.expander("API keys", expanded=False):
            who = services.user()
            for name, cls in PROVIDERS.items():
                # Signed in: only a stored key of theirs or the team's, never the operator's configured one.
                source = get_secret(cls.key_env, state.session_keys())[1] if who.local else \
                    services.route(name, who).key_source
                st.markdown(f"**{registry.label(name)}**: {_SOURCE_TEXT[source]}")

        if services.user().can("generate"):  # a viewer never spends: the team's money is not theirs to watch
            _spend()


@st.fragment
def _spend() -> None:
    """Today's spend: its own fragment, which a live panel wakes when a job finishes (no full rerun)."""
    refresh.follow("spend")
    # Woken once by a live panel (ui.jobs): the wake's short timer is stopped first thing, so it does not
    # fire again while this runs; it looks again only when woken again.
    refresh.stop()
    spend = services.spend_today()
    # The emulator has its own meter: never let simulated money read as real spend.
    spent_label = "Simulated spend today" if spend.endpoint == "emulator" else "Spent today"
    if spend.daily_cap is not None:
        used = spend.today_usd
        st.metric(
            spent_label,
            format_usd(used),
            help=f"Of a daily budget of {format_usd(spend.daily_cap)} (set in Settings).",
        )
        ratio = float(min(used / spend.daily_cap, Decimal(1))) if spend.daily_cap > 0 else 1.0
        st.progress(ratio, text=f"{format_usd(spend.daily_left)} left today")
    else:
        st.metric(spent_label, format_usd(spend.today_usd), help="No daily budget set (Settings).")


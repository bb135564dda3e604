"""The sidebar every page shows: provider and model, key sources, spend, emulator banner."""

from __future__ import annotations

from collections.abc import Callable
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


def _model_label(provider: str) -> Callable[[str], str]:
    models = PROVIDERS[provider].MODELS

    def label(model: str) -> str:
        caps = models[model]
        if caps.shutdown:
            return f"{caps.label} (shuts down {caps.shutdown.isoformat()})"
        return caps.label

    return label


def render() -> None:
    state.init()
    with st.sidebar:
        st.selectbox(
            "Provider",
            list(PROVIDERS),
            key="provider",
            format_func=registry.label,
            on_change=_provider_changed,
            help="Where requests go. Each provider has its own prices and limits.",
        )
        provider = st.session_state["provider"]
        st.selectbox(
            "Model",
            state.offered_models(provider),
            key="model",
            format_func=_model_label(provider),
            help="Models past their shutdown date are not offered.",
        )
        caution = PROVIDERS[provider].MODELS[st.session_state["model"]].caution
        if caution:
            st.warning(caution, icon=":material/help:")
        retired = [c for c in PROVIDERS[provider].MODELS.values() if c.retired()]
        if retired:
            st.caption("Retired: " + " ".join(c.retirement_text() for c in retired))

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

        _spend()


@st.fragment
def _spend() -> None:
    """Today's spend: its own fragment, which a live panel wakes when a job finishes (no full rerun)."""
    if not services.user().can("generate"):
        return  # a viewer never spends: the team's money is not theirs to watch
    refresh.follow("spend")
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
    refresh.stop()  # woken once by a live panel (ui.jobs): look again only when woken again


def _provider_changed() -> None:
    provider = st.session_state["provider"]
    st.session_state["model"] = PROVIDERS[provider].default_model

"""Per-user UI state: what this browser session chose. Process-wide services live in ui.services."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import streamlit as st

from core import settings as app_settings
from providers.registry import PROVIDERS

# Keys typed in Settings live here only (never in the store, logs or page).
SESSION_KEYS = "session_api_keys"

DEFAULT_PROVIDER = "openai"


@dataclass(frozen=True)
class Selection:
    provider: str
    model: str


def init() -> None:
    """Set defaults once per session; safe to call from every page (pages also run alone)."""
    ss = st.session_state
    ss.setdefault(SESSION_KEYS, {})
    if "default_provider" not in ss:
        saved = app_settings.load()
        ss["default_provider"] = saved.default_provider if saved.default_provider in PROVIDERS else DEFAULT_PROVIDER
        ss["default_quality"] = saved.default_quality
        ss["default_size"] = saved.default_size
    if ss.get("provider") not in PROVIDERS:
        # A reload keeps the Studio's provider and model: they ride in the address bar (checked here).
        url = st.query_params.get("provider")
        ss["provider"] = url if url in PROVIDERS else ss["default_provider"]
        url_model = st.query_params.get("model")
        if url_model in offered_models(ss["provider"]):
            ss["model"] = url_model
    cls = PROVIDERS[ss["provider"]]
    if ss.get("model") not in offered_models(ss["provider"]):
        ss["model"] = cls.default_model


def offered_models(provider: str) -> list[str]:
    """Models a person may pick: the provider's models that are not shut down."""
    cls = PROVIDERS[provider]
    return [m for m, caps in cls.MODELS.items() if not caps.retired()]


def selection() -> Selection:
    init()
    return Selection(st.session_state["provider"], st.session_state["model"])


def session_keys() -> Mapping[str, str]:
    init()
    return cast(Mapping[str, str], st.session_state[SESSION_KEYS])


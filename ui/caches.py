"""Query results the pages reread on every run, kept for a while (issue 17: rerun time flat in history size).

``facets``: the distinct providers and models in history, which History's filters
offer. A ``SELECT DISTINCT`` over every job on each rerun grew with the history;
what it returns changes only when a provider or model is used for the first time,
and a filter offering that one up to ``FACETS_SECONDS`` later costs nobody anything.
Keyed by the database URL, so each store (each test) has its own.
"""

from __future__ import annotations

import streamlit as st

from core.history import ops as history_ops
from ui import services

__all__ = ["FACETS_SECONDS", "facets"]

FACETS_SECONDS = 30


@st.cache_data(ttl=FACETS_SECONDS, max_entries=8, show_spinner=False)
def _facets(url: str) -> dict[str, list[str]]:
    return history_ops.facets(services.store())  # url: only the cache key


def facets() -> dict[str, list[str]]:
    """``core.history.ops.facets`` of the process's store, at most ``FACETS_SECONDS`` old."""
    return _facets(services.store().url)

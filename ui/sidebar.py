"""The sidebar every page shows: provider and model, key sources, spend, emulator banner."""

from __future__ import annotations

import streamlit as st


def render() -> None:
    with st.sidebar:
        st.caption("Image Studio")

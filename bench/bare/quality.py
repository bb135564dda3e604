"""Baseline of "a quality change -> cost on screen": a bare segmented control and one metric."""

import streamlit as st

PRICES = {"low": "$0.011", "medium": "$0.042", "high": "$0.167"}

quality = st.segmented_control("Quality", ["low", "medium", "high"], key="quality", default="medium",
                               required=True, format_func=str.capitalize)
st.metric("Estimated total", PRICES[quality or "medium"])

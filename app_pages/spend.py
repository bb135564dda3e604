"""Spend: what images cost, per day, provider and quality; estimates against bills; speed; failures; the budget."""

import streamlit as st

from ui import sidebar, spend_view

# Additive to app.py's call: a page opened on its own (a link before app.py ran) still gets
# the wide layout its grids need.
st.set_page_config(layout="wide")
sidebar.ensure()

st.title("Spend")
st.caption("Real spend and simulated (emulator) spend are kept apart. Costs are billed where the provider "
           "reported them, else the estimate made before the run.")
st.segmented_control("Period", list(spend_view.PERIODS), key=spend_view.PERIOD, default="30 days", required=True,
                     persist_state="session")
real, simulated = st.tabs([":material/payments: Real spend", ":material/science: Simulated (emulator)"])
with real:
    spend_view.render("live")
with simulated:
    spend_view.render("emulator")

"""Spend: what images cost, per day, provider and quality; estimates against bills; speed; failures; the budget."""

import streamlit as st

from core.history import analytics
from ui import services, sidebar, spend_view

# Additive to app.py's call: a page opened on its own (a link before app.py ran) still gets
# the wide layout its grids need.
st.set_page_config(layout="wide")
sidebar.ensure()

st.title("Spend")
st.caption("Real spend and simulated (emulator) spend are kept apart. Costs are billed where the provider "
           "reported them, else the estimate made before the run.")
st.segmented_control("Period", list(spend_view.PERIODS), key=spend_view.PERIOD, default="30 days", required=True,
                     persist_state="session")
REAL, SIMULATED = ":material/payments: Real spend", ":material/science: Simulated (emulator)"
# Open on the tab that has data: a no-key demo has only simulated spend, and an empty "Real spend: $0.00" first
# reads as "nothing happened".
start = spend_view.since()
has_real = not analytics.ledger_frame(services.store(), "live", start).empty
has_simulated = not analytics.ledger_frame(services.store(), "emulator", start).empty
real, simulated = st.tabs([REAL, SIMULATED], default=SIMULATED if has_simulated and not has_real else REAL)
with real:
    spend_view.render("live")
with simulated:
    spend_view.render("emulator")

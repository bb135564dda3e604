"""One endpoint's spend (real or simulated): budget left, charts, and the ledger as CSV."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pandas as pd
import streamlit as st

import clock
from core.accounts import service as accounts_service
from core.exports import downloads as exporting
from core.history import analytics
from core.spend.money import format_usd
from ui import services, spend_charts

PERIOD = "spend_period"
PERIODS = {"7 days": 7, "30 days": 30, "90 days": 90, "All time": None}


def since() -> datetime | None:
    days = PERIODS.get(st.session_state.get(PERIOD) or "30 days")
    if days is None:
        return None
    local_midnight = clock.local_now().replace(hour=0, minute=0, second=0, microsecond=0)
    return local_midnight - timedelta(days=days - 1)


def _budget(endpoint: str) -> None:
    spend = services.store().spend(endpoint)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Spent today", format_usd(spend.today), help="Since local midnight, including jobs still running.")
    if spend.left_today is not None:
        c2.metric("Left today", format_usd(spend.left_today), help=f"Daily budget {format_usd(spend.caps.daily)}.")
    else:
        c2.metric("Left today", "no cap", help="No daily budget is set (Settings).")
    c3.metric("Spent in total", format_usd(spend.total))
    if spend.left_total is not None:
        c4.metric("Left in total", format_usd(spend.left_total), help=f"Total budget {format_usd(spend.caps.total)}.")
    else:
        c4.metric("Left in total", "no cap", help="No total budget is set (Settings).")
    bars = []
    if spend.caps.daily:
        bars.append((float(min(spend.today / spend.caps.daily, Decimal(1))), f"{format_usd(spend.today)} of "
                     f"{format_usd(spend.caps.daily)} today"))
    if spend.caps.total:
        bars.append((float(min(spend.total / spend.caps.total, Decimal(1))), f"{format_usd(spend.total)} of "
                     f"{format_usd(spend.caps.total)} in total"))
    for ratio, text in bars:
        st.progress(ratio, text=text)
    if spend.pending:
        st.caption(f"{format_usd(spend.pending)} of it is reserved for jobs still running: "
                   "it settles when they finish.")


def _members(endpoint: str) -> None:
    """Who spent what: every member for owners (``see_all_spend``), a maker's own for a maker."""
    who = services.user()
    if who.local:
        return
    store = services.store()
    caps = store.get_caps()
    if who.can("see_all_spend"):
        emails = {m.user_id: m.email for m in accounts_service.accounts().members()}
        rows = store.member_spend(endpoint)
        st.markdown("**Spend per member**")
        if not rows:
            st.caption("Nobody has spent anything yet.")
            return
        st.table(pd.DataFrame(  # a few rows: a plain table, readable and copyable
            [{"Member": emails.get(r.user_id or "", "before sign-in (the operator)"),
              "Today": format_usd(r.today), "In total": format_usd(r.total),
              "Own daily cap": format_usd(caps.member_daily) if caps.member_daily is not None else "none"}
             for r in rows]).set_index("Member"))
        return
    mine = store.spend(endpoint, member=who.user_id)
    found = store.member_spend(endpoint, user_id=who.user_id)
    own = found[0] if found else None
    left = (f"; {format_usd(mine.member_left)} left of your own {format_usd(caps.member_daily)} a day"
            if mine.member_left is not None else "")
    st.markdown(f"**Your spend**: {format_usd(mine.member_today)} today, "
                f"{format_usd(own.total if own else Decimal(0))} in total{left}.")


def render(endpoint: str) -> None:
    store = services.store()
    start = since()
    if endpoint == "emulator":
        st.info(
            "**Simulated spend.** What the built-in emulator would have cost at each provider's prices. Nothing "
            "was billed; it is metered apart from real spend (against the same caps, so a demo cannot run away).",
            icon=":material/science:",
        )
    _budget(endpoint)
    _members(endpoint)
    who = services.user()
    mine = None if who.local or who.can("see_all_spend") else who.user_id  # a maker's charts: their own
    ledger = analytics.ledger_frame(store, endpoint, start, user_id=mine)
    if ledger.empty:
        what = "simulated" if endpoint == "emulator" else "real"
        st.info(f"No {what} spend in this period. Images made in Studio or Compare show up here with their cost.",
                icon=":material/bar_chart:")
        return
    counting = ledger[ledger["state"] != "released"]
    st.caption(
        f"{len(ledger):,} job{'s' if len(ledger) != 1 else ''} in this period · "
        f"{format_usd(float(counting['usd'].sum()))} counted · "
        f"{int((ledger['state'] == 'released').sum()):,} not charged"
    )
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("**Spend per day, by provider**")
        per_day = analytics.spend_per_day(ledger)
        if per_day.empty:
            st.caption("Nothing was charged in this period.")
        else:
            st.altair_chart(spend_charts.spend_per_day(per_day), width="stretch")
    with right:
        st.markdown("**Average cost per image, by quality**")
        by_quality = analytics.cost_by_quality(ledger)
        if by_quality.empty:
            st.caption("Nothing was charged in this period.")
        else:
            st.altair_chart(spend_charts.cost_by_quality(by_quality), width="stretch")
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("**Estimated against billed**")
        evb = analytics.estimate_vs_billed(store, endpoint, start, user_id=mine)
        if evb.empty:
            st.caption("No provider reported a bill in this period, so the estimates stand as the cost.")
        else:
            st.altair_chart(spend_charts.estimate_vs_billed(evb), width="stretch")
            notes = [
                f"{row.provider}: billed {row.difference_pct:+.1f}% vs estimate over {row.jobs} jobs"
                for row in evb.itertuples()
                if row.difference_pct is not None
            ]
            if notes:
                st.caption(" · ".join(notes))
    with right:
        st.markdown("**Time to image, by provider** (median and p95)")
        lat = analytics.latency_by_provider(store, endpoint, start, user_id=mine)
        if lat.empty:
            st.caption("No finished jobs in this period.")
        else:
            st.altair_chart(spend_charts.latency(lat), width="stretch")
    st.markdown("**What went wrong**")
    fails = analytics.failures_by_kind(store, endpoint, start, user_id=mine)
    if fails.empty:
        st.caption("No failed, canceled or unknown jobs in this period.")
    else:
        kinds = fails["kind"].nunique()
        # Given to Streamlit as well: a horizontal bar chart's own height is not always honoured.
        st.altair_chart(spend_charts.failures(fails), width="stretch", height=70 + 40 * kinds)
    records = analytics.ledger_records(store, endpoint, start, user_id=mine)
    stamp = clock.local_now().strftime("%Y%m%d")
    st.download_button(
        f"Download the ledger (CSV, {len(records):,} rows)",
        data=exporting.ledger_csv(records),
        file_name=f"image-studio-{'simulated' if endpoint == 'emulator' else 'real'}-ledger-{stamp}.csv",
        mime="text/csv",
        key=f"spend_csv_{endpoint}",
        icon=":material/download:",
        on_click="ignore",
        help="One row per job: provider, state, reserved and counted USD (exact), model, quality, status.",
    )

"""Before running a comparison: every cell's cost and route, the total against the budget, the Run button."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import streamlit as st

from core.compare import experiments as ex
from core.spend.money import format_usd
from providers import registry
from ui import history_common as hc
from ui import services, text

RUN = "compare_run"


def quote(plan: ex.Plan) -> ex.PlanQuote:
    store = services.store()
    return ex.quote_plan(
        plan,
        catalogue=services.catalogue(),
        endpoint_for=lambda p: services.route(p).endpoint,
        spend_for=store.spend,
    )


def _cell_text(q: ex.CellQuote) -> str:
    if q.problem:
        return "can't run"
    cost = format_usd(q.usd) if q.usd is not None else "price unknown"
    return f"{cost} · simulated" if q.endpoint == "emulator" else cost


def preview(plan: ex.Plan, pq: ex.PlanQuote) -> None:
    """The grid of estimates, routes, problems and the totals."""
    rows, cols = plan.rows, plan.cols
    table = {
        cols.label(c): [
            next((_cell_text(q) for q in pq.cells if q.cell.row == r and q.cell.col == c), "")
            for r in range(len(rows))
        ]
        for c in range(len(cols))
    }
    index = [rows.label(r) if rows.kind != "none" else "Estimated cost" for r in range(len(rows))]
    frame = pd.DataFrame(table, index=[hc.short(i, 60) for i in index])
    frame.index.name = rows.title if rows.kind != "none" else ""
    st.dataframe(frame, width="stretch")

    wanted = plan.cells[0].request.model if plan.cells else ""
    swapped = sorted({(q.cell.provider, q.cell.model) for q in pq.cells if q.cell.model != wanted})
    if swapped:
        st.caption(" ".join(
            f"{registry.label(p)} does not offer {registry.model_label(wanted)}, so it uses "
            f"{registry.model_label(m, p)}." for p, m in swapped
        ))
    simulated = sorted({q.cell.provider for q in pq.cells if q.endpoint == "emulator"})
    if simulated:
        names = ", ".join(registry.label(p) for p in simulated)
        st.info(
            f"**Simulated:** {names} {'has' if len(simulated) == 1 else 'have'} no API key, so "
            f"{'its' if len(simulated) == 1 else 'their'} cells run on the built-in emulator: stand-in pictures, "
            "nothing billed. Add a key in Settings for the real service.",
            icon=":material/science:",
        )
    for q in pq.cells:
        if q.problem:
            who = q.cell.label(rows, cols) or registry.label(q.cell.provider)
            st.warning(f"**{text.md(who)}** can't run: {text.said(q.problem)}", icon=":material/block:")


def _budget_line(pq: ex.PlanQuote) -> str:
    parts = []
    for endpoint in ("live", "emulator"):
        spend = pq.spends.get(endpoint)
        if spend is None or (spend.left_today is None and spend.left_total is None):
            continue
        left = [x for x in (spend.left_today, spend.left_total) if x is not None]
        lowest = min(left)
        what = "simulated budget" if endpoint == "emulator" else "budget"
        parts.append(f"{format_usd(lowest)} of the {what} left" + (" today" if spend.left_today == lowest
                                                                 else " in total"))
    return " · ".join(parts) if parts else "No budget cap set (Settings)."


def run_bar(plan: ex.Plan, pq: ex.PlanQuote) -> ex.RunOutcome | None:
    """Totals, the budget, and the Run button; submits when pressed and it fits."""
    if pq.refusal:
        st.error(text.md(pq.refusal + " Remove some cells or raise the budget in Settings."), icon=":material/savings:")
    live, sim = pq.totals.get("live"), pq.totals.get("emulator")
    n = len(pq.runnable)
    c1, c2, c3, c4 = st.columns([1, 1.2, 1.2, 2.2], vertical_alignment="bottom")
    c1.metric("Images", n, help="One job per cell.")
    shown = []
    if "live" in pq.totals or "emulator" not in pq.totals:
        shown.append(("Estimated cost", format_usd(live) if "live" in pq.totals and live is not None
                      else "unknown" if "live" in pq.totals else "$0.00",
                      "What the live providers are expected to charge, before it runs."))
    if "emulator" in pq.totals:
        shown.append(("Simulated", format_usd(sim) if sim is not None else "unknown",
                      "Play money on the emulator, metered apart from real spend."))
    for col, (label, value, help_text) in zip((c2, c3), shown, strict=False):
        col.metric(label, value, help=help_text)
    total = sum((v for v in pq.totals.values() if v is not None), Decimal(0))
    label = f"Run {n} image{'s' if n != 1 else ''} · {format_usd(total)}" if n else "Nothing to run"
    with c4:
        st.caption(_budget_line(pq))
        pressed = st.button(label, key=RUN, type="primary", disabled=not pq.fits, icon=":material/play_arrow:",
                            width="stretch")
    if not pressed:
        return None
    from ui.compare_builder import NAME

    name = (st.session_state.get(NAME) or "").strip() or None
    return ex.run_plan(plan, pq, runner=services.runner(), store=services.store(), name=name,
                       key_for=services.session_key, by=services.user(), holder_for=services.key_holder)

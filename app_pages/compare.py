"""Compare: one idea on several providers, tiers or prompt variants, side by side, with cost and time under each."""

import streamlit as st

from core.history import ops as history_ops
from ui import compare_builder, compare_past, compare_quote, compare_results, services, sidebar, text

# Additive to app.py's call: a page opened on its own (a link before app.py ran) still gets
# the wide layout its grids need.
st.set_page_config(layout="wide")
sidebar.ensure()


def open_experiment(experiment_id: str) -> None:
    st.session_state[compare_results.OPEN] = experiment_id
    st.query_params["experiment"] = experiment_id  # the address bar becomes a link to these results


linked = st.query_params.get("experiment")
if linked and st.session_state.get(compare_results.OPEN) != linked:
    st.session_state[compare_results.OPEN] = linked
_who, _open = services.user(), st.session_state.get(compare_results.OPEN)
if _open and not _who.can("view_all"):  # someone else's private experiment opens for nobody else
    _exp = history_ops.get_experiment(services.store(), _open)
    if _exp is None or not _who.sees(_exp.user_id, _exp.shared):
        st.session_state.pop(compare_results.OPEN, None)
        st.query_params.pop("experiment", None)

st.title("Compare")
st.caption("The same idea on several providers, quality tiers or prompt variants, next to each other, "
           "with cost and time under each. Every comparison is kept under Past experiments.")

# Seeded through session state, not default=: "Set up again" switches the mode from a callback.
st.session_state.setdefault(compare_builder.MODE, compare_builder.SIDE)
mode = st.segmented_control(
    "What to compare",
    [compare_builder.SIDE, compare_builder.GRID, compare_builder.PAST],
    key=compare_builder.MODE,
    required=True,
    label_visibility="collapsed",
    persist_state="session",
)

opened = st.session_state.get(compare_results.OPEN)
if mode == compare_builder.PAST:
    if opened:
        compare_results.render(opened)
        st.divider()
    compare_past.render(open_experiment)
else:
    with st.container(border=True):
        built = compare_builder.side_by_side() if mode == compare_builder.SIDE else compare_builder.grid()
    if built.plan is None:
        if built.refused:
            st.error(text.md(built.problem), icon=":material/block:")
        else:
            st.info(text.md(built.problem), icon=":material/lightbulb:")
    else:
        quote = compare_quote.quote(built.plan)
        compare_quote.preview(built.plan, quote)
        outcome = compare_quote.run_bar(built.plan, quote)
        if outcome is not None:
            open_experiment(outcome.experiment_id)
            opened = outcome.experiment_id
            for error in outcome.errors:
                st.toast(text.md(error), icon=":material/block:")
    if opened:
        st.divider()
        compare_results.render(opened)

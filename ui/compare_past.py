"""Past experiments: every comparison kept in history, newest first, to open again."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import streamlit as st

from core.compare import experiments
from core.history import ops as history_ops
from core.spend.money import format_usd
from ui import history_common as hc
from ui import services, text

PAGE = "compare_past_page"
PER_PAGE = 9


def _shape(notes: str) -> str:
    layout = experiments.parse_layout(notes)
    if layout is None:
        return ""
    rows, cols = len(layout["rows"]["values"]), len(layout["cols"]["values"])
    if layout["kind"] != "grid":
        return f"{cols} side by side"
    names = experiments.AXIS_KINDS
    return f"{rows}×{cols} {names.get(layout['rows']['kind'], '')} × {names.get(layout['cols']['kind'], '')}"


def _pictures(exp: history_ops.ExperimentSummary, data_dir: Path) -> None:
    """Up to four thumbnails, the winner's first."""
    pics = ([exp.winner_thumb] if exp.winner_thumb else []) + [t for t in exp.thumbs if t != exp.winner_thumb]
    if not pics:
        st.caption("No images yet.")
        return
    cols = st.columns(4, gap="xxsmall")
    for col, rel in zip(cols, pics[:4], strict=False):
        path = data_dir / rel
        if path.exists():
            col.image(str(path), width="stretch")


def _facts(exp: history_ops.ExperimentSummary) -> str:
    bits = [_shape(exp.notes), f"{exp.jobs} image{'s' if exp.jobs != 1 else ''}", format_usd(exp.cost_usd),
            hc.when(exp.created_at)]
    bits = [b for b in bits if b]
    if exp.simulated:
        bits.append(":material/science: simulated")
    return " · ".join(bits)


def _status(exp: history_ops.ExperimentSummary) -> str:
    status = []
    if exp.active:
        status.append(f":blue[{exp.active} running]")
    if exp.failed:
        status.append(f":red[{exp.failed} failed]")
    if exp.winner_thumb:
        status.append(":orange[:material/emoji_events: winner picked]")
    return " · ".join(status)


def _card(exp: history_ops.ExperimentSummary, data_dir: Path, on_open: Callable[[str], None]) -> None:
    _pictures(exp, data_dir)
    st.markdown(f"**{text.short_md(exp.name, 80)}**")  # a visitor's name (often the prompt): text only
    st.caption(_facts(exp))
    status = _status(exp)
    if status:
        st.markdown(status)
    st.button("Open", key=f"compare_past_open_{exp.id}", on_click=on_open, args=(exp.id,),
              icon=":material/open_in_full:")


def render(on_open: Callable[[str], None]) -> None:
    store = services.store()
    scope = services.user().history_scope  # their own and the team's; owners see all
    total = history_ops.count_experiments(store, visible_to=scope)
    if not total:
        st.info(
            "**No experiments yet.** Every comparison you run (side by side or a grid) is kept here with its "
            "images, costs, ratings and winner, to open again or share.",
            icon=":material/compare:",
        )
        return
    pages = max(1, math.ceil(total / PER_PAGE))
    stored = st.session_state.get(PAGE, 1)
    page = stored if isinstance(stored, int) and 1 <= stored <= pages else 1
    items = history_ops.list_experiments(store, limit=PER_PAGE, offset=(page - 1) * PER_PAGE, visible_to=scope)
    grid = st.grid(3, min_column_width=260, border=True)
    for exp in items:
        with grid.cell():
            _card(exp, store.data_dir, on_open)
    if pages > 1:
        st.pagination(pages, key=PAGE, default=page)

"""A comparison's results: the grid of images with cost, time and status under each, ratings and the winner.

While any cell is still running the grid is a fragment that redraws itself
every second (reading the store, never the provider); once all are done it
reruns the page once so the sidebar's spend catches up.
"""

from __future__ import annotations

import re
from decimal import Decimal

import streamlit as st
from streamlit.errors import StreamlitAPIException

from core.compare import experiments
from core.compare.experiments import Grid, GridCell
from core.exports import contact_sheet
from core.history import ops as history_ops
from core.history.store import Store
from core.history.views import JobView
from core.spend.money import format_usd
from providers import registry
from ui import format as fmt
from ui import history_common as hc
from ui import pages, review_locality, review_make, services, text

OPEN = "compare_open"  # the experiment shown under the builder
REFRESH_SECONDS = 1.0


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:50] or "experiment"


def render(experiment_id: str) -> None:
    grid = experiments.load_grid(services.store(), experiment_id)
    if grid is None:
        st.warning("This experiment is not in the history any more.", icon=":material/search_off:")
        return
    if grid.active:
        _live(experiment_id)
    else:
        _draw(grid)


@st.fragment(run_every=REFRESH_SECONDS)
def _live(experiment_id: str) -> None:
    grid = experiments.load_grid(services.store(), experiment_id)
    if grid is None:
        return
    _draw(grid)
    if not grid.active:
        st.rerun()


def _totals(grid: Grid) -> tuple[Decimal, Decimal, bool]:
    """(live USD, simulated USD, every live cost reported by the provider)."""
    live = sim = Decimal(0)
    reported = True
    for cell in grid.cells.values():
        for job in cell.jobs:
            value = hc.cost_value(job) or Decimal(0)
            if job.endpoint == "emulator":
                sim += value
            else:
                live += value
                reported = reported and bool(job.billed and not job.billed.estimated)
    return live, sim, reported


def _draw(grid: Grid) -> None:
    jobs = grid.jobs
    done = sum(j.status == "succeeded" for j in jobs)
    running = sum(j.active for j in jobs)
    failed = len(jobs) - done - running + sum(1 for c in grid.cells.values() if c.error)
    r, c = len(grid.rows), len(grid.cols)
    shape = f"{c} side by side" if grid.kind != "grid" else f"{r}×{c} grid · {grid.rows.title} × {grid.cols.title}"
    st.subheader(text.md(grid.name), anchor=False)
    status = [f"{done} done"] + ([f"{running} running"] if running else []) + ([f"{failed} failed"] if failed else [])
    st.caption(f"{shape} · made {hc.when(grid.created_at)} · " + ", ".join(status))
    live, sim, reported = _totals(grid)
    has_live = any(c.endpoint != "emulator" for c in grid.cells.values())
    has_sim = any(c.endpoint == "emulator" for c in grid.cells.values())
    times = [t for t in (hc.took(j) for j in jobs if j.status == "succeeded") if t is not None]
    metrics = []
    if has_live or not has_sim:
        metrics.append(("Cost", format_usd(live), "Billed where the provider reported it, else the estimate."
                        + ("" if reported else " Some of it is still an estimate.")))
    if has_sim:
        metrics.append(("Simulated cost", format_usd(sim), "Emulator cells: what it would cost; nothing billed."))
    metrics.append(("Fastest", fmt.seconds(min(times)) if times else "—", "From sending to the finished image."))
    metrics.append(("Slowest", fmt.seconds(max(times)) if times else "—", "From sending to the finished image."))
    for col, (label, value, help_text) in zip(st.columns(4), metrics, strict=False):
        col.metric(label, value, help=help_text)
    _toolbar(grid)
    _grid(grid)


def _fresh(store: Store, grid: Grid) -> Grid:
    """The grid as stored now (ratings and winners change after it was drawn); as drawn if it is gone."""
    return experiments.load_grid(store, grid.experiment_id) or grid


def _toolbar(grid: Grid) -> None:
    store = services.store()
    exp_id = grid.experiment_id
    slug = _slug(grid.name)
    row = st.container(horizontal=True, gap="small")
    with row:
        st.download_button(
            "Contact sheet (PNG)",
            data=lambda: contact_sheet.render(experiments.grid_sheet(_fresh(store, grid))),
            file_name=f"{slug}-contact-sheet.png",
            mime="image/png",
            key=f"compare_sheet_{exp_id}",
            icon=":material/grid_view:",
            on_click="ignore",
            help="Every image in one picture, with the row and column labels, cost and time.",
        )
        st.download_button(
            "Results (CSV)",
            data=lambda: experiments.grid_csv(_fresh(store, grid)),
            file_name=f"{slug}.csv",
            mime="text/csv",
            key=f"compare_csv_{exp_id}",
            icon=":material/table:",
            on_click="ignore",
        )
        st.download_button(
            "Report (HTML)",
            data=lambda: experiments.grid_report(store, _fresh(store, grid)),
            file_name=f"{slug}-report.html",
            mime="text/html",
            key=f"compare_report_{exp_id}",
            icon=":material/description:",
            on_click="ignore",
            help="One file with the pictures inline, for people without the app.",
        )
        if grid.kind in ("grid", "side_by_side"):
            from ui import compare_builder

            st.button("Set up again", key=f"compare_again_{exp_id}", icon=":material/replay:",
                      on_click=compare_builder.restore, args=(grid,),
                      help="Put this comparison's settings back in the form above, to change and run again. "
                           "Input images are not kept: add them again.")
        review_make.action(grid.job_ids, key=f"compare_review_{exp_id}")
        if st.button("Open in History", key=f"compare_history_{exp_id}", icon=":material/photo_library:",
                     type="tertiary"):
            try:
                st.switch_page(pages.HISTORY, query_params={"experiment": exp_id})
            except StreamlitAPIException:
                st.info("Open History from the menu: its filters can show this experiment.")


def _marks(grid: Grid) -> tuple[str | None, str | None]:
    """Job ids of the cheapest and the fastest finished cell (only worth saying with two or more)."""
    done = [j for j in grid.jobs if j.status == "succeeded"]
    if len(done) < 2:
        return None, None
    priced = [(cost, j.id) for j in done if (cost := hc.cost_value(j)) is not None]
    timed = [(secs, j.id) for j in done if (secs := hc.took(j)) is not None]
    cheapest = min(priced, key=lambda p: p[0])[1] if priced else None
    fastest = min(timed, key=lambda t: t[0])[1] if timed else None
    return cheapest, fastest


def _grid(grid: Grid) -> None:
    has_rows = grid.rows.kind != "none"
    ncols = len(grid.cols)
    widths = ([1.3] if has_rows else []) + [2] * ncols
    cheapest, fastest = _marks(grid)
    head = st.columns(widths, gap="small")
    if has_rows:
        head[0].caption(f"{grid.rows.title} ↓ · {grid.cols.title} →")
    for c in range(ncols):
        head[c + int(has_rows)].markdown(f"**{text.md(grid.cols.label(c))}**")
    for r in range(len(grid.rows)):
        cols = st.columns(widths, gap="small")
        if has_rows:
            cols[0].markdown(f"**{text.short_md(grid.rows.label(r), 160)}**")
        for c in range(ncols):
            with cols[c + int(has_rows)]:
                cell = grid.cell(r, c)
                if cell is None:
                    st.caption("—")
                else:
                    _cell(grid, cell, cheapest, fastest)


def _cell(grid: Grid, cell: GridCell, cheapest: str | None, fastest: str | None) -> None:
    key = f"compare_{grid.experiment_id[:8]}_{cell.row}_{cell.col}"
    if cell.error:
        with st.container(border=True):
            st.warning(f"**Not run.** {text.said(cell.error)}", icon=":material/block:")
            st.caption(f"{registry.label(cell.provider)} · {registry.model_label(cell.model, cell.provider)}")
        return
    job = cell.job
    if job is None:
        with st.container(border=True):
            st.caption("Deleted from history.")
        return
    from ui import jobs as job_ui

    if job.active:
        job_ui.job_card(job, key=key, actions=True)
        return
    if job.status != "succeeded" or not job.images:
        job_ui.error_card(job, key=key, actions=False)
        return
    _result(grid, job, key, cheapest, fastest)


def _rate(job_id: str, idx: int, key: str) -> None:
    value = st.session_state.get(key)
    services.store().set_rating(job_id, None if value is None else int(value) + 1, idx=idx, by=services.user())


def _toggle_winner(group: list[str], job_id: str, idx: int, now_winner: bool) -> None:
    history_ops.mark_winner(services.store(), group, job_id, idx, winner=not now_winner, by=services.user())


def _open_in_history(job_id: str) -> None:
    try:
        st.switch_page(pages.HISTORY, query_params={"job": job_id})
    except StreamlitAPIException:
        st.info("Open History from the menu to see this result in full.")


def _result(grid: Grid, job: JobView, key: str, cheapest: str | None, fastest: str | None) -> None:
    image = job.images[0]
    with st.container(border=True):
        path = image.path if image.path.exists() else image.thumb_path
        if image.bytes > 6 * 2**20 and image.thumb_path:
            path = image.thumb_path  # a huge file goes to the browser as its thumbnail
        if path is not None:
            st.image(str(path), width="stretch")
        badges = st.container(horizontal=True, gap="small")
        with badges:
            if image.winner:
                st.badge("Winner", icon=":material/emoji_events:", color="orange")
            if job.id == cheapest:
                st.badge("Cheapest", icon=":material/savings:", color="green")
            if job.id == fastest:
                st.badge("Fastest", icon=":material/bolt:", color="blue")
            if job.endpoint == "emulator":
                st.badge("Simulated", icon=":material/science:", color="gray")
        cost = hc.cost_value(job)
        how = "billed" if job.billed and not job.billed.estimated else "est."
        st.markdown(f"**{format_usd(cost)}** {how} · **{fmt.seconds(hc.took(job))}**")
        dims = f"{image.width}×{image.height}" if image.width and image.height else job.size
        st.caption(f"{registry.label(job.provider)} · {registry.model_label(job.model, job.provider)} · "
                   f"{job.quality} · {dims}")
        review_locality.spill_caption(job, image, key=f"{key}_{job.id[:8]}", offer=False)
        rating = hc.rating_of(job, image)
        rate_key = f"{key}_rate_{job.id[:8]}"
        st.feedback("stars", key=rate_key, default=rating - 1 if rating else None, on_change=_rate,
                    args=(job.id, image.idx, rate_key))
        row = st.container(horizontal=True, gap="small")
        with row:
            st.button(
                "Winner" if not image.winner else "Winner ✓",
                key=f"{key}_win_{job.id[:8]}",
                icon=":material/emoji_events:",
                type="primary" if image.winner else "secondary",
                on_click=_toggle_winner,
                args=(grid.job_ids, job.id, image.idx, image.winner),
                help="Mark the best result of this comparison (one winner; click again to clear).",
            )
            if st.button("Details", key=f"{key}_open_{job.id[:8]}", icon=":material/open_in_new:", type="tertiary",
                         help="Every parameter, the prompt as sent, download with recipe, run again, edit."):
                _open_in_history(job.id)

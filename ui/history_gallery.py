"""The History gallery: one page of thumbnails at a time, selection, and what to do with a selection.

Only one page of jobs is ever read (``list_jobs`` with limit/offset, plus a
count), and thumbnails are files handed to ``st.image`` by path, so the page
costs the same with ten jobs or ten thousand.
"""

from __future__ import annotations

import math
import zlib
from typing import cast

import streamlit as st
from streamlit.errors import StreamlitAPIException

from core.accounts import PermissionDenied
from core.history import ops as history_ops
from core.history.views import JobFilter, JobView
from core.jobs.lifecycle import STATE_WORDS
from providers import registry
from providers.types import QUALITY_WORDS
from ui import caches, history_export, history_filters, pages, services, text
from ui import history_common as hc

PAGE = "history_page"  # prefix of the pager's key (one pager per filter set)
PAGE_SIZE = "history_page_size"
SELECTED = "history_selected"  # {job_id: None}, in the order picked (a dict keeps order)
PANEL = "history_panel"  # which panel is open under the selection bar: export / delete / None
PAGE_SIZES = (24, 48, 96)
COLUMNS = 6


def selected() -> dict[str, None]:
    return cast(dict[str, None], st.session_state.setdefault(SELECTED, {}))


def _toggle(job_id: str) -> None:
    sel = selected()
    if st.session_state.get(f"history_sel_{job_id}"):
        sel[job_id] = None
    else:
        sel.pop(job_id, None)


def _select_page(ids: list[str]) -> None:
    sel = selected()
    for job_id in ids:
        sel[job_id] = None
        st.session_state[f"history_sel_{job_id}"] = True


def _clear_selection() -> None:
    for job_id in list(selected()):
        st.session_state.pop(f"history_sel_{job_id}", None)
    st.session_state[SELECTED] = {}
    st.session_state[PANEL] = None


def _open(job_id: str) -> None:
    st.query_params["job"] = job_id


def render() -> None:
    store = services.store()
    if store.count_jobs(JobFilter(visible_to=services.user().history_scope)) == 0:
        _empty_history()
        return
    flt = history_filters.render(caches.facets())  # cached: a DISTINCT over all jobs per rerun
    _experiment_banner(flt)
    total = store.count_jobs(flt)
    size = st.session_state.get(PAGE_SIZE, PAGE_SIZES[0])
    pages = max(1, math.ceil(total / size))
    # One pager per filter set: new filters start on page 1 without writing widget state by hand.
    pager = f"{PAGE}_{zlib.crc32(f'{flt!r}|{size}'.encode()):08x}"
    stored = st.session_state.get(pager, 1)
    page = stored if isinstance(stored, int) and 1 <= stored <= pages else min(max(1, int(stored or 1)), pages)
    jobs = store.list_jobs(flt, limit=size, offset=(page - 1) * size) if total else []

    _selection_bar([j.id for j in jobs], total, page, size)
    if not total:
        st.info("Nothing matches these filters.", icon=":material/search_off:")
        st.button("Clear filters", on_click=history_filters.clear, key="history_clear_filters")
        return
    _tiles(jobs)
    c1, c2 = st.columns([4, 1], vertical_alignment="center")
    with c1:
        st.pagination(pages, key=pager, default=page, max_visible_pages=9)
    c2.selectbox("Per page", PAGE_SIZES, key=PAGE_SIZE, label_visibility="collapsed",
                 format_func=lambda n: f"{n} per page", persist_state="session")


def _empty_history() -> None:
    st.info(
        "**No images yet.** Everything you make in Studio or Compare lands here, with its prompt, settings, "
        "cost and time, so you can find it, share it and run it again.",
        icon=":material/photo_library:",
    )
    try:
        st.page_link(pages.STUDIO, label="Make your first image in Studio", icon=":material/brush:")
    except StreamlitAPIException:  # the page run on its own has no navigation to link through
        pass


def _experiment_banner(flt: JobFilter) -> None:
    if not flt.experiment_id:
        return
    exp = history_ops.get_experiment(services.store(), flt.experiment_id)
    name = exp.name if exp else "an experiment that no longer exists"
    c1, c2 = st.columns([5, 1], vertical_alignment="center")
    c1.info(f"Showing the results of **{text.md(name)}**.", icon=":material/compare:")
    who = services.user()
    if exp is not None and not who.local and (who.owns(exp.user_id) or who.can("view_all")):
        if c1.button("Make a read-only link", key="history_exp_link", icon=":material/link:"):
            token = services.store().share_link("experiment", exp.id, by=who)
            c1.code(f"{st.context.url or ''}?experiment={exp.id}&share={token}", language=None)
    if c2.button("Show everything", key="history_exp_clear"):
        st.session_state.pop(history_filters.EXPERIMENT, None)
        st.rerun()


def _selection_bar(page_ids: list[str], total: int, page: int, size: int) -> None:
    sel = selected()
    first = (page - 1) * size + 1 if total else 0
    last = min(total, page * size)
    bar = st.container(horizontal=True, vertical_alignment="center", gap="small")
    with bar:
        st.markdown(f"**{total:,}** result{'s' if total != 1 else ''}" + (f" · showing {first:,}–{last:,}"
                                                                            if total > size else ""))
        if page_ids:
            st.button("Select page", key="history_select_page", on_click=_select_page, args=(page_ids,),
                      icon=":material/select_all:", type="tertiary")
        if sel:
            st.markdown(f"· **{len(sel)} selected**")
            st.button("Clear", key="history_clear_sel", on_click=_clear_selection, type="tertiary",
                      icon=":material/deselect:")
            if st.button("Export…", key="history_open_export", icon=":material/download:"):
                st.session_state[PANEL] = "export"
            if st.button("Delete…", key="history_open_delete", icon=":material/delete:"):
                st.session_state[PANEL] = "delete"
    panel = st.session_state.get(PANEL)
    if sel and panel == "export":
        history_export.export_panel(list(sel), key="history_sel", on_close=_close_panel)
    elif sel and panel == "delete":
        _delete_panel(list(sel))


def _close_panel() -> None:
    st.session_state[PANEL] = None


def _delete_panel(ids: list[str]) -> None:
    with st.container(border=True):
        st.markdown(f"**Delete {len(ids)} result{'s' if len(ids) != 1 else ''}?**")
        st.caption(
            "Their history entries and image files go for good. A file another job still uses is kept. "
            "The spend ledger keeps what they cost, so budgets do not change."
        )
        c1, c2, _ = st.columns([1, 1, 3])
        if c1.button("Delete for good", key="history_delete_confirm", type="primary", icon=":material/delete:"):
            try:
                result = services.store().delete_jobs(ids, by=services.user())
            except PermissionDenied as err:
                st.error(str(err), icon=":material/block:")
                return
            _clear_selection()
            msg = f"Deleted {len(result.deleted)} result{'s' if len(result.deleted) != 1 else ''}."
            if result.files_kept:
                msg += f" {result.files_kept} image file{'s' if result.files_kept != 1 else ''} kept: still used."
            if result.skipped_active:
                msg += f" {len(result.skipped_active)} still running: cancel them first."
            st.toast(msg, icon=":material/delete:")
            st.rerun()
        c2.button("Cancel", key="history_delete_cancel", on_click=_close_panel)


def _tiles(jobs: list[JobView]) -> None:
    grid = st.grid(COLUMNS, min_column_width=160, border=True, gap="small")
    for job in jobs:
        with grid.cell():
            _tile(job)


def _tile(job: JobView) -> None:
    image = job.images[0] if job.images else None
    if image is not None:
        path = image.thumb_path if image.thumb_path and image.thumb_path.exists() else image.path
        st.image(str(path), width="stretch")
    else:
        st.image(hc.placeholder(job.status), width="stretch")
    marks = []
    if job.endpoint == "emulator":
        marks.append(":orange[:material/science:]")
    if image is not None and image.winner:
        marks.append(":orange[:material/emoji_events:]")
    if len(job.images) > 1:
        marks.append(f"+{len(job.images) - 1}")
    if image is None:
        marks.append(f":red[{STATE_WORDS.get(job.status, job.status)}]" if job.status != "canceled"
                     else STATE_WORDS["canceled"])
    st.markdown(f"**{registry.label(job.provider)}** · {QUALITY_WORDS.get(job.quality, job.quality)} {' '.join(marks)}")
    st.caption(text.short_md(job.prompt, 70))  # a visitor's prompt: shown as text, never as Markdown
    rating = hc.rating_of(job, image)
    bits = [hc.cost_text(job), hc.when(job.queued_at)]
    if rating:
        bits.append(hc.stars(rating))
    st.caption(" · ".join(bits))
    row = st.container(horizontal=True, vertical_alignment="center", gap="small")
    with row:
        key = f"history_sel_{job.id}"
        if key not in st.session_state:
            # Seeded from the selection, not value=: "Select page" writes these keys too.
            st.session_state[key] = job.id in selected()
        st.checkbox("Select", key=key, on_change=_toggle, args=(job.id,))
        st.button("Open", key=f"history_open_{job.id}", on_click=_open, args=(job.id,), type="tertiary",
                  icon=":material/open_in_full:")

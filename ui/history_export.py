"""Exporting a selection: a ZIP (images with recipes, metadata.csv, metadata.json) and a stakeholder report.

Both are made on request ("Prepare") rather than on every rerun, and kept for
the current selection only, so a big export is built once and never silently
goes stale.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

import clock
from core.exports import downloads as exporting
from ui import format as fmt
from ui import review_make, services

ZIP = "history_export_zip"  # {"ids": tuple, "data": bytes, "name": str}
REPORT = "history_export_report"  # {"ids": tuple, "data": str, "name": str}
TITLE = "history_report_title"


def _prepared(slot: str, ids: tuple[str, ...]) -> dict[str, Any] | None:
    made = st.session_state.get(slot)
    return made if made and made.get("ids") == ids else None


def visible(job_ids: Sequence[str]) -> list[str]:
    """The jobs of ``job_ids`` this person may see (an export never carries someone else's private work)."""
    who = services.user()
    if who.can("view_all"):
        return list(job_ids)
    return [j.id for j in services.store().get_jobs(list(job_ids)) if who.sees(j.user_id, j.shared)]


def export_panel(job_ids: Sequence[str], *, key: str, on_close: Callable[[], None] | None = None) -> None:
    ids = tuple(visible(job_ids))
    stamp = clock.local_now().strftime("%Y%m%d-%H%M")
    with st.container(border=True):
        head, close = st.columns([6, 1])
        head.markdown(f"**Export {len(ids)} result{'s' if len(ids) != 1 else ''}**")
        if on_close is not None:
            close.button("Close", key=f"{key}_close", on_click=on_close, type="tertiary", icon=":material/close:")
        c1, c2 = st.columns(2)
        with c1:
            st.markdown(":material/folder_zip: **ZIP archive**")
            st.caption("Every image with its recipe embedded (prompt, settings, cost), plus metadata.csv and "
                       "metadata.json listing each result, failed ones included.")
            made = _prepared(ZIP, ids)
            if made is None:
                if st.button("Prepare ZIP", key=f"{key}_zip", icon=":material/folder_zip:"):
                    with st.spinner("Packing images…"):
                        data = exporting.build_zip(services.store(), ids)
                    st.session_state[ZIP] = {"ids": ids, "data": data, "name": f"image-studio-{stamp}.zip"}
                    st.rerun()
            else:
                st.download_button(
                    f"Download ZIP · {fmt.nbytes(len(made['data']))}",
                    data=made["data"],
                    file_name=made["name"],
                    mime="application/zip",
                    key=f"{key}_zip_dl",
                    type="primary",
                    icon=":material/download:",
                    on_click="ignore",
                )
        with c2:
            st.markdown(":material/description: **Stakeholder report**")
            st.caption("One HTML file with the pictures inline, prompts, settings, costs and ratings. Opens in any "
                       "browser, no app needed.")
            st.text_input("Report title", key=TITLE, placeholder="Image Studio results")
            made = _prepared(REPORT, ids)
            if made is None or made.get("title") != st.session_state.get(TITLE):
                if st.button("Prepare report", key=f"{key}_report", icon=":material/description:"):
                    title = (st.session_state.get(TITLE) or "").strip() or "Image Studio results"
                    with st.spinner("Writing the report…"):
                        html = exporting.selection_report(services.store(), ids, title)
                    st.session_state[REPORT] = {"ids": ids, "data": html, "name": f"report-{stamp}.html",
                                                "title": st.session_state.get(TITLE)}
                    st.rerun()
            else:
                st.download_button(
                    f"Download report · {fmt.nbytes(len(made['data'].encode()))}",
                    data=made["data"],
                    file_name=made["name"],
                    mime="text/html",
                    key=f"{key}_report_dl",
                    type="primary",
                    icon=":material/download:",
                    on_click="ignore",
                )
        if len(ids) > 1:
            review_make.action(ids, key=f"{key}_review")

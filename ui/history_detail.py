"""One result in full: the image, every parameter, the prompt as sent, cost, times, error, edit chain, actions.

Opened by ``?job=<id>`` in the URL, so the address in the browser is a link a
colleague on the same deployment can open.

Handing a job to Studio: ``st.session_state[studio_state.PREFILL] =
{"job_id": <id>, "mode": "rerun" | "high" | "edit"}`` then ``st.switch_page``
to Studio, which fills its form from that job (``edit`` also puts the image in
the input tray through ``ui.studio_actions.use_as_input``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from core.accounts import PermissionDenied
from core.exports import downloads as exporting
from core.history import ops as history_ops
from core.history.views import ImageView, JobFilter, JobView
from core.jobs.lifecycle import STATE_WORDS
from core.prompts import draft
from core.spend.money import format_amount, format_usd
from providers import registry
from providers.errors import ProviderError
from providers.types import MIME_BY_FORMAT, QUALITY_WORDS
from ui import format as fmt
from ui import history_common as hc
from ui import history_export, pages, services, text
from ui import studio_state as ss

_CONFIRM_DELETE = "history_detail_confirm_delete"
_STATUS_COLOUR: dict[str, Literal["green", "red", "orange", "gray"]] = {
    "succeeded": "green", "failed": "red", "unknown": "orange",
}
_EXPORT_OPEN = "history_detail_export"


def back() -> None:
    st.query_params.pop("job", None)
    st.session_state.pop(_CONFIRM_DELETE, None)
    st.session_state.pop(_EXPORT_OPEN, None)


def _open(job_id: str) -> None:
    st.query_params["job"] = job_id


def hand_to_studio(job: JobView, mode: str, image: ImageView | None = None) -> None:
    """Prefill Studio from this job (``rerun`` / ``high`` / ``edit``) and go there."""
    st.session_state[ss.PREFILL] = {"job_id": job.id, "mode": mode}
    if mode == "edit" and image is not None:
        from ui import studio_actions

        studio_actions.use_as_input(job, image)
    try:
        st.switch_page(pages.STUDIO)
    except StreamlitAPIException:  # the page run on its own: no navigation to switch through
        st.info("Studio is ready with this job: open it from the menu.")


def opened_by_link(kind: str, target_id: str) -> bool:
    """Whether this address carries a share link (``?share=<token>``) to exactly this job or experiment."""
    token = st.query_params.get("share")
    return bool(token) and services.store().open_share(str(token)) == (kind, target_id)


def render(job_id: str) -> None:
    store = services.store()
    who = services.user()
    job = store.get_job(job_id)
    st.button("Back to history", key="history_back", on_click=back, icon=":material/arrow_back:", type="tertiary")
    linked = job is not None and opened_by_link("job", job.id)
    if job is not None and not (who.sees(job.user_id, job.shared) or linked):
        job = None  # someone else's private work: said exactly as a missing one, so nothing leaks
    if job is None:
        st.warning(
            "This result is not in the history. It may have been deleted, or the link belongs to another "
            "deployment of Image Studio.",
            icon=":material/search_off:",
        )
        return
    run = history_ops.run_details(store, [job.run_id]).get(job.run_id) or {}
    st.subheader(text.short_md(job.prompt, 110), anchor=False)
    chips = st.container(horizontal=True, gap="small")
    with chips:
        st.badge(STATE_WORDS.get(job.status, job.status), icon=hc.STATUS_ICON.get(job.status),
                 color=_STATUS_COLOUR.get(job.status, "gray"))
        st.badge(registry.label(job.provider), color="blue")
        st.badge(registry.model_label(job.model, job.provider), color="gray")
        st.badge(f"{QUALITY_WORDS.get(job.quality, job.quality)} quality", color="gray")
        st.badge(draft.size_label(job.size), color="gray")
        if job.endpoint == "emulator":
            st.badge("Simulated: built-in emulator, nothing billed", icon=":material/science:", color="orange")
    left, right = st.columns([3, 2], gap="large")
    with left:
        _pictures(job)
    # Read-only unless it is theirs (or they are an owner): a link or a team share opens, never edits.
    mine = who.owns(job.user_id) or who.can("view_all")
    with right:
        _facts(job)
        if who.can("rate"):
            _rating(job, run)
        if mine and who.can("generate"):
            _actions(job, run)
        else:
            st.caption(":material/visibility: Shared with you to look at: read-only.")
    tabs = st.tabs(["Prompt", "Parameters", "Cost and time", "Edit chain", "Share"])
    with tabs[0]:
        st.caption("The prompt as sent. Use the copy button on the right of the box.")
        st.code(text.plain(job.prompt), language=None, wrap_lines=True)
        _code(job)
    with tabs[1]:
        _parameters(job, run)
    with tabs[2]:
        _cost_and_time(job)
    with tabs[3]:
        _chain(job)
    with tabs[4]:
        _share(job, mine)


def _pictures(job: JobView) -> None:
    if job.images:
        shown = job.images if len(job.images) <= 4 else job.images[:4]
        tabs = st.tabs([f"Image {i.idx + 1}" for i in shown]) if len(shown) > 1 else [st.container()]
        for tab, image in zip(tabs, shown, strict=False):
            with tab:
                if image.path.exists():
                    st.image(str(image.path), width="stretch")
                elif image.thumb_path and image.thumb_path.exists():
                    st.image(str(image.thumb_path), width="stretch")
                    st.caption("The full-size file is missing; this is its thumbnail.")
                else:
                    st.warning("The image file is missing from the data folder.", icon=":material/broken_image:")
                dims = f"{image.width}×{image.height}" if image.width and image.height else "size unknown"
                st.caption(f"{dims} · {image.format.upper()} · {fmt.nbytes(image.bytes)}")
        return
    if job.active:
        st.info("Still running: open it again in a moment, or follow it live in Studio.",
                icon=":material/hourglass_top:")
        return
    from ui import jobs as job_ui

    job_ui.error_card(job, key=f"history_err_{job.id}", actions=True)


def vs_estimate(billed: Decimal, est: Decimal | None) -> tuple[str | None, bool]:
    """(the delta text, whether it is a real difference); "±0%" when the bill is the estimate (said neutrally)."""
    if not est:
        return None, False
    pct = (billed - est) / est * 100
    if abs(pct) < Decimal("0.5"):
        return "±0% vs estimate", False
    return f"{pct:+.0f}% vs estimate", True


def _facts(job: JobView) -> None:
    # Each figure as wide as its text (a row that wraps), never cut to "$0.2…" by a narrow column.
    row = st.container(horizontal=True, gap="large")
    c1 = c2 = c3 = row
    est = job.estimate.usd if job.estimate else None
    c1.metric("Estimated", format_usd(est), width="content")
    if job.billed is None:
        c2.metric("Billed", "—", help="Not settled yet.", width="content")
    elif job.billed.estimated:
        c2.metric("Billed", format_usd(job.billed.usd), help="The provider reported no cost: the estimate is counted.",
                  width="content")
    elif job.billed.usd == 0:
        c2.metric("Billed", "$0.00", help="Not charged.", width="content")
    else:
        delta, differs = vs_estimate(job.billed.usd, est) if job.billed.usd is not None else (None, False)
        # No difference is no news: grey and without an arrow, not a red overspend alarm.
        c2.metric("Billed", format_usd(job.billed.usd), delta=delta, width="content",
                  delta_color="inverse" if differs else "off", delta_arrow="auto" if differs else "off")
    c3.metric("Took", fmt.seconds(hc.took(job)), width="content")
    st.caption(f"Made {hc.when(job.queued_at)} · {hc.stamp(job.queued_at)}")


def _rate(job_id: str, idx: int, key: str) -> None:
    value = st.session_state.get(key)
    services.store().set_rating(job_id, None if value is None else int(value) + 1, idx=idx, by=services.user())


def _group(job: JobView, experiment_id: str | None) -> list[str]:
    if not experiment_id:
        return []
    return [j.id for j in services.store().list_jobs(JobFilter(experiment_id=experiment_id), limit=500)]


def _winner(job: JobView, idx: int, key: str, experiment_id: str | None) -> None:
    history_ops.mark_winner(services.store(), _group(job, experiment_id), job.id, idx, by=services.user(),
                            winner=bool(st.session_state.get(key)))


def _rating(job: JobView, run: dict[str, Any]) -> None:
    if not job.images:
        return
    image = job.images[0]
    c1, c2 = st.columns([3, 2], vertical_alignment="center")
    with c1:
        key = f"history_rate_{job.id}_{image.idx}"
        rating = hc.rating_of(job, image)
        st.caption("Your rating")
        st.feedback("stars", key=key, default=rating - 1 if rating else None, on_change=_rate,
                    args=(job.id, image.idx, key))
    with c2:
        key = f"history_winner_{job.id}_{image.idx}"
        st.toggle(":material/emoji_events: Winner", value=image.winner, key=key, on_change=_winner,
                  args=(job, image.idx, key, run.get("experiment_id")),
                  help="Mark the best result. In an experiment there is one winner.")


def _actions(job: JobView, run: dict[str, Any]) -> None:
    image = job.images[0] if job.images else None
    st.markdown("**Next**")
    with st.container(horizontal=True, gap="small"):
        _next_buttons(job, image)
    with st.container(horizontal=True, gap="small"):
        _take_away_buttons(job, image, run)
    if st.session_state.get(_EXPORT_OPEN):
        history_export.export_panel([job.id], key="history_detail",
                                    on_close=lambda: st.session_state.pop(_EXPORT_OPEN, None))
    if st.session_state.get(_CONFIRM_DELETE):
        _confirm_delete(job)


def _next_buttons(job: JobView, image: ImageView | None) -> None:
    """What to make next from this job: again, at high, or an edit of its image."""
    if st.button("Run again", key="history_rerun", icon=":material/replay:", type="primary",
                 help="Open this request in Studio, ready to run again (the cost shows there first)."):
        hand_to_studio(job, "rerun")
    if st.button("Re-render at high", key="history_high", icon=":material/hd:",
                 disabled=job.quality in ("high", "xhigh", "max"),
                 help="Open this request in Studio at high quality."):
        hand_to_studio(job, "high")
    if st.button("Edit this", key="history_edit", icon=":material/edit:", disabled=image is None,
                 help="Use this image as the input of a new request; the edit chain is kept."):
        hand_to_studio(job, "edit", image)


def _take_away_buttons(job: JobView, image: ImageView | None, run: dict[str, Any]) -> None:
    """Download, export, the experiment it belongs to, delete."""
    if image is not None and image.path.exists():
        ext = {"jpeg": "jpg"}.get(image.format, image.format)
        st.download_button(
            "Download",
            data=lambda: exporting.image_with_recipe(job, image, run),
            file_name=exporting.image_file_name(job, image).rsplit(".", 1)[0] + f".{ext}",
            mime=MIME_BY_FORMAT.get(image.format, "application/octet-stream"),
            key="history_download",
            icon=":material/download:",
            on_click="ignore",
            help="The original file with its recipe embedded (prompt, settings, cost).",
        )
    if st.button("Export…", key="history_detail_export_btn", icon=":material/ios_share:",
                 help="ZIP with metadata, or a stakeholder report."):
        st.session_state[_EXPORT_OPEN] = not st.session_state.get(_EXPORT_OPEN, False)
    if run.get("experiment_id") and st.button("Open experiment", key="history_open_experiment",
                                              icon=":material/compare:"):
        try:
            st.switch_page(pages.COMPARE, query_params={"experiment": run["experiment_id"]})
        except StreamlitAPIException:
            st.info("Open Compare from the menu to see the experiment.")
    if st.button("Delete…", key="history_delete", icon=":material/delete:", disabled=job.active,
                 help="Cancel it first." if job.active else "Delete this result and its files."):
        st.session_state[_CONFIRM_DELETE] = True


def _confirm_delete(job: JobView) -> None:
    with st.container(border=True):
        st.markdown("**Delete this result?**")
        st.caption("Its history entry and image files go for good (a file another job uses is kept). "
                   "The spend ledger keeps its cost.")
        c1, c2 = st.columns(2)
        if c1.button("Delete for good", key="history_delete_confirm_one", type="primary"):
            try:
                result = services.store().delete_jobs([job.id], by=services.user())
            except PermissionDenied as err:
                st.error(str(err), icon=":material/block:")
                return
            back()
            st.toast("Deleted." if result.deleted else "Not deleted: it is still running.",
                     icon=":material/delete:")
            st.rerun()
        if c2.button("Keep it", key="history_delete_keep"):
            st.session_state.pop(_CONFIRM_DELETE, None)
            st.rerun()


def _code(job: JobView) -> None:
    from ui import studio_actions

    with st.expander("Copy as code", icon=":material/code:"):
        try:
            snippets = studio_actions.code_snippets(job)
        except (ProviderError, ValueError, KeyError, TypeError, OSError) as err:
            st.caption(f"The code could not be written: {text.md(err)}")
            return
        for (label, code, lang), tab in zip(snippets, st.tabs([s[0] for s in snippets]), strict=True):
            with tab:
                st.caption(f"This request as {label}. Your key is read from the environment, never written here.")
                st.code(code, language=lang)


_PARAM_LABELS = {
    "background": "Background",
    "output_format": "Output format",
    "output_compression": "Compression",
    "moderation": "Moderation",
    "input_fidelity": "Input fidelity",
    "resolution": "Resolution",
}


def _parameter_rows(job: JobView, run: dict[str, Any]) -> list[tuple[str, str]]:
    params = run.get("params") or {}
    rows: list[tuple[str, str]] = [
        ("Provider", registry.label(job.provider)),
        ("Model", f"{registry.model_label(job.model, job.provider)} ({job.model})"),
        ("Sent to", "Built-in emulator (simulated)" if job.endpoint == "emulator" else "The provider's live API"),
        ("Quality", job.quality),
        ("Size", draft.size_label(job.size)),
        ("Images asked", str(job.n)),
    ]
    for key, label in _PARAM_LABELS.items():
        value = params.get(key)
        if value not in (None, "", "auto") or (key in ("background", "moderation") and value):
            rows.append((label, str(value)))
    inputs = params.get("images") or []
    optional = (
        ("Input images", f"{len(inputs)} (an edit)" if inputs else ""),
        ("Mask", "yes" if params.get("mask") else ""),
        ("Template values", ", ".join(f"{k} = {v}" for k, v in job.variables.items()) if job.variables else ""),
        ("Template", str(run.get("template") or "")),
        ("Label", str(run.get("label") or "")),
        ("Provider's job id", job.provider_job_id or ""),
    )
    rows.extend((name, value) for name, value in optional if value)
    rows.append(("Job id", job.id))
    return rows


def _input_pictures(job: JobView) -> None:
    run_view = services.store().get_run(job.run_id, with_jobs=False)
    pics = [i for i in (run_view.inputs if run_view else ()) if i.path is not None and i.path.exists()]
    if not pics:
        return
    st.caption("Input images")
    cols = st.columns(min(6, len(pics)))
    for col, item in zip(cols, pics, strict=False):
        col.image(str(item.path), caption="mask" if item.role == "mask" else text.md(item.name), width="stretch")


def _parameters(job: JobView, run: dict[str, Any]) -> None:
    rows = _parameter_rows(job, run)
    st.dataframe(pd.DataFrame(rows, columns=["Setting", "Value"]), hide_index=True, width="stretch")
    if (run.get("params") or {}).get("images"):
        _input_pictures(job)


def _cost_and_time(job: JobView) -> None:
    est, billed = job.estimate, job.billed
    rows: list[tuple[str, str]] = []
    if est is not None:
        rows.append(("Estimated before running", _money(est.usd, est.amount, est.unit)))
    if billed is None:
        rows.append(("Billed", "not settled yet"))
    elif billed.estimated:
        rows.append(("Billed", f"{format_usd(billed.usd)}: no report from the provider, so the estimate counts"))
    elif billed.usd == 0:
        rows.append(("Billed", "not charged"))
    else:
        rows.append(("Billed (reported by the provider)", _money(billed.usd, billed.amount, billed.unit)))
    rows += [
        ("Queued", hc.stamp(job.queued_at)),
        ("Sent to the provider", hc.stamp(job.submitted_at)),
        ("Finished", hc.stamp(job.finished_at)),
    ]
    if job.submitted_at and job.queued_at:
        rows.append(("Waited before sending", fmt.seconds((job.submitted_at - job.queued_at).total_seconds())))
    rows.append(("Took at the provider", fmt.seconds(hc.took(job))))
    if job.expected_seconds:
        rows.append(("Expected", f"about {fmt.seconds(job.expected_seconds)}"))
    if job.attempts > 1:
        rows.append(("Attempts", str(job.attempts)))
    st.dataframe(pd.DataFrame(rows, columns=["", "Value"]), hide_index=True, width="stretch")
    if job.error_message:
        st.error(f"**{STATE_WORDS.get(job.status, job.status)}.** {text.said(job.error_message)}",
                 icon=":material/error:")
        if job.error_detail:
            with st.expander("The provider's own words"):
                st.code(text.plain(job.error_detail), language=None, wrap_lines=True)


def _money(usd: Decimal | None, amount: Decimal | None, unit: str | None) -> str:
    text = format_usd(usd)
    if amount is not None and unit and unit.upper() != "USD":
        text += f" ({format_amount(amount, unit)})"
    return text


def _chain(job: JobView) -> None:
    ancestors, descendants = history_ops.edit_chain(services.store(), job.id)
    if not ancestors and not descendants:
        st.caption("This result is not part of an edit chain. “Edit this” starts one: the new result remembers "
                   "that it was made from this one.")
        if job.parent_job_id:
            st.caption("It was made from a result that has since been deleted.")
        return
    chain = [*ancestors, job, *descendants]
    st.caption(f"{len(ancestors)} step{'s' if len(ancestors) != 1 else ''} before this one, "
               f"{len(descendants)} made from it. Oldest first.")
    per_row = 6
    for start in range(0, len(chain), per_row):
        cols = st.columns(per_row)
        for col, item in zip(cols, chain[start:start + per_row], strict=False):
            with col, st.container(border=True):
                image = item.images[0] if item.images else None
                if image is not None:
                    path = image.thumb_path if image.thumb_path and image.thumb_path.exists() else image.path
                    st.image(str(path), width="stretch")
                else:
                    st.image(hc.placeholder(item.status), width="stretch")
                st.caption(text.short_md(item.prompt, 50))
                if item.id == job.id:
                    st.markdown(":primary[**This one**]")
                else:
                    st.button("Open", key=f"history_chain_{item.id}", on_click=_open, args=(item.id,),
                              type="tertiary", icon=":material/open_in_full:")


def share_link(job_id: str) -> str:
    base = st.context.url or ""
    if not base:
        return f"/history?job={job_id}"
    # st.context.url is this page's address without its query string.
    return f"{base.rstrip('/')}?job={job_id}"


def _share(job: JobView, mine: bool) -> None:
    who = services.user()
    if who.local:
        st.caption("Anyone who can open this Image Studio can open this result with the link:")
        st.code(share_link(job.id), language=None)
        return
    st.caption("Private work is yours (and the owners') to see. Share it with the team, or give a read-only "
               "link: whoever signs in with a role can open it, never change it.")
    if not mine:
        st.code(share_link(job.id), language=None)
        return
    shared = st.toggle("Shared with the team", value=job.shared, key="history_share_team")
    if shared != job.shared:
        services.store().share_jobs([job.id], shared, by=who)
        st.rerun()
    if st.button("Make a read-only link", key="history_share_link", icon=":material/link:"):
        token = services.store().share_link("job", job.id, by=who)
        st.code(f"{share_link(job.id)}&share={token}", language=None)

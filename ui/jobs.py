"""Jobs on the page: a live panel that follows them, result cards, and failures explained.

Public API (the Studio, Compare and History pages use it):

- ``live_panel(job_ids, *, key, actions=True, columns=3)``: one card per image in a
  grid, a progress card per unfinished job. While any job is unfinished the panel
  is a fragment that refreshes itself: every ``REFRESH_SECONDS``, every
  ``NEAR_END_SECONDS`` around a job's expected end (``next_refresh``). A finished
  job redraws the panel, not the page; once all are done the panel stops its timer
  (``ui.refresh``) and the sidebar's spend fragment picks up the new total.
- ``result_card(job, image, *, key, actions=True)``: the image with its size,
  estimated and billed cost and time; Download (recipe embedded), Re-render at
  high (its cost on the button), Edit this, Copy as code.
- ``job_card(job, *, key, actions=True)``: progress or the failure of one job.
- ``error_card(job, *, key)``: why a job failed, whether it was billed, what to do.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal
from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitAPIException

from core.exports import downloads
from core.history import explain
from core.history.views import ImageView, JobView, Money
from core.images import keep_outside as maskkeep
from core.images import recipe
from core.jobs.lifecycle import STATE_WORDS
from core.prompts import draft
from core.review import locality
from core.spend.money import format_usd
from providers import registry
from providers.errors import ProviderError
from providers.registry import PROVIDERS
from providers.types import MIME_BY_FORMAT, QUALITY_WORDS
from ui import format as fmt
from ui import media_route, pages, previews, refresh, review_locality, services, studio_actions, studio_state, text

__all__ = ["NEAR_END_SECONDS", "REFRESH_SECONDS", "error_card", "job_card", "live_panel", "next_refresh", "result_card"]

REFRESH_SECONDS = 1.0
# Around a job's expected end the panel looks this often: half of it is the average wait between the
# runner storing the result and the panel drawing it (issue 17: done -> on screen <= 300 ms median).
NEAR_END_SECONDS = 0.15
_NEAR_BEFORE = 0.15  # the fast window opens this share of the expected time before its end (at least 0.5 s)
_NEAR_AFTER = 0.5  # ...and stays open this share after it (a job running late), at least 2 s
# Material icons: they ship with Streamlit, so they render where no emoji font is installed.
_TONE_ICON = {"error": ":material/error:", "warning": ":material/warning:", "info": ":material/info:"}


# --------------------------------------------------------------------------- panel


def live_panel(job_ids: Sequence[str], *, key: str, actions: bool = True, columns: int | None = None) -> None:
    """Follow ``job_ids``; ``columns`` defaults to 2 for up to four cards (they read better large), else 3."""
    ids = tuple(job_ids)
    if not ids:
        return
    jobs = services.store().get_jobs(ids)
    if any(j.active for j in jobs):
        _live(ids, key=key, actions=actions, columns=columns)
    else:
        _draw(jobs, key=key, actions=actions, columns=columns)


def next_refresh(jobs: Sequence[JobView], announced: Collection[str] = ()) -> float | None:
    """Seconds until the panel should look again; None when no job is unfinished.

    Fast (``NEAR_END_SECONDS``) from a little before the soonest expected end of an
    unfinished job until a while after it, else ``REFRESH_SECONDS`` (the progress
    line's clock): a job is seen on screen soon after it is stored, and a session
    waiting on long jobs does not rerun several times a second for nothing. Jobs in
    ``announced`` wake the panel themselves when they finish (``refresh.wake_on_finish``),
    so they need no fast looks.
    """
    active = [j for j in jobs if j.active]
    if not active:
        return None
    soonest: float | None = None
    for job in active:
        if job.id in announced:
            continue
        elapsed, expected = job.elapsed_seconds(), job.expected_seconds
        if elapsed is None or not expected:
            continue  # queued, or no idea how long it takes: the plain refresh
        before = max(0.5, _NEAR_BEFORE * expected)
        after = max(2.0, _NEAR_AFTER * expected)
        if elapsed > expected + after:
            continue  # long overdue: its end cannot be told apart from any other moment
        wait = max(0.0, expected - before - elapsed)
        soonest = wait if soonest is None else min(soonest, wait)
    if soonest is None or soonest >= REFRESH_SECONDS:
        return REFRESH_SECONDS
    return max(NEAR_END_SECONDS, soonest)


@st.fragment(run_every=REFRESH_SECONDS)
def _live(ids: tuple[str, ...], *, key: str, actions: bool, columns: int | None) -> None:
    # First thing, the plain pace: a wake (a job stored) comes as a 0.05-s timer, which would fire again and
    # again while this run draws; the run's end sets the pace it needs.
    refresh.set_interval(REFRESH_SECONDS)
    runner = services.runner()
    # Before reading: a job stored after the read below still wakes this fragment. A worker of this process
    # reruns it the moment one of its jobs is stored; jobs another process drives are looked for.
    mark = refresh.wake_on_finish(ids, runner)
    jobs = services.store().get_jobs(ids)
    _draw(jobs, key=key, actions=actions, columns=columns)
    announced = [] if mark is None else [j.id for j in jobs if j.active and j.claimed_by == runner.owner]
    finished = sum(not j.active for j in jobs)
    seen = f"_live_finished_{key}"
    if finished != st.session_state.get(seen, finished):
        refresh.wake("spend")  # the sidebar's spend: billed or released now
    st.session_state[seen] = finished
    interval = next_refresh(jobs, announced)
    if interval is not None:
        if mark is not None and refresh.woken_since(mark):
            interval = refresh.WAKE_SECONDS  # a job ended during this run: keep the wake, look again at once
        refresh.set_interval(interval)
    elif not refresh.stop():
        st.rerun()  # a Streamlit whose timer cannot be stopped from inside: the old full rerun


def _summary(jobs: Sequence[JobView]) -> str:
    done = sum(j.status == "succeeded" for j in jobs)
    failed = sum(j.status in ("failed", "unknown") for j in jobs)
    active = sum(j.active for j in jobs)
    images = sum(len(j.images) for j in jobs)
    parts = [f"{len(jobs)} job{'s' if len(jobs) != 1 else ''}"]
    if active:
        parts.append(f"{active} in progress")
    if done:
        parts.append(f"{images} image{'s' if images != 1 else ''} ready")
    if failed:
        parts.append(f"{failed} failed")
    est = [j.estimate.usd for j in jobs if j.estimate and j.estimate.usd is not None]
    finished = [j.billed for j in jobs if j.billed is not None]
    reported = [b.usd for b in finished if b.usd is not None and not b.estimated]
    unreported = [b.usd for b in finished if b.usd is not None and b.estimated]
    if est:
        parts.append(f"estimated {format_usd(sum(est, Decimal(0)))}")
    if reported and any(reported):
        parts.append(f"billed {format_usd(sum(reported, Decimal(0)))}")
    if unreported:
        parts.append(f"{format_usd(sum(unreported, Decimal(0)))} counted without a bill")
    return " · ".join(parts)


def _draw(jobs: Sequence[JobView], *, key: str, actions: bool, columns: int | None) -> None:
    if not jobs:
        st.caption("These jobs are no longer in the history.")
        return
    st.caption(_summary(jobs))
    cells: list[tuple[JobView, ImageView | None]] = []
    for job in jobs:
        if job.status == "succeeded" and job.images:
            cells.extend((job, image) for image in job.images)
        else:
            cells.append((job, None))
    if columns is None:
        columns = 2 if len(cells) <= 4 else 3
    # One look for the whole panel, not one per card: the edit spill of every masked edit among these jobs.
    spills = locality.spill_for(services.store().engine, [job.id for job, image in cells if image is not None])
    for start in range(0, len(cells), columns):
        cols = st.columns(columns)
        for col, (job, image) in zip(cols, cells[start:start + columns], strict=False):
            with col:
                if image is not None:
                    result_card(job, image, key=f"{key}_{job.id}_{image.idx}", actions=actions, spills=spills)
                else:
                    job_card(job, key=f"{key}_{job.id}", actions=actions)


# --------------------------------------------------------------------------- job card


def _prompt_line(job: JobView) -> str:
    """The prompt (or the template values) on one line, escaped for Markdown: it is a visitor's text."""
    if job.variables:
        return text.md(" · ".join(f"{k}: {v}" for k, v in job.variables.items()))
    flat = " ".join(job.prompt.split())
    return text.md(flat if len(flat) <= 90 else flat[:87] + "…")


def job_card(job: JobView, *, key: str, actions: bool = True, framed: bool = True) -> None:
    """An unfinished job's progress, or a finished one without images (failed, canceled...)."""
    with st.container(border=True) if framed else contextlib.nullcontext():
        if job.active:
            _progress(job, key=key, actions=actions)
        else:
            error_card(job, key=key, actions=actions, framed=False)


def _progress(job: JobView, *, key: str, actions: bool) -> None:
    st.markdown(f"**{STATE_WORDS.get(job.status, job.status)}** · {registry.label(job.provider)} · "
                f"{QUALITY_WORDS.get(job.quality, job.quality)} · {draft.size_label(job.size)}")
    st.caption(_prompt_line(job))
    previews.show(job.id)  # a streamed preview, where the provider sends them
    elapsed = job.elapsed_seconds()
    expected = job.expected_seconds
    if job.progress is not None:
        ratio = max(0.0, min(job.progress / 100, 1.0))
    elif elapsed is not None and expected:
        ratio = min(elapsed / expected, 0.95)  # never claim "done" from the clock alone
    else:
        ratio = 0.0
    if elapsed is None:
        line = f"{STATE_WORDS['queued' if job.status == 'queued' else 'submitting']}…"
    elif expected:
        line = f"{fmt.seconds(elapsed)} of about {fmt.seconds(expected)}"
    else:
        line = f"{fmt.seconds(elapsed)} so far"
    st.progress(ratio, text=line)
    if job.key_needed:  # never sent or followed with another key: it waits for its own
        st.warning(text.said(job.error_detail or ""), icon=":material/key:")
    if not actions:
        return
    if job.cancel_requested:
        st.caption("Canceling…")
    elif job.status == "queued" or job.can_cancel:
        if st.button("Cancel", key=f"{key}_cancel", icon=":material/close:", help="Stop this job."):
            outcome = services.runner().cancel(job.id, by=services.user())
            st.toast({"canceled": "Canceled before it was sent: nothing is charged.",
                      "requested": "Asked the provider to cancel."}.get(outcome, f"Cancel: {outcome}"))
    else:
        st.caption(f"{registry.label(job.provider)} cannot cancel a job once it is sent.")


@st.cache_data(ttl=600, max_entries=256, show_spinner=False)
def _run_inputs(run_id: str) -> tuple[tuple[str, str], ...]:
    """(role, path) of a run's stored inputs; inputs never change once a run exists."""
    run = services.store().get_run(run_id, with_jobs=False)
    if run is None:
        return ()
    return tuple((i.role, str(i.path) if i.path else "") for i in run.inputs)


def error_card(job: JobView, *, key: str, actions: bool = True, framed: bool = True) -> None:
    """Why a job has no image: what happened, whether it was charged, the next step; the provider's text folded."""
    frame = st.container(border=True) if framed else contextlib.nullcontext()
    with frame:
        had_inputs = any(role == "image" for role, _ in _run_inputs(job.run_id))
        # The job itself: explain reads its error's typed fields (stage, retry_after...), never its prose.
        why = explain.explain(job, had_input_images=had_inputs)
        show = {"error": st.error, "warning": st.warning, "info": st.info}[why.tone]
        show(f"**{text.said(why.title)}.** {text.said(why.body)}", icon=_TONE_ICON[why.tone])
        st.caption(_prompt_line(job))
        if why.charge:
            st.caption(f":material/payments: {text.md(why.charge)}")
        if why.hint:
            st.markdown(text.said(why.hint))
        if why.settings_link:
            with contextlib.suppress(StreamlitAPIException):  # the page run alone has no navigation
                st.page_link(pages.SETTINGS, label="Open Settings", icon=":material/settings:")
        words = explain.provider_words(why.detail)
        if words:
            with st.expander("The provider's own words"):
                st.text(text.plain(words))
        if actions and why.can_recheck and job.status in ("failed", "unknown") and job.provider_job_id:
            if st.button("Check again", key=f"{key}_recheck", help="Ask the provider about this job once more. "
                         "Nothing is sent again."):
                services.runner().recheck(job.id, by=services.user())
                st.rerun()


# --------------------------------------------------------------------------- result card


def _per_image(money: Money | None, count: int) -> Decimal | None:
    if money is None or money.usd is None:
        return None
    return money.usd / max(1, count)


def _cost_line(job: JobView) -> str:
    """Per image where the job made several (its share, so share × images = the job's figure), with the time."""
    count = len(job.images) or job.n
    each = " each" if count > 1 else ""

    def share(money: Money) -> str:
        return fmt.per_image(money.usd, count) + each

    parts = [f"Estimated {share(job.estimate)}" if job.estimate and job.estimate.usd is not None
             else "No estimate"]
    if job.billed is not None:
        if job.billed.estimated:
            parts.append("billed: not reported (estimate counted)")
        elif job.billed.usd is not None and job.billed.usd == 0:
            parts.append("not charged")
        elif job.billed.usd is not None:
            parts.append(f"billed {share(job.billed)}")
    elapsed = job.elapsed_seconds()
    if elapsed is not None:
        parts.append(f"took {fmt.seconds(elapsed)}")
    return " · ".join(parts)


def _composite(job: JobView, image: ImageView) -> maskkeep.Composite | None:
    """The result with the original put back outside the mask, when the run asked for it."""
    store = services.store()
    if not maskkeep.wanted(store.data_dir, job.run_id):
        return None
    inputs = _run_inputs(job.run_id)
    original = next((p for role, p in inputs if role == "image" and p), None)
    mask = next((p for role, p in inputs if role == "mask" and p), None)
    if not original or not mask:
        return None
    try:
        return maskkeep.composite(store.data_dir, Path(original), image.path, Path(mask), image.format)
    except (OSError, ProviderError, ValueError):
        return None  # show the provider's output as is rather than nothing


def _download_data(job_id: str, path: str, fmt_name: str) -> bytes:
    """The image file with its recipe embedded, made when Download is clicked (a deferred download).

    Made on every draw instead, it was the slowest part of the run that shows a finished job (embedding the
    recipe re-encodes a PNG: ~150 ms for 1536x1024), and each session kept every card's bytes in memory.
    A deferred file belongs to the run that drew its button, so a click in the instant a redraw replaces it
    would miss: the panel no longer redraws several times a second (it is woken when a job is stored, and
    looks once a second at most), which makes that instant rare.
    """
    data = Path(path).read_bytes()
    store = services.store()
    job = store.get_job(job_id)
    if job is None:
        return data
    count = len(job.images) or job.n
    meta = draft.recipe_for(
        provider=job.provider,
        request=store.load_request(job.id),
        job_id=job.id,
        run_id=job.run_id,
        endpoint=job.endpoint,
        estimate_usd=_per_image(job.estimate, count),
        billed_usd=_per_image(job.billed, count) if job.billed else None,
        parent_job_id=job.parent_job_id,
    )
    try:
        return recipe.embed(data, fmt_name, meta)
    except ProviderError:
        return data  # a format recipes cannot go into: the image itself is still worth having


@st.cache_data(ttl=300, max_entries=512, show_spinner=False)
def _high_cost(job_id: str) -> Decimal | None:
    job = services.store().get_job(job_id)
    return None if job is None else studio_actions.high_cost(job)


@st.cache_data(ttl=300, max_entries=128, show_spinner=False)
def _code(job_id: str) -> list[tuple[str, str, str]]:
    job = services.store().get_job(job_id)
    return [] if job is None else studio_actions.code_snippets(job)


def result_card(job: JobView, image: ImageView, *, key: str, actions: bool = True,
                spills: Mapping[tuple[str, int], locality.Spill] | None = None) -> None:
    """``spills``: the edit spills of the jobs around this card, looked up once (None: this card looks)."""
    with st.container(border=True):
        kept = _composite(job, image)
        shown = kept.path if kept is not None else image.path
        # Big files go to the browser as their thumbnail; the download is always the original.
        picture = image.thumb_path if image.bytes > 6 * 2**20 and image.thumb_path else shown
        st.image(media_route.image_url(picture) or str(picture), width="stretch")  # by hash: encoded once
        w, h = (kept.width, kept.height) if kept is not None and kept.width else (image.width, image.height)
        size = f"{w}×{h}" if w and h else "size unknown"
        st.markdown(f"**{registry.label(job.provider)}** · {QUALITY_WORDS.get(job.quality, job.quality)} · {size} · "
                    f"{image.format.upper()} · {fmt.nbytes(image.bytes)}")
        st.caption(_prompt_line(job))
        st.caption(_cost_line(job))
        review_locality.spill_caption(job, image, key=key, kept=kept is not None, spills=spills)
        if kept is not None:
            st.caption(
                f":material/layers: Original kept outside the mask: the model had changed {kept.percent:g}% "
                f"of those pixels ({kept.changed_outside:,} of {kept.total_outside:,})."
                + (f" Its {image.width}×{image.height} output was scaled to the original's size."
                   if kept.resized and image.width else "")
            )
        if not actions:
            return
        ext = {"jpeg": "jpg"}.get(image.format, image.format)
        # Two rows: what to do next with the image, then taking it away (file or code).
        act = st.container(horizontal=True, gap="small")
        with act:
            if job.quality not in ("high", "xhigh", "max"):
                cost = _high_cost(job.id)
                label = f"Re-render at high · {format_usd(cost)}" if cost is not None else "Re-render at high"
                if st.button(label, key=f"{key}_high", icon=":material/hd:",
                             help="Make this image again at high quality (same prompt, settings and inputs)."):
                    out = studio_actions.rerender_high(job)
                    if out.error:
                        st.toast(text.md(out.error), icon=":material/block:")
                    else:
                        st.switch_page(pages.STUDIO)
            if st.button("Edit this", key=f"{key}_edit", icon=":material/edit:",
                         help="Use this image as the input of a new request (the edit chain is kept in History)."):
                studio_actions.use_as_input(job, image)
                # The form takes this job's settings (High stays High) before its widgets draw.
                st.session_state[studio_state.PREFILL] = {"job_id": job.id, "mode": "edit"}
                st.switch_page(pages.STUDIO)
        take = st.container(horizontal=True, gap="small")
        with take:
            st.download_button(
                "Download",
                data=functools.partial(_download_data, job.id, str(shown), image.format),
                file_name=downloads.image_file_name(job, image).rsplit(".", 1)[0] + f".{ext}",
                mime=MIME_BY_FORMAT.get(image.format, "application/octet-stream"),
                key=f"{key}_dl",
                icon=":material/download:",
                on_click="ignore",
                help="The original file, with its recipe (prompt, settings, cost) embedded.",
            )
            _copy_as_code(job, key=key)


def _copy_as_code(job: JobView, *, key: str) -> None:
    # Written only while open (issue 17): shut, its tabs and code blocks went to the browser with every card on
    # every redraw of the panel, six elements a card.
    box = st.popover("Copy as code", icon=":material/code:", help="This request as curl or Python, to copy.",
                     key=f"{key}_code", on_change="rerun")
    if not box.open:
        return
    with box:
        try:
            snippets = _code(job.id)
        except (ProviderError, ValueError, KeyError, TypeError, OSError) as err:
            st.caption(f"The code could not be written: {text.md(err)}")
            return
        cls = PROVIDERS.get(job.provider)
        if cls is not None:
            st.caption(f"Calls the real {registry.label(job.provider)} API; the key is read from ${cls.key_env}, "
                       "never written here.")
        for (_, code, lang), tab in zip(snippets, st.tabs([s[0] for s in snippets]), strict=True):
            with tab:
                st.code(code, language=lang)

"""The Studio's output pane: the newest (or chosen) result large, its progress in place, before/after, a filmstrip.

The pane reads this session's runs (``studio_state.runs``, which a reload restores
from the address bar) and the store; it draws the focused run through
``ui.jobs.live_panel`` in one column, so the image gets the pane's whole width.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from PIL import Image, ImageDraw

from core.history.views import ImageView, JobView
from core.prompts import draft
from providers import registry
from providers.types import QUALITY_WORDS
from ui import jobs, services, text
from ui import studio_state as ss

FOCUS = ss.FOCUS
SPLIT = "studio_before_after"
_STRIP = 12  # filmstrip thumbnails at most


def _focused(runs: list[ss.Run]) -> ss.Run:
    chosen = st.session_state.get(FOCUS)
    return next((r for r in runs if r["run_id"] == chosen), runs[0])


def _header(job: JobView) -> None:
    when = job.queued_at.astimezone().strftime("%H:%M:%S")
    sim = " · simulated" if job.endpoint == "emulator" else ""
    model = registry.model_label(job.model, job.provider)
    st.markdown(f"**{registry.label(job.provider)}** · {model} · {QUALITY_WORDS.get(job.quality, job.quality)} · "
                f"{draft.size_label(job.size)} · sent {when}{sim}")


def _input_path(run_id: str) -> Path | None:
    run = services.store().get_run(run_id, with_jobs=False)
    if run is None:
        return None
    return next((i.path for i in run.inputs if i.role == "image" and i.path), None)


@st.cache_data(ttl=600, max_entries=32, show_spinner=False)
def _split_view(before: str, after: str, percent: int) -> bytes:
    """The input on the left of the split, the result on the right, a white line between (both at the result's size)."""
    import io

    with Image.open(after) as a_img, Image.open(before) as b_img:
        result = a_img.convert("RGB")
        original = b_img.convert("RGB").resize(result.size)
    x = round(result.width * percent / 100)
    if x > 0:
        result.paste(original.crop((0, 0, x, result.height)), (0, 0))
    line = max(2, result.width // 300)
    ImageDraw.Draw(result).rectangle((max(0, x - line // 2), 0, min(result.width, x + line // 2), result.height),
                                     fill=(255, 255, 255))
    buf = io.BytesIO()
    result.save(buf, "JPEG", quality=88)
    return buf.getvalue()


@st.fragment(run_every=jobs.REFRESH_SECONDS)
def _await_edit(job_ids: tuple[str, ...]) -> None:
    """While an edit runs: once done, one page rerun draws its before/after (the job panel redraws only itself)."""
    if not any(j.active for j in services.store().get_jobs(job_ids)):
        st.rerun(scope="app")


def _before_after(run: ss.Run, job: JobView | None) -> None:
    """For an edit: drag the split to see the input (left) against the result (right)."""
    if job is None:
        return
    before = _input_path(run["run_id"])
    if before is None or not before.exists():
        return
    if job.active:
        _await_edit(tuple(run["job_ids"]))
        return
    if job.status != "succeeded" or not job.images:
        return
    with st.container(border=True):
        st.markdown("**Before / after**")
        st.session_state.setdefault(SPLIT, 50)
        percent = st.slider("Input ← → result", 0, 100, key=SPLIT, format="%d%%",
                            help="Left of the line: the image you gave; right of it: the edit.")
        try:
            st.image(_split_view(str(before), str(job.images[0].path), int(percent)), width="stretch")
        except OSError:
            st.caption("The input image could not be read back from the history.")


def _focus(run_id: str) -> None:
    st.session_state[FOCUS] = run_id


def _thumb(image: ImageView) -> str:
    return str(image.thumb_path if image.thumb_path and image.thumb_path.exists() else image.path)


def _filmstrip(runs: list[ss.Run], focused: str) -> None:
    """This session's other results, small; a click on View shows one large."""
    store = services.store()
    tiles: list[tuple[ss.Run, JobView, ImageView | None]] = []
    for r in runs:
        if r["run_id"] == focused:
            continue
        for job in store.get_jobs(r["job_ids"]):
            if job.images:
                tiles.extend((r, job, image) for image in job.images)
            else:
                tiles.append((r, job, None))
    if not tiles:
        return
    st.markdown(f"**This session** · {len(tiles)} more")
    strip = st.container(horizontal=True, gap="small")
    for i, (r, job, image) in enumerate(tiles[:_STRIP]):
        with strip.container(width=108, gap=None):
            if image is not None:
                st.image(_thumb(image), width=100)
            else:
                st.caption(text.md(job.status.capitalize()))
            st.button("View", key=f"studio_strip_{r['run_id'][:12]}_{i}", on_click=_focus, args=(r["run_id"],),
                      help=f"{registry.label(job.provider)} · {QUALITY_WORDS.get(job.quality, job.quality)}: "
                      "show it large", width="stretch")
    if len(tiles) > _STRIP:
        st.caption(f"{len(tiles) - _STRIP} more on the History page.")


PANE_KEY = "studio_output"  # the pane's container: Streamlit gives it the class st-key-studio_output

# Only on a narrow screen, where Streamlit stacks the columns and the pane comes after the whole form.
# Our own constant script (no text of anyone's in it), run once in the run that sent the batch.
_INTO_VIEW = f"""<script>
(() => {{
  if (window.innerWidth >= 640) return;
  const pane = document.querySelector(".st-key-{PANE_KEY}");
  if (pane) pane.scrollIntoView({{block: "start"}});
}})();
</script>"""


def bring_into_view() -> None:
    """After Generate on a phone: scroll the output pane to the top of the screen (the result appears there)."""
    st.html(_INTO_VIEW, unsafe_allow_javascript=True, width="content")


def render() -> None:
    """The output pane. Before anything is generated it says where the image will appear."""
    runs = ss.runs()
    if not runs:
        with st.container(border=True):
            st.markdown("**Your image appears here**")
            st.caption("Large, with its cost and time, as soon as it is ready. Earlier results of this session "
                       "line up underneath; everything is kept on the History page.")
        return
    store = services.store()
    run = _focused(runs)
    first = store.get_jobs(run["job_ids"][:1])
    if first:
        _header(first[0])
    jobs.live_panel(run["job_ids"], key=f"studio_run_{run['run_id'][:12]}", columns=1)
    _before_after(run, first[0] if first else None)
    # Other runs still working are followed live too, smaller.
    for r in runs:
        if r is run:
            continue
        if any(j.active for j in store.get_jobs(r["job_ids"])):
            jobs.live_panel(r["job_ids"], key=f"studio_run_{r['run_id'][:12]}", columns=2)
    _filmstrip(runs, run["run_id"])

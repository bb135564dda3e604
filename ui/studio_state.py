"""The Studio page's per-user state: widget keys, the input-image tray, the runs of this session.

Value widgets keep themselves across page changes (``persist_state="session"``);
what a widget cannot keep (uploaded files, runs, the edit chain) lives here in
plain session keys, so a visit to History and back loses nothing.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypedDict, cast

import streamlit as st

# Widget keys (tests drive the page by these).
PROMPT = "studio_prompt"
TEMPLATE = "studio_template"
QUALITY = "studio_quality"
SIZE = "studio_size"
CUSTOM_SIZE = "studio_custom_size"
RESOLUTION = "studio_resolution"
BACKGROUND = "studio_background"
FORMAT = "studio_format"
COMPRESSION = "studio_compression"
MODERATION = "studio_moderation"
FIDELITY = "studio_fidelity"
N = "studio_n"
URLS = "studio_urls"
UPLOAD = "studio_upload"
MASK_MODE = "studio_mask_mode"
MASK_UPLOAD = "studio_mask_upload"
MASK_CANVAS = "studio_mask_canvas"
KEEP_OUTSIDE = "studio_keep_outside"
GENERATE = "studio_generate"
VAR_PREFIX = "studio_var_"
BUILDER_PREFIX = "studio_builder_"

# Plain session keys.
RUNS = "studio_runs"  # [{"run_id", "job_ids"}], newest first
KEPT = "studio_kept_inputs"  # [TrayItem] not owned by the uploader
UPLOAD_SNAPSHOT = "studio_upload_snapshot"  # what the uploader held, to survive a page change
PARENT = "studio_parent_job"  # the job an edit continues (history keeps the chain)
SHOW_OUTPUT = "studio_show_output"  # set by a Generate that sent: bring the output pane into view once
LAST_SENT = "studio_last_sent"  # {"fp", "at" (time.monotonic), "jobs"}: the batch Generate sent last
HELD = "studio_held_click"  # the fingerprint of a Generate click held back as a double click
SEND_AGAIN = "studio_send_again"
RECIPE_OFFER = "studio_recipe_offer"
RECIPE_SEEN = "studio_recipe_seen"
FLASH = "studio_flash"
PREFILL = "studio_prefill"  # {"job_id", "mode": rerun | high | edit}, set by History, taken by the Studio form
FOCUS = "studio_focus_run"  # the run the output pane shows large (unset: the newest)
RESTORED = "studio_restored_from_url"

# The form's widgets bound to the address bar (bind="query-params"), so a reload keeps the draft; this
# session's runs ride along in URL_RUNS. Run ids are shared history, readable by anyone who may see History.
BOUND = (PROMPT, TEMPLATE, QUALITY, SIZE, N)
URL_RUNS = "runs"
URL_RUNS_KEPT = 12
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


class Run(TypedDict):
    run_id: str
    job_ids: list[str]


@dataclass(frozen=True)
class TrayItem:
    """One input image as given (the original bytes; preparation for a provider happens per render)."""

    id: str
    name: str
    data: bytes
    source: str  # upload / history / result

    @functools.cached_property
    def sha256(self) -> str:
        # Once per item: a 12-MB phone photo takes ~20 ms to hash, and the tray asks on every rerun (issue 17).
        return hashlib.sha256(self.data).hexdigest()


def var_key(name: str) -> str:
    return VAR_PREFIX + name


def init() -> None:
    ss = st.session_state
    ss.setdefault(RUNS, [])
    ss.setdefault(KEPT, [])
    ss.setdefault(UPLOAD_SNAPSHOT, [])
    ss.setdefault(RECIPE_SEEN, set())
    ss.setdefault(FLASH, [])


# Session state hands values back untyped; these accessors say what each key holds.
def runs() -> list[Run]:
    init()
    return cast(list[Run], st.session_state[RUNS])


def track(run_id: str, job_ids: tuple[str, ...] | list[str]) -> None:
    """Remember a new run (newest first); the output pane shows it large."""
    init()
    st.session_state.pop(FOCUS, None)
    st.session_state[RUNS] = [{"run_id": run_id, "job_ids": list(job_ids)}] + [
        r for r in st.session_state[RUNS] if r["run_id"] != run_id
    ]


def kept() -> list[TrayItem]:
    init()
    return cast(list[TrayItem], st.session_state[KEPT])


def keep(item: TrayItem) -> None:
    init()
    if all(k.sha256 != item.sha256 for k in st.session_state[KEPT]):
        st.session_state[KEPT] = [*st.session_state[KEPT], item]


def drop(item_id: str) -> None:
    st.session_state[KEPT] = [k for k in kept() if k.id != item_id]


def flash(kind: str, message: str) -> None:
    """A message for the next run of the Studio page (callbacks cannot draw)."""
    init()
    st.session_state[FLASH] = [*st.session_state[FLASH], (kind, message)]


def take_flashes() -> list[tuple[str, str]]:
    init()
    out = cast(list[tuple[str, str]], st.session_state[FLASH])
    st.session_state[FLASH] = []
    return out


def restore_runs(job_ids_of: Callable[[str], Sequence[str] | None]) -> None:
    """Once per browser session: the runs named in the address bar (a reload) come back, if still stored."""
    if st.session_state.get(RESTORED):
        return
    st.session_state[RESTORED] = True
    if runs():
        return
    raw = st.query_params.get(URL_RUNS, "")
    restored: list[Run] = []
    for run_id in raw.split(",")[:URL_RUNS_KEPT]:
        if not _RUN_ID.match(run_id):
            continue  # typed by anyone: only a well-formed id reaches the store
        ids = job_ids_of(run_id)
        if ids:
            restored.append({"run_id": run_id, "job_ids": list(ids)})
    st.session_state[RUNS] = restored


def publish_runs() -> None:
    """Put this session's newest runs in the address bar (only when they changed: each write is a history entry)."""
    wanted = ",".join(r["run_id"] for r in runs()[:URL_RUNS_KEPT])
    if st.query_params.get(URL_RUNS, "") == wanted:
        return
    if wanted:
        st.query_params[URL_RUNS] = wanted
    else:
        del st.query_params[URL_RUNS]

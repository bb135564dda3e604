"""How often a live fragment reruns, set from inside it (issue 17).

``st.fragment(run_every=...)`` fixes a fragment's timer when the page (or a
parent fragment) draws it, and only a full page rerun stops it: the live panel
used to end with ``st.rerun()`` for that, which redrew the whole page each time
a batch finished. Streamlit's own messages can do better, and the frontend
already obeys them: an ``auto_rerun`` for a fragment replaces its interval, a
``stop_auto_rerun`` cancels it (Streamlit sends both itself, e.g. for a nested
``run_every`` child that is no longer drawn). :func:`set_interval` and
:func:`stop` send them for the fragment that is running now, so a live panel
polls faster near a job's expected end and stops once every job is done,
without touching the rest of the page.

They use Streamlit internals (the fragment id of the running thread, the
message queue): each returns False when those are not there, and the caller
falls back on a full rerun, as before.

``follow(name)`` inside a fragment remembers its id for this session, and
``wake(name)`` from another fragment makes it rerun once (it calls ``stop`` at
its end): a live panel wakes the sidebar's spend when one of its jobs finishes.

``wake_on_finish(job_ids)`` inside a fragment asks this process's job runner to
rerun it the moment a worker of the runner is done with one of those jobs: the
message goes from the worker's thread to the session through Streamlit's event
loop, so a finished job is on screen after one fragment run instead of after the
panel's next look, and a panel need not look several times a second for it (with
twenty sessions those looks were what kept the machine busy). A job another
process drives is not announced here: the panel keeps looking for those.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

import streamlit as st

__all__ = ["WAKE_SECONDS", "follow", "set_interval", "stop", "wake", "wake_on_finish", "woken_since"]

log = logging.getLogger(__name__)

_FOLLOWED = "_refresh_followed"  # session_state: name -> fragment id, of fragments others may wake
WAKE_SECONDS = 0.05  # a woken fragment replaces this timer first thing, so it fires about once


def _running_fragment() -> tuple[Any, str] | None:
    """(script run context, fragment id) of the fragment running now, or None."""
    try:
        from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState, get_script_run_ctx
    except ImportError:
        return None
    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is None:
        return None
    try:
        fragment_id = ThreadState.get().fragment_id
    except RuntimeError:
        return None
    return (ctx, fragment_id) if fragment_id else None


def _send(build: Any, fragment_id: str | None = None) -> bool:
    running = _running_fragment()
    if running is None:
        return False
    try:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    except ImportError:
        return False
    ctx, current = running
    msg = ForwardMsg()
    try:
        build(msg, fragment_id or current)
    except (AttributeError, ValueError):  # a Streamlit whose messages changed shape
        return False
    ctx.enqueue(msg)
    return True


def _auto_rerun(msg: Any, fragment_id: str, seconds: float) -> None:
    """Make ``msg`` Streamlit's own "rerun ``fragment_id`` every ``seconds``" message."""
    msg.auto_rerun.interval = float(seconds)
    msg.auto_rerun.fragment_id = fragment_id


def set_interval(seconds: float) -> bool:
    """Rerun the running fragment every ``seconds`` from now on; False when it cannot be set."""
    return _send(lambda msg, fragment_id: _auto_rerun(msg, fragment_id, seconds))


def stop() -> bool:
    """Stop the running fragment's timer (it still reruns on a widget inside it); False when it cannot."""

    def build(msg: Any, fragment_id: str) -> None:
        msg.stop_auto_rerun.fragment_ids.append(fragment_id)

    return _send(build)


def follow(name: str) -> None:
    """Inside a fragment: let :func:`wake` (``name``) rerun it later in this session."""
    running = _running_fragment()
    if running is not None:
        followed = dict(st.session_state.get(_FOLLOWED, {}))
        followed[name] = running[1]
        st.session_state[_FOLLOWED] = followed


def wake(name: str) -> bool:
    """From a running fragment: rerun the fragment that called ``follow(name)``, once; False when it cannot."""
    target = dict(st.session_state.get(_FOLLOWED, {})).get(name)
    if not target:
        return False

    return _send(lambda msg, fragment_id: _auto_rerun(msg, fragment_id, WAKE_SECONDS), target)


# --------------------------------------------------------------------------- a finished job wakes its panel
_FORGET_AFTER_S = 900.0  # a watch on a job no worker of ours announces (another process drives it) lapses


class Watchers:
    """Process-wide: which (session, fragment) waits for which job, told by the runner when one is done."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_job: dict[str, dict[tuple[str, str], float]] = {}
        self._wakes: dict[tuple[str, str], tuple[int, float]] = {}  # (session, fragment) -> (wakes, when)

    def watch(self, session_id: str, fragment_id: str, job_ids: Iterable[str]) -> int:
        """Wake (session, fragment) when any of ``job_ids`` is done; returns its wakes so far (``wakes``)."""
        now = time.monotonic()
        with self._lock:
            for job_id in job_ids:
                self._by_job.setdefault(job_id, {})[(session_id, fragment_id)] = now
            for job_id in [j for j, w in self._by_job.items() if max(w.values()) < now - _FORGET_AFTER_S]:
                del self._by_job[job_id]
            for pair in [p for p, (_, at) in self._wakes.items() if at < now - _FORGET_AFTER_S]:
                del self._wakes[pair]
            return self._wakes.get((session_id, fragment_id), (0, now))[0]

    def wakes(self, session_id: str, fragment_id: str) -> int:
        with self._lock:
            return self._wakes.get((session_id, fragment_id), (0, 0.0))[0]

    def finished(self, job_id: str) -> None:
        """The runner's listener (on a worker thread): rerun every fragment that watched ``job_id``."""
        now = time.monotonic()
        with self._lock:
            waiting = list(self._by_job.pop(job_id, {}))
            for pair in waiting:
                self._wakes[pair] = (self._wakes.get(pair, (0, now))[0] + 1, now)
        for session_id, fragment_id in waiting:
            _rerun_fragment(session_id, fragment_id)

    def watched(self, job_id: str) -> set[tuple[str, str]]:
        with self._lock:
            return set(self._by_job.get(job_id, {}))


WATCHERS = Watchers()


def _rerun_fragment(session_id: str, fragment_id: str) -> bool:
    """Send ``session_id``'s browser an auto-rerun of ``fragment_id`` (its own run then sets its next interval).

    Streamlit internals: the runtime's sessions and event loop. An AppSession is to be used on that loop, so the
    message is handed to it there. False when any of it is missing (the panel's own look still comes)."""
    try:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
        from streamlit.runtime import Runtime

        runtime = Runtime.instance()
        session = runtime.get_app_session(session_id)
        if session is None:
            return False
        msg = ForwardMsg()
        _auto_rerun(msg, fragment_id, WAKE_SECONDS)
        loop = runtime._get_async_objs().eventloop
        loop.call_soon_threadsafe(session._enqueue_forward_msg, msg)
        return True
    except Exception as exc:  # a Streamlit whose internals moved, or one shutting down
        log.debug("refresh: could not wake fragment %s: %s", fragment_id, exc)
        return False


def wake_on_finish(job_ids: Iterable[str], runner: Any) -> int | None:
    """Inside a fragment: rerun it when ``runner`` (this process's ``JobRunner``) is done with any of
    ``job_ids``. Call it before reading the jobs, so an end stored after the read still wakes the fragment.
    Returns a mark for :func:`woken_since`; None when it cannot be arranged (no fragment is running)."""
    running = _running_fragment()
    if running is None:
        return None
    ctx, fragment_id = running
    runner.add_listener(WATCHERS.finished)
    return WATCHERS.watch(ctx.session_id, fragment_id, job_ids)


def woken_since(mark: int) -> bool:
    """Whether the running fragment was woken after :func:`wake_on_finish` gave ``mark``: then its run may have
    read the job before it was stored, and the interval it sets at its end must not cancel the wake."""
    running = _running_fragment()
    if running is None:
        return False
    ctx, fragment_id = running
    return WATCHERS.wakes(ctx.session_id, fragment_id) > mark

"""Waiting for an asynchronous job: when to ask again.

The goal (measured by a benchmark): see a finished job within
max(5 % of its length, 150 ms) and never more than 300 ms late, while averaging
at most 2 status requests per second per job. Polling every 150 ms would meet the
first goal and break the second, so the schedule spends requests where the job is
likely to end:

1. Sparse before the expected end. Sleeps grow with the time already waited
   (about x1.5 per poll, at least 1 s), so a job that ends far earlier than
   expected is still seen reasonably soon, and every poll may refine the estimate.
   From the start of the spread (the expected end less ``spread`` of it: how much
   jobs like this one vary, learned from recent ones, never less than
   ``DEFAULT_SPREAD``) a sleep is at most ``MIN_SPARSE_STEP``, and no sleep crosses
   that start by more: a 45-s job ending at 36 s was seen 6.75 s late, now within
   1 s. Short jobs, whose sleeps are that short anyway, cost no extra request. A
   learned spread only widens the window: one learned in a calm hour (or from a
   dozen identical jobs) would leave the next job that ends 15 % early unwatched.
2. Dense (0.075-0.15 s) from just before the expected end until a little after it.
   A dense step is half the tolerance: the other half is for the app's own work
   once it sees the job done (download, thumbnail, commit), which the goal counts too.
3. Backing off gradually (to 2 s) when the job runs long.

Without any expected time the schedule starts at about 1 s and backs off.

The estimate is refined from the provider's ``progress`` where it reports one:
``wait`` fits the progress rate between two readings (robust to a queued phase
that reports 0 %), and ``next_interval`` alone can use one reading.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from .errors import ProviderTimeout
from .types import JobStatus

__all__ = ["MAX_INTERVAL", "estimate_total", "next_interval", "wait"]

MAX_INTERVAL = 2.0  # back-off cap for jobs running long or of unknown length
UNKNOWN_INTERVAL = 1.0  # first interval when nothing says how long the job takes
MIN_SPARSE_STEP = 1.0  # sparse sleeps are never shorter than this (or the gap left)
SPARSE_GROWTH = 0.5  # a sparse sleep is at most this fraction of the time waited so far
DENSE_MIN, DENSE_MAX = 0.075, 0.15
DENSE_SHARE = 0.5  # of the tolerance: the rest is the download and storage after the last poll
MIN_PROGRESS_SPAN = 5.0  # percentage points between two readings before their rate is trusted
DEFAULT_SPREAD = 0.2  # jobs end within ±20 % of their usual time; a wider learned spread widens it
MAX_SPREAD = 0.5


def _tolerance(length: float) -> float:
    """How late a job of ``length`` seconds may be seen: max(5 %, 150 ms), at most 300 ms."""
    return min(0.3, max(0.15, 0.05 * length))


def estimate_total(elapsed: float, expected: float | None, progress: float | None) -> float | None:
    """Best single-reading guess of the job's total length in seconds (None when unknown).

    Linear extrapolation from one progress reading over-estimates when the
    provider reports 0 % while queued, so it only ever shortens ``expected``.
    """
    from_progress = None
    if progress is not None and 1.0 <= progress < 100.0 and elapsed > 0:
        from_progress = elapsed * 100.0 / progress
    if expected is None or expected <= 0:
        return from_progress
    if from_progress is not None:
        return min(expected, from_progress)
    return expected


def next_interval(
    elapsed: float, expected: float | None, progress: float | None = None, spread: float | None = None
) -> float:
    """Seconds to sleep before the next status request (pure: no clock, no I/O).

    ``elapsed`` is the time since the job was submitted, ``expected`` its expected
    total length (None when unknown), ``progress`` the last reported 0-100 and
    ``spread`` how much such jobs vary, a share of ``expected`` (at least ``DEFAULT_SPREAD``, at most
    ``MAX_SPREAD``; None: the default).
    """
    est = estimate_total(elapsed, expected, progress)
    if est is None:
        return min(MAX_INTERVAL, max(UNKNOWN_INTERVAL, 0.25 * elapsed))
    dense = max(DENSE_MIN, min(DENSE_MAX, DENSE_SHARE * _tolerance(est)))
    # Dense polling starts about 5 % before the expected end, a whole number of dense steps
    # before it, so one poll falls on the expected end itself: a job that ends as expected is
    # seen at once, and a job of a few seconds spends no request just short of its end.
    lead = dense * max(1, math.floor(0.05 * est / dense + 1e-9))
    start = est - lead
    if elapsed < start:
        gap = start - elapsed
        share = min(MAX_SPREAD, max(DEFAULT_SPREAD, spread or 0.0))
        early = est * (1.0 - share)  # where the spread of such jobs begins
        step = max(MIN_SPARSE_STEP, SPARSE_GROWTH * elapsed)
        if elapsed >= early:
            # Inside the spread: a job ending now is seen within a second. A remainder shorter than a
            # dense step is taken with this sleep, so the dense polls still fall on the expected end.
            step = gap if gap < MIN_SPARSE_STEP + dense else MIN_SPARSE_STEP
        elif elapsed + min(gap, step) > early + MIN_SPARSE_STEP:
            step = early - elapsed  # this sleep would cross the spread's start by more than a step: stop there
        # Never shorter than a dense step: a re-estimate landing just before the start wastes a request.
        return max(dense, min(gap, step))
    tail = max(3 * dense, 0.1 * est)  # ...and goes on this long after it
    overrun = elapsed - est - tail
    if overrun <= 0:
        return dense
    # Past the estimate it was wrong: step up to 250 ms (still inside the 300 ms promise),
    # then grow 0.1 s per second of overrun.
    return min(MAX_INTERVAL, max(dense, 0.25) + 0.1 * overrun)


class _ProgressRate:
    """Fits the progress rate between the first useful reading and the latest one."""

    def __init__(self) -> None:
        self.first: tuple[float, float] | None = None
        self.last: tuple[float, float] | None = None

    def add(self, elapsed: float, progress: float | None) -> None:
        if progress is None or not 0 < progress < 100:
            return
        if self.first is None:
            self.first = (elapsed, progress)
        elif progress > self.first[1]:
            self.last = (elapsed, progress)

    def total(self) -> float | None:
        if self.first is None or self.last is None:
            return None
        (t1, p1), (t2, p2) = self.first, self.last
        if p2 - p1 < MIN_PROGRESS_SPAN or t2 <= t1:
            return None
        rate = (p2 - p1) / (t2 - t1)
        # Progress is often rounded down: half a point keeps the estimate from running late.
        return t2 + max(0.0, 100.0 - p2 - 0.5) / rate


def wait(
    poll: Callable[[], JobStatus],
    *,
    expected_seconds: float | None,
    deadline_seconds: float,
    started_at: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_status: Callable[[JobStatus], None] | None = None,
    spread: float | None = None,
) -> JobStatus:
    """Call ``poll`` until the job is done and return its last status.

    ``started_at`` (a ``clock`` reading) is when the job was submitted; by default
    now. A job submitted less than a second ago is first waited for (its submit
    answer was the first status); an older one is asked about at once. A failed
    or canceled job is returned, not raised: the caller decides. Raises
    ``ProviderTimeout`` once ``deadline_seconds`` have passed since ``started_at``
    without a finished job.
    """
    start = clock() if started_at is None else started_at
    rate = _ProgressRate()
    elapsed = clock() - start
    if elapsed < MIN_SPARSE_STEP:
        # Just submitted: the submit's own answer was the first status, so wait before asking again.
        first = next_interval(elapsed, expected_seconds, spread=spread)
        sleep(max(0.0, min(first, deadline_seconds - elapsed)))
    while True:
        status = poll()
        if on_status is not None:
            on_status(status)
        if status.done:
            return status
        elapsed = clock() - start
        if elapsed >= deadline_seconds:
            raise ProviderTimeout(
                f"The job did not finish within {deadline_seconds:g} seconds. It may still finish on the "
                "provider's side: check its dashboard, or try again later.",
                code="deadline",
                detail=f"job {status.job_id}, last state {status.state}, progress {status.progress}",
                sent=True,
            )
        rate.add(elapsed, status.progress)
        expected = rate.total() or expected_seconds or status.estimated_seconds
        interval = next_interval(elapsed, expected, status.progress, spread)
        sleep(max(0.0, min(interval, deadline_seconds - elapsed)))

"""Waiting for one provider job: polling through passing trouble, and when the provider was done.

Pure pieces with an injected clock and sleep (tested without threads or a
network); the driver supplies the callbacks that store progress and notice a
cancel or a stopping runner.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from providers import polling
from providers.base import Provider
from providers.errors import ProviderError, ProviderTimeout, ProviderUnavailable, RateLimited
from providers.types import JobState, JobStatus

__all__ = ["DoneWindow", "follow"]


def follow(
    provider: Provider,
    job_id: str,
    *,
    expected_seconds: float | None,
    deadline_seconds: float,
    started_at: float | None = None,
    initial_state: JobState = "queued",
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_status: Callable[[JobStatus], None] | None = None,
    on_transient: Callable[[ProviderError], None] | None = None,
    on_answer: Callable[[JobStatus, float], None] | None = None,
    spread: float | None = None,
) -> JobStatus:
    """Poll one provider job until it is done; returns the final status.

    A status request that fails for a passing reason (rate limit, 5xx, network)
    is not the job failing: the last known state stands and polling goes on
    until the deadline. Raises ``ProviderTimeout`` past the deadline, and any
    other provider error (an unknown job, a revoked key) as is. ``on_answer``
    gets each status the provider actually sent, with the ``clock`` reading.
    ``spread``: how much such jobs vary (``core.history.learned``), for the polling window.
    """
    last = JobStatus(job_id=job_id, state=initial_state)

    def poll() -> JobStatus:
        nonlocal last
        try:
            last = provider.status(job_id)
            if on_answer is not None:
                on_answer(last, clock())
        except (ProviderUnavailable, RateLimited) as err:
            if isinstance(err, ProviderTimeout) and err.code == "deadline":
                raise
            if on_transient is not None:
                on_transient(err)
        return last

    return polling.wait(
        poll,
        expected_seconds=expected_seconds,
        deadline_seconds=deadline_seconds,
        started_at=started_at,
        clock=clock,
        sleep=sleep,
        on_status=on_status,
        spread=spread,
    )


class DoneWindow:
    """When the provider finished, as status answers bracket it (readings of one monotonic clock).

    The job was done after the last answer that said "not done" and by the first
    that said "done"; the middle of that window is the best guess of the
    provider's own time, without the app's download and storage.
    """

    def __init__(self, not_done_at: float | None = None) -> None:
        self.not_done_at = not_done_at  # the submit's answer, when this process sent the job
        self.done_at: float | None = None

    def note(self, status: JobStatus, at: float) -> None:
        if self.done_at is not None:
            return
        if status.done:
            self.done_at = at
        else:
            self.not_done_at = at

    def seconds(self, started_at: float) -> float | None:
        """Seconds from ``started_at`` (submission) to the provider being done; None when unbracketed."""
        if self.not_done_at is None or self.done_at is None:
            return None  # e.g. a job resumed after a restart and found done at the first look
        return max(0.0, (self.not_done_at + self.done_at) / 2 - started_at)

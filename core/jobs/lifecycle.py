"""The states of a job and the words people read for them: the one home of both.

A job moves ``queued -> submitting -> submitted/running -> succeeded | failed |
canceled | unknown``. ``submitting`` is committed just before the job-creating
request goes out, so a job found there after a crash, with no provider job id,
may have been accepted and charged: it becomes ``unknown`` and is never resent
unless the provider honours idempotency keys.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = [
    "ACTIVE_STATES",
    "FINISHED_STATES",
    "JOB_STATES",
    "STATE_WORDS",
    "Status",
    "active_state",
    "is_status",
]

Status = Literal["queued", "submitting", "submitted", "running", "succeeded", "failed", "canceled", "unknown"]
JOB_STATES: Final[tuple[Status, ...]] = get_args(Status)
ACTIVE_STATES: Final[tuple[Status, ...]] = ("queued", "submitting", "submitted", "running")
FINISHED_STATES: Final[tuple[Status, ...]] = ("succeeded", "failed", "canceled", "unknown")

# What every page, export and report calls each state.
STATE_WORDS: Final[dict[Status, str]] = {
    "queued": "Waiting to be sent",
    "submitting": "Sending",
    "submitted": "At the provider",
    "running": "Running",
    "succeeded": "Done",
    "failed": "Failed",
    "canceled": "Canceled",
    "unknown": "Outcome unknown",
}


def is_status(value: object) -> bool:
    return value in JOB_STATES


def active_state(provider_state: str) -> Status:
    """The stored state of a job the provider has and is not done with.

    Only a provider saying "running" makes it ``running``; "queued" (accepted,
    not started) is ``submitted``; anything else a provider may say of a live job
    counts as running.
    """
    return "submitted" if provider_state == "queued" else "running"

"""Streamed previews of the images being made, in this process's memory only.

A preview is never a result: it is not written to the history, the files or the ledger.
The job driver puts each one here as the provider streams it and drops the job's
previews when the job ends; the job panel shows the latest one in place meanwhile.
With several app processes only the process whose runner drives the job has them
(a panel served by another process shows the usual progress until the image is in).

Bounded: at most ``MAX_JOBS`` jobs are kept (the oldest dropped first), and only the
latest preview of each (a preview replaces the one before: each is sharper).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from providers.types import PartialImage

__all__ = ["MAX_JOBS", "Preview", "PreviewStore", "STORE"]

MAX_JOBS = 64


@dataclass(frozen=True)
class Preview:
    job_id: str
    index: int  # 0-based, as the provider numbered it
    count: int  # previews seen so far for this job
    data: bytes
    format: str
    at: float  # time.monotonic() when it arrived (for the benchmark's time to first preview)

    def __repr__(self) -> str:
        return f"Preview({self.job_id}, #{self.index}, {self.format}, {len(self.data)} bytes)"


class PreviewStore:
    """The latest streamed preview per job, thread-safe (written by workers, read by page runs)."""

    def __init__(self, max_jobs: int = MAX_JOBS) -> None:
        self.max_jobs = max_jobs
        self._lock = threading.Lock()
        self._latest: OrderedDict[str, Preview] = OrderedDict()

    def put(self, job_id: str, image: PartialImage) -> Preview:
        with self._lock:
            before = self._latest.pop(job_id, None)
            preview = Preview(job_id, image.index, (before.count if before else 0) + 1, image.data, image.format,
                              time.monotonic())
            self._latest[job_id] = preview
            while len(self._latest) > self.max_jobs:
                self._latest.popitem(last=False)
            return preview

    def latest(self, job_id: str) -> Preview | None:
        with self._lock:
            return self._latest.get(job_id)

    def drop(self, job_id: str) -> None:
        with self._lock:
            self._latest.pop(job_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._latest)


# One per process, like the runner whose workers fill it (process memory by design).
STORE = PreviewStore()

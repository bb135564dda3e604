"""The emulator's state: jobs (persisted as JSON), queued faults, request log.

A job's status is derived from the wall clock: it is queued for the first tenth
of its job time, then running with progress rising linearly, then finished.
Because only ``created_at`` and the job time are needed, a job survives a
restart of the emulator and completes on time in the new process.

``jitter`` (0 by default) spreads job times as a real provider's vary: a new
job takes the latency times a factor in [1 - jitter, 1 + jitter], drawn from a
hash of its id (:func:`jitter_factor`), so the same id always gets the same length.

All methods take ``lock``: the server thread and the Python API share a store.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import clock

__all__ = [
    "FAULT_KINDS",
    "FAULT_OPS",
    "JOB_FAULT_KINDS",
    "PROVIDERS",
    "Job",
    "Store",
    "jitter_factor",
]

PROVIDERS = ("openai", "coretoday", "apiframe", "evolink")
FAULT_OPS = ("submit", "status", "result", "any")
FAULT_KINDS = (
    "rate_limit",
    "quota",
    "server_error",
    "slow",
    "malformed",
    "auth",
    "job_failed",
    "moderation",
    "expired_url",
    "drop_after_create",
    "model_not_found",
)
# Faults that act on a job rather than on one answer: they are consumed only by a
# request that actually creates (or names) a job, so a refused request leaves them queued.
JOB_FAULT_KINDS = frozenset({"job_failed", "moderation", "expired_url", "drop_after_create"})

QUEUE_FRACTION = 0.1  # the first tenth of the job time is reported as queued
MAX_LOGGED_REQUESTS = 5000  # the request log is for tests and benchmarks, not forever

EXT_BY_MIME = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/webp": "webp", "image/gif": "gif"}
MIME_BY_EXT = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}


@dataclass
class Job:
    """One job as the emulator remembers it (one JSON file per job)."""

    id: str
    provider: str
    model: str
    params: dict[str, Any]  # normalised: width, height, format, compression, transparent, quality, n, prompt
    request: dict[str, Any]  # what the client sent, JSON-able (no file bytes)
    created_at: float
    job_time: float
    inputs: list[str] = field(default_factory=list)  # upload file names (content addressed)
    sync: bool = False  # OpenAI: answered inline, state set when the answer is sent
    final_state: str | None = None  # set once the job is finalised (or canceled)
    final_progress: int | None = None
    error: dict[str, Any] | None = None  # planned failure {code, message, stage?}
    fail_fraction: float = 1.0  # when the planned failure shows, as a fraction of job_time
    completed_at: float | None = None
    status_requests: int = 0
    expired: bool = False
    idempotency_key: str | None = None
    body_sha: str | None = None

    def snapshot(self, now: float | None = None) -> tuple[str, int, float | None]:
        """(state, progress 0-100, finished_at or None) at ``now``.

        States are the contract's: queued / running / succeeded / failed / canceled.
        """
        now = clock.timestamp() if now is None else now
        if self.final_state is not None:
            progress = self.final_progress if self.final_progress is not None else 100
            return self.final_state, progress, self.completed_at
        t = max(self.job_time, 0.0)
        elapsed = now - self.created_at
        if self.sync:
            return "running", _progress(elapsed, t), None
        if self.error is not None:
            fail_at = t * self.fail_fraction
            if elapsed >= fail_at:
                return "failed", _progress(fail_at, t), self.created_at + fail_at
        if elapsed >= t:
            return "succeeded", 100, self.created_at + t
        if elapsed < t * QUEUE_FRACTION:
            return "queued", 0, None
        return "running", _progress(elapsed, t), None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def jitter_factor(job_id: str, jitter: float) -> float:
    """A job's length multiplier, uniform in [1 - jitter, 1 + jitter] over ids; the same for the same id."""
    if jitter <= 0:
        return 1.0
    unit = int.from_bytes(hashlib.sha256(job_id.encode()).digest()[:8], "big") / 2**64  # [0, 1)
    return 1.0 + jitter * (2.0 * unit - 1.0)


def _progress(elapsed: float, t: float) -> int:
    queue = t * QUEUE_FRACTION
    if t <= 0 or elapsed >= t:
        return 100
    if elapsed < queue:
        return 0
    return max(1, min(99, int(100 * (elapsed - queue) / (t - queue))))


class Store:
    """Jobs, faults, the request log and files under ``<data_dir>/emulator/``."""

    def __init__(
        self, data_dir: Path, latency: float, apiframe_result_shape: str = "images", jitter: float = 0.0
    ) -> None:
        self.root = Path(data_dir) / "emulator"
        self.jobs_dir = self.root / "jobs"
        self.files_dir = self.root / "files"
        self.uploads_dir = self.files_dir / "uploads"
        for d in (self.jobs_dir, self.files_dir, self.uploads_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.latency = float(latency)
        self.jitter = float(jitter)  # a new job's time is latency x jitter_factor(id, jitter)
        self.apiframe_result_shape = apiframe_result_shape
        self.prerender = False  # render results at creation rather than on first download (benchmarks)
        self.base_url = ""  # set once the socket is bound
        self.jobs: dict[str, Job] = {}
        # How many requests came with each API key (tests check whose key a job was followed with).
        self.keys_seen: collections.Counter[str] = collections.Counter()
        self.faults: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []  # webhook calls made (emulator.webhooks)
        self.in_flight = 0  # provider and file requests being answered right now
        self._load()

    # --- jobs -----------------------------------------------------------------
    def _load(self) -> None:
        for path in sorted(self.jobs_dir.glob("*.json")):
            try:
                job = Job.from_json(json.loads(path.read_text()))
            except (OSError, ValueError, TypeError):
                continue  # a half-written file from a crash: the job is lost, not the emulator
            if job.sync and job.final_state is None:
                # The process died while answering inline: nobody got the answer.
                job.final_state, job.completed_at = "failed", job.created_at + job.job_time
                job.error = {"code": "server_error", "message": "emulator restarted before answering"}
            self.jobs[job.id] = job

    def add(self, job: Job) -> None:
        """Keep a new job (its time spread by ``jitter``, once, before anyone reads it)."""
        with self.lock:
            if job.id not in self.jobs:
                job.job_time *= jitter_factor(job.id, self.jitter)
            self.jobs[job.id] = job
            self.save(job)

    def save(self, job: Job) -> None:
        # Write-then-rename so a crash never leaves a truncated job file.
        path = self.jobs_dir / f"{job.id}.json"
        tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(job.to_json()))
        os.replace(tmp, path)

    def get(self, job_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(job_id)

    def count_poll(self, job_id: str) -> None:
        """Count one status request (answered or not: benchmarks measure polling)."""
        with self.lock:
            job = self.jobs.get(job_id)
            if job is not None:
                job.status_requests += 1
                self.save(job)

    def observe(self, job: Job) -> tuple[str, int, float | None]:
        """The job's state now; finalises it (records completed_at) once terminal."""
        with self.lock:
            state, progress, finished = job.snapshot()
            if job.final_state is None and state in ("succeeded", "failed"):
                job.final_state, job.final_progress, job.completed_at = state, progress, finished
                self.save(job)
            return state, progress, finished

    def finish_sync(self, job: Job, state: str, error: dict[str, Any] | None = None) -> None:
        with self.lock:
            job.final_state, job.final_progress, job.completed_at = state, 100, clock.timestamp()
            job.error = error
            self.save(job)

    def cancel(self, job: Job) -> bool:
        """Cancel a job still under way; False when it had already finished."""
        with self.lock:
            state, progress, _ = self.observe(job)
            if state not in ("queued", "running"):
                return False
            job.final_state, job.final_progress, job.completed_at = "canceled", progress, clock.timestamp()
            self.save(job)
            return True

    def find_idempotent(self, provider: str, key: str) -> Job | None:
        with self.lock:
            for job in self.jobs.values():
                if job.provider == provider and job.idempotency_key == key:
                    return job
            return None

    # --- faults ---------------------------------------------------------------
    def add_fault(self, fault: dict[str, Any]) -> None:
        with self.lock:
            self.faults.append(dict(fault))

    def take_fault(self, provider: str, op: str) -> dict[str, Any] | None:
        """Consume one use of the first queued fault matching provider and op."""
        with self.lock:
            for i, fault in enumerate(self.faults):
                if fault["provider"] not in (provider, "any") or fault["op"] not in (op, "any"):
                    continue
                fault["count"] -= 1
                if fault["count"] <= 0:
                    del self.faults[i]
                return {**fault, "count": 1}
            return None

    def give_back(self, fault: dict[str, Any]) -> None:
        """Put an unused fault back at the front (its request was refused before use)."""
        with self.lock:
            for queued in self.faults:
                if all(queued.get(k) == v for k, v in fault.items() if k != "count"):
                    queued["count"] += 1
                    return
            self.faults.insert(0, dict(fault))

    # --- log and stats --------------------------------------------------------
    def log_request(
        self, provider: str, method: str, path: str, status: int | None, *, at: float | None = None
    ) -> None:
        with self.lock:
            self.requests.append(
                {"provider": provider, "method": method, "path": path, "status": status,
                 "at": clock.timestamp() if at is None else at}
            )
            del self.requests[:-MAX_LOGGED_REQUESTS]

    def request_began(self) -> None:
        with self.lock:
            self.in_flight += 1

    def request_ended(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is being answered (False if some still are after ``timeout``).

        Never call it on the server's event loop: the answers it waits for run there.
        """
        deadline = time.monotonic() + timeout  # the real clock: the app's may be pinned
        while self.in_flight > 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def stats(self) -> dict[str, Any]:
        with self.lock:
            creates = dict.fromkeys(PROVIDERS, 0)
            jobs: dict[str, Any] = {}
            for job in sorted(self.jobs.values(), key=lambda j: j.created_at):
                creates[job.provider] = creates.get(job.provider, 0) + 1
                state, progress, _ = self.observe(job)
                jobs[job.id] = {
                    "provider": job.provider,
                    "model": job.model,
                    "created_at": job.created_at,
                    "completed_at": job.completed_at,
                    "status_requests": job.status_requests,
                    "state": state,
                    "progress": progress,
                    "job_time": job.job_time,
                }
            return {
                "creates": creates,
                "requests": [dict(r) for r in self.requests],
                "jobs": jobs,
                "faults": [dict(f) for f in self.faults],
                "latency": self.latency,
                "jitter": self.jitter,
            }

    def reset(self) -> None:
        """Forget faults, the log and every job (uploads stay: they are content addressed)."""
        with self.lock:
            self.faults.clear()
            self.requests.clear()
            self.jobs.clear()
            for path in self.jobs_dir.glob("*"):
                with contextlib.suppress(OSError):
                    path.unlink()
            for path in self.files_dir.glob("*"):
                if path.is_file():
                    with contextlib.suppress(OSError):
                        path.unlink()

    # --- files ----------------------------------------------------------------
    def store_upload(self, data: bytes, ext: str) -> str:
        """Keep an input image; returns its name under ``files/uploads``."""
        name = f"{hashlib.sha256(data).hexdigest()}.{ext}"
        path = self.uploads_dir / name
        if not path.exists():
            tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return name

    def upload_url(self, name: str) -> str:
        return f"{self.base_url}/_files/uploads/{name}"

    def result_name(self, job: Job, index: int) -> str:
        return f"{job.id}-{index + 1}.{job.params['format']}"

    def result_urls(self, job: Job) -> list[str]:
        return [f"{self.base_url}/_files/{self.result_name(job, i)}" for i in range(job.params["n"])]

"""Who drives a job: runner identities, the claims they hold, and the transitions only a holder may make.

An owner id is ``host|pid|start|token``. ``start`` is the process start time
from ``/proc`` so a new process that happens to get a dead one's pid (pid 1 in
a container restarted) is not taken for it; ``token`` tells apart two runners
in one process. A claim by a process on this host that is gone can be taken at
once; claims from other hosts wait for their lease to expire.

``JobClaims`` works on the history database (the store's engine). A claim is a
lease in ``jobs.claimed_by``/``claim_expires_at``; every transition of a running
job is an ``UPDATE ... WHERE claimed_by = owner``, so two app processes sharing
one PostgreSQL can never both drive one job.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping

import clock
from core import db
from core.history.files import ImageInfo
from core.history.rows import insert_image
from core.history.views import Billing, JobError
from core.jobs.lifecycle import ACTIVE_STATES, FINISHED_STATES, Status
from core.jobs.settlement import settle
from core.spend import budget
from providers.redact import redact

__all__ = ["CancelOutcome", "JobClaims", "JobRow", "make_owner_id", "owner_is_dead", "process_start"]

# Long texts are cut: a provider's error body can be a whole HTML page. Every text stored here is
# redacted first (``_text``): the store boundary is where a key must stop, whoever wrote the text.
_TEXT_LIMIT = 4000


def _stat(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode(errors="replace")
    except OSError:
        return []
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    return stat.rpartition(")")[2].split()


def process_start(pid: int) -> str:
    """The kernel's start time of ``pid`` (clock ticks since boot), or "" where unknown."""
    fields = _stat(pid)
    return fields[19] if len(fields) > 19 else ""


def make_owner_id() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}|{pid}|{process_start(pid)}|{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str) -> bool:
    """True only when sure: the owner ran on this host and its process is gone."""
    parts = owner.split("|")
    if len(parts) != 4 or parts[0] != socket.gethostname():
        return False
    try:
        pid = int(parts[1])
    except ValueError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, owned by someone else
    fields = _stat(pid)
    if fields and fields[0] in ("Z", "X"):
        return True  # killed, not yet reaped by its parent
    if parts[2] and len(fields) > 19 and fields[19] != parts[2]:
        return True  # the pid was reused by a newer process
    return False


# --- the claimed job ---------------------------------------------------------------------------
@dataclass(frozen=True)
class JobRow:
    """A job as its runner reads it: the columns that decide what to do next."""

    id: str
    provider: str
    model: str
    quality: str
    endpoint: str
    status: Status
    provider_job_id: str | None
    idempotency_key: str
    expected_seconds: float | None
    progress: float | None
    cancel_requested: bool
    queued_at: datetime
    submitted_at: datetime | None
    claimed_by: str | None
    key_holder: str | None = None  # whose key it is sent and followed with (``db.jobs``; schema 5)
    user_id: str | None = None

    @classmethod
    def of(cls, row: RowMapping) -> JobRow:
        return cls(
            id=row["id"],
            provider=row["provider"],
            model=row["model"],
            quality=row["quality"],
            endpoint=row["endpoint"],
            status=cast(Status, row["status"]),
            provider_job_id=row["provider_job_id"],
            idempotency_key=row["idempotency_key"],
            expected_seconds=row["expected_seconds"],
            progress=row["progress"],
            cancel_requested=bool(row["cancel_requested"]),
            queued_at=row["queued_at"],
            submitted_at=row["submitted_at"],
            claimed_by=row["claimed_by"],
            key_holder=row.get("key_holder"),
            user_id=row.get("user_id"),
        )


CancelOutcome = Literal["canceled", "requested", "not_cancelable", "finished", "missing"]

# The typed error columns, cleared whenever a job is active again.
_NO_ERROR: dict[str, Any] = {
    "error_kind": None,
    "error_message": None,
    "error_stage": None,
    "error_billed": None,
    "error_retry_after": None,
    "error_status_code": None,
    "error_code": None,
    "error_sent": None,
}


def _text(value: str | None) -> str | None:
    """A text about to be stored: no key in it (``providers.redact``), cut to the column's limit."""
    return None if value is None else (redact(value) or "")[:_TEXT_LIMIT]


def _error_values(error: JobError | None) -> dict[str, Any]:
    if error is None:
        return dict(_NO_ERROR)
    values: dict[str, Any] = {
        "error_kind": error.kind[:32],
        "error_message": _text(error.message),
        "error_stage": error.stage,
        "error_billed": error.billed,
        "error_retry_after": error.retry_after,
        "error_status_code": error.status_code,
        "error_code": _text(error.code[:200]) if error.code is not None else None,
        "error_sent": error.sent,
    }
    if error.detail is not None:  # else the latest passing trouble noted stays visible
        values["error_detail"] = _text(error.detail)
    return values


class JobClaims:
    """The runner's side of the history: claims on jobs and their guarded transitions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- claims ------------------------------------------------------------------------------
    def claimable(
        self,
        owner: str,
        *,
        exclude_providers: Iterable[str] = (),
        exclude_ids: Iterable[str] = (),
        limit: int = 20,
        now: datetime | None = None,
    ) -> list[tuple[str, str]]:
        """(job id, provider) of unfinished jobs nobody live owns (or ``owner`` holds), oldest first."""
        now = now or clock.now()
        j = db.jobs.c
        with db.read(self.engine) as conn:
            held = (
                conn.execute(
                    sa.select(j.claimed_by)
                    .distinct()
                    .where(
                        j.status.in_(ACTIVE_STATES),
                        j.claimed_by.is_not(None),
                        j.claimed_by != owner,
                        j.claim_expires_at >= now,
                    )
                )
                .scalars()
                .all()
            )
            dead = [o for o in held if owner_is_dead(o)]
            query = sa.select(j.id, j.provider).where(
                j.status.in_(ACTIVE_STATES), sa.or_(self._free(now, dead), j.claimed_by == owner)
            )
            if exclude_providers:
                query = query.where(j.provider.not_in(list(exclude_providers)))
            if exclude_ids:
                query = query.where(j.id.not_in(list(exclude_ids)))
            query = query.order_by(j.queued_at, j.seq).limit(limit)
            return [(r[0], r[1]) for r in conn.execute(query)]

    @staticmethod
    def _free(now: datetime, dead: Sequence[str]) -> sa.ColumnElement[bool]:
        j = db.jobs.c
        conds = [j.claimed_by.is_(None), j.claim_expires_at < now]
        if dead:
            conds.append(j.claimed_by.in_(list(dead)))
        return sa.or_(*conds)

    def claim(self, job_id: str, owner: str, lease_seconds: float, *, now: datetime | None = None) -> JobRow | None:
        """Take the job if it is free (or its owner is dead); returns its row, or None."""
        now = now or clock.now()
        j = db.jobs.c
        with db.write(self.engine) as conn:
            row = conn.execute(sa.select(j.claimed_by, j.claim_expires_at, j.status).where(j.id == job_id)).first()
            if row is None or row.status not in ACTIVE_STATES:
                return None
            free = (
                row.claimed_by is None
                or row.claimed_by == owner
                or row.claim_expires_at is None
                or row.claim_expires_at < now
                or owner_is_dead(row.claimed_by)
            )
            if not free:
                return None
            result = conn.execute(
                db.jobs.update()
                .where(j.id == job_id, sa.or_(j.claimed_by.is_(None), j.claimed_by == row.claimed_by))
                .values(claimed_by=owner, claim_expires_at=now + timedelta(seconds=lease_seconds))
            )
            if result.rowcount != 1:
                return None
            return JobRow.of(conn.execute(sa.select(db.jobs).where(j.id == job_id)).mappings().one())

    def renew_claims(self, owner: str, lease_seconds: float, *, job_ids: Iterable[str] | None = None) -> int:
        """Extend the lease on ``job_ids`` (default: every job ``owner`` holds)."""
        now = clock.now()
        j = db.jobs.c
        query = db.jobs.update().where(j.claimed_by == owner, j.status.in_(ACTIVE_STATES))
        if job_ids is not None:
            ids = list(job_ids)
            if not ids:
                return 0
            query = query.where(j.id.in_(ids))
        with db.write(self.engine) as conn:
            return int(conn.execute(query.values(claim_expires_at=now + timedelta(seconds=lease_seconds))).rowcount)

    def release_claim(self, job_id: str, owner: str) -> None:
        with db.write(self.engine) as conn:
            conn.execute(
                db.jobs.update()
                .where(db.jobs.c.id == job_id, db.jobs.c.claimed_by == owner)
                .values(claimed_by=None, claim_expires_at=None)
            )

    def release_all_claims(self, owner: str) -> None:
        with db.write(self.engine) as conn:
            conn.execute(
                db.jobs.update()
                .where(db.jobs.c.claimed_by == owner)
                .values(claimed_by=None, claim_expires_at=None)
            )

    def job_row(self, job_id: str) -> JobRow | None:
        with db.read(self.engine) as conn:
            row = conn.execute(sa.select(db.jobs).where(db.jobs.c.id == job_id)).mappings().first()
            return JobRow.of(row) if row else None

    # --- transitions (the claim holder only) ---------------------------------------------------
    def _update_owned(self, conn: Connection, job_id: str, owner: str, *extra: Any, **values: Any) -> bool:
        values.setdefault("updated_at", clock.now())
        result = conn.execute(
            db.jobs.update().where(db.jobs.c.id == job_id, db.jobs.c.claimed_by == owner, *extra).values(**values)
        )
        return result.rowcount == 1

    def mark_submitting(self, job_id: str, owner: str, *, expected_seconds: float | None = None) -> bool:
        """Commit the marker that a job-creating request is about to be sent.

        Refused (False) when the runner lost the claim, or the job was canceled
        meanwhile: then nothing must be sent.
        """
        now = clock.now()
        j = db.jobs.c
        values: dict[str, Any] = {
            "status": "submitting",
            "attempts": j.attempts + 1,
            "submitted_at": sa.func.coalesce(j.submitted_at, now),
            "updated_at": now,
        }
        if expected_seconds is not None:
            values["expected_seconds"] = expected_seconds
        with db.write(self.engine) as conn:
            return self._update_owned(
                conn,
                job_id,
                owner,
                # A cancel of a queued job flips its status in one statement, so the status
                # test alone keeps a canceled job from being sent.
                j.status.in_(("queued", "submitting")),
                **values,
            )

    def mark_submitted(
        self,
        job_id: str,
        owner: str,
        provider_job_id: str,
        *,
        state: Status = "submitted",
        progress: float | None = None,
        expected_seconds: float | None = None,
    ) -> bool:
        """Store the provider's job id the moment it is known.

        Also succeeds when another runner took the job over and marked it
        ``unknown`` meanwhile (its lease ran out mid-call): the id is the truth,
        so the job goes back to being polled, by this runner.
        """
        now = clock.now()
        j = db.jobs.c
        values: dict[str, Any] = {"provider_job_id": provider_job_id, "status": state, "updated_at": now, **_NO_ERROR}
        if progress is not None:
            values["progress"] = progress
        if expected_seconds is not None:
            values["expected_seconds"] = expected_seconds
        with db.write(self.engine) as conn:
            if self._update_owned(conn, job_id, owner, **values):
                return True
            result = conn.execute(
                db.jobs.update()
                .where(j.id == job_id, j.status == "unknown", j.provider_job_id.is_(None))
                .values(claimed_by=owner, claim_expires_at=now + timedelta(seconds=60), finished_at=None, **values)
            )
            return result.rowcount == 1

    def update_progress(
        self,
        job_id: str,
        owner: str,
        *,
        state: Status | None = None,
        progress: float | None = None,
        expected_seconds: float | None = None,
    ) -> bool:
        values: dict[str, Any] = {}
        if state is not None:
            values["status"] = state
        if progress is not None:
            values["progress"] = progress
        if expected_seconds is not None:
            values["expected_seconds"] = expected_seconds
        if not values:
            return True
        with db.write(self.engine) as conn:
            return self._update_owned(conn, job_id, owner, db.jobs.c.status.in_(ACTIVE_STATES), **values)

    def note_error(self, job_id: str, owner: str, detail: str) -> None:
        """Keep the latest transient trouble (a failed poll) visible while the job goes on."""
        with db.write(self.engine) as conn:
            self._update_owned(conn, job_id, owner, error_detail=_text(detail))

    def session_key_jobs(self, provider: str) -> list[str]:
        """Unfinished jobs of ``provider`` sent with a key typed in a session (``jobs.key_holder``)."""
        j = db.jobs.c
        with db.read(self.engine) as conn:
            return list(conn.execute(sa.select(j.id).where(j.provider == provider, j.key_holder == "session",
                                                           j.status.in_(ACTIVE_STATES))).scalars())

    def clear_note(self, job_id: str, owner: str, prefix: str) -> None:
        """Drop a note that starts with ``prefix`` (the wait for a key is over)."""
        with db.write(self.engine) as conn:
            self._update_owned(conn, job_id, owner, db.jobs.c.error_detail.startswith(prefix, autoescape=True),
                               error_detail=None)

    def clear_cancel(self, job_id: str, owner: str, detail: str) -> None:
        """A cancel the provider refused: the job goes on, and says why."""
        with db.write(self.engine) as conn:
            self._update_owned(conn, job_id, owner, cancel_requested=False, error_detail=_text(detail))

    def cancel_requested(self, job_id: str) -> bool:
        with db.read(self.engine) as conn:
            return bool(conn.execute(sa.select(db.jobs.c.cancel_requested).where(db.jobs.c.id == job_id)).scalar())

    def finish(
        self,
        job_id: str,
        owner: str | None,
        *,
        status: Status,
        billing: Billing,
        images: Sequence[tuple[ImageInfo, str | None]] = (),
        error: JobError | None = None,
        progress: float | None = None,
        provider_seconds: float | None = None,
        now: datetime | None = None,
    ) -> bool:
        """End a job: its images (already on disk), its status, its error and its ledger entry, in one transaction.

        ``owner`` None finishes a job nobody holds (a cancel of a queued job).
        ``provider_seconds``: how long the provider took (see ``Store.learned_seconds``).
        Returns False, changing nothing, when the job is not this owner's or not active.
        """
        if status not in FINISHED_STATES:
            raise ValueError(f"not a finished state: {status}")
        now = now or clock.now()
        j = db.jobs.c
        values: dict[str, Any] = {
            "status": status,
            "finished_at": now,
            "updated_at": now,
            "claimed_by": None,
            "claim_expires_at": None,
            **_error_values(error),
        }
        if provider_seconds is not None:
            values["provider_seconds"] = provider_seconds
        if progress is not None or status == "succeeded":
            values["progress"] = 100.0 if progress is None else progress
        with db.write(self.engine) as conn:
            conds = [j.id == job_id, j.status.in_(ACTIVE_STATES)]
            conds.append(j.claimed_by.is_(None) if owner is None else j.claimed_by == owner)
            row = conn.execute(sa.select(j.estimate_usd_nanos).where(*conds)).first()
            if row is None:
                return False
            self._link_images(conn, job_id, images, now)
            values.update(settle(conn, job_id, billing, row[0]))
            return bool(conn.execute(db.jobs.update().where(*conds).values(**values)).rowcount == 1)

    @staticmethod
    def _link_images(
        conn: Connection, job_id: str, images: Sequence[tuple[ImageInfo, str | None]], now: datetime
    ) -> None:
        ji = db.job_images.c
        for idx, (info, source_url) in enumerate(images):
            insert_image(conn, info, now)
            exists = conn.execute(sa.select(ji.idx).where(ji.job_id == job_id, ji.idx == idx)).first()
            if exists is None:
                conn.execute(
                    db.job_images.insert(),
                    [{"job_id": job_id, "idx": idx, "sha256": info.sha256, "source_url": source_url, "winner": False}],
                )

    def request_cancel(self, job_id: str) -> CancelOutcome:
        """What a Cancel button does, in one transaction.

        Returns ``canceled`` (it was still queued: done, reservation released),
        ``requested`` (it is at the provider: the runner holding it cancels it
        there), ``not_cancelable`` (the provider cannot cancel: it will finish
        and be billed), ``finished`` (too late) or ``missing``.
        """
        now = clock.now()
        j = db.jobs.c
        with db.write(self.engine) as conn:
            row = conn.execute(sa.select(j.status, j.can_cancel).where(j.id == job_id)).first()
            if row is None:
                return "missing"
            if row.status in FINISHED_STATES:
                return "finished"
            if row.status == "queued":
                # Conditional on still queued: a runner's mark_submitting and this are exclusive.
                done = conn.execute(
                    db.jobs.update()
                    .where(j.id == job_id, j.status == "queued")
                    .values(
                        status="canceled",
                        cancel_requested=True,
                        finished_at=now,
                        updated_at=now,
                        claimed_by=None,
                        claim_expires_at=None,
                        error_kind="canceled",
                        error_message="Canceled before it was sent.",
                        billed_usd_nanos=0,
                        billed_estimated=False,
                    )
                ).rowcount
                if done:
                    budget.release(conn, job_id)
                    return "canceled"
            if not row.can_cancel:
                return "not_cancelable"
            conn.execute(db.jobs.update().where(j.id == job_id).values(cancel_requested=True, updated_at=now))
            return "requested"

    def reopen(self, job_id: str) -> bool:
        """Poll again a failed/unknown job that has a provider job id ("check again")."""
        now = clock.now()
        j = db.jobs.c
        with db.write(self.engine) as conn:
            result = conn.execute(
                db.jobs.update()
                .where(j.id == job_id, j.status.in_(("failed", "unknown")), j.provider_job_id.is_not(None))
                .values(
                    status="submitted",
                    finished_at=None,
                    updated_at=now,
                    claimed_by=None,
                    claim_expires_at=None,
                    **_NO_ERROR,
                )
            )
            if result.rowcount == 1:
                # The cost is open again until the provider answers.
                budget.reopen(conn, job_id, now=now)
                return True
            return False


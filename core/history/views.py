"""What the history hands out and takes in: plain frozen dataclasses, no database.

Pages get ``JobView``/``RunView``/``ImageView``; the runner hands in ``NewJob``,
``Billing`` and ``JobError``. ``JobError`` is the one typed record of why a job
ended badly: built from the provider's ``ProviderError``, stored as separate
columns, read back into ``JobView`` and explained from its fields.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import clock
from core.jobs.lifecycle import ACTIVE_STATES, FINISHED_STATES, Status
from providers.errors import ModerationBlocked, ProviderError, RateLimited

__all__ = [
    "Billing",
    "BillingMode",
    "Deleted",
    "ImageView",
    "InputView",
    "JobError",
    "JobFilter",
    "JobView",
    "KEY_NEEDED",
    "Money",
    "NewJob",
    "RunView",
    "new_id",
]


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Money:
    usd: Decimal | None
    amount: Decimal | None = None  # in ``unit`` (usd / credits / tokens...)
    unit: str | None = None
    estimated: bool = False  # billed only: no report from the provider, the estimate stands


@dataclass(frozen=True)
class JobError:
    """Why a job ended without its image, field by field as the provider's typed error said it.

    ``kind`` is the stored ``error_kind`` (a ``ProviderError.kind``, or the runner's
    own: ``unknown``, ``canceled``, ``no_image``, ``internal``). The other fields are
    None where nobody said (rows from before schema 3 have only kind, message, detail).
    """

    kind: str
    message: str | None = None
    detail: str | None = None  # the provider's own text
    stage: str | None = None  # moderation: "input" (refused before any work) or "output" (made, then withheld)
    billed: bool | None = None  # the provider's word on whether this failure is charged
    retry_after: float | None = None  # seconds the provider asked to wait
    status_code: int | None = None  # HTTP status of the answer
    code: str | None = None  # the provider's own error code
    sent: bool | None = None  # the request may have reached the provider

    @classmethod
    def of(
        cls,
        err: ProviderError,
        *,
        kind: str | None = None,
        message: str | None = None,
        detail: str | None = None,
    ) -> JobError:
        """The record of ``err``; ``kind``/``message``/``detail`` replace its own where the runner says more."""
        return cls(
            kind=kind or err.kind,
            message=str(err) if message is None else message,
            detail=err.detail if detail is None else detail,
            stage=err.stage if isinstance(err, ModerationBlocked) else None,
            billed=err.billed if isinstance(err, ModerationBlocked) else None,
            retry_after=err.retry_after if isinstance(err, RateLimited) else None,
            status_code=err.status_code,
            code=err.code,
            sent=err.sent,
        )


@dataclass(frozen=True)
class ImageView:
    idx: int
    sha256: str
    format: str
    width: int | None
    height: int | None
    bytes: int
    path: Path
    thumb_path: Path | None
    source_url: str | None = None
    rating: int | None = None
    winner: bool = False


@dataclass(frozen=True)
class JobView:
    id: str
    run_id: str
    seq: int
    provider: str
    model: str
    quality: str
    size: str
    endpoint: str
    prompt: str
    variables: dict[str, Any] | None
    n: int
    status: Status
    provider_job_id: str | None
    progress: float | None
    expected_seconds: float | None
    can_cancel: bool
    cancel_requested: bool
    attempts: int
    queued_at: datetime
    submitted_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    error_kind: str | None
    error_message: str | None
    error_detail: str | None
    estimate: Money | None
    billed: Money | None
    rating: int | None
    parent_job_id: str | None
    claimed_by: str | None
    images: tuple[ImageView, ...] = ()
    provider_seconds: float | None = None  # the provider's own time, as the polls bracket it
    # The typed fields of the error (schema 3; None on older rows): see ``JobError``.
    error_stage: str | None = None
    error_billed: bool | None = None
    error_retry_after: float | None = None
    error_status_code: int | None = None
    error_code: str | None = None
    error_sent: bool | None = None
    # Schema 5: who made it (a user id; None before accounts), shared with the team, whose key it uses.
    user_id: str | None = None
    shared: bool = False
    key_holder: str | None = None

    @property
    def key_needed(self) -> bool:
        """Waiting because the key it was sent with is gone (never sent or followed with another)."""
        return self.active and (self.error_detail or "").startswith(KEY_NEEDED)

    @property
    def done(self) -> bool:
        return self.status in FINISHED_STATES

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATES

    @property
    def error(self) -> JobError | None:
        """The error this job ended on, with its typed fields; None when it has none."""
        if self.error_kind is None:
            return None
        return JobError(
            kind=self.error_kind,
            message=self.error_message,
            detail=self.error_detail,
            stage=self.error_stage,
            billed=self.error_billed,
            retry_after=self.error_retry_after,
            status_code=self.error_status_code,
            code=self.error_code,
            sent=self.error_sent,
        )

    def elapsed_seconds(self, now: datetime | None = None) -> float | None:
        """Seconds since the provider got the job (until it finished)."""
        if self.submitted_at is None:
            return None
        end = self.finished_at or now or clock.now()
        return max(0.0, (end - self.submitted_at).total_seconds())


@dataclass(frozen=True)
class InputView:
    idx: int
    role: str  # image / mask
    sha256: str | None
    url: str | None
    mime: str | None
    name: str | None
    path: Path | None  # the stored file, when it is a local image


@dataclass(frozen=True)
class RunView:
    id: str
    created_at: datetime
    kind: str
    provider: str
    model: str
    endpoint: str
    prompt: str
    template: str | None
    variables: list[dict[str, Any]] | None
    params: dict[str, Any]
    n: int
    label: str | None
    experiment_id: str | None
    parent_job_id: str | None
    inputs: tuple[InputView, ...] = ()
    jobs: tuple[JobView, ...] = ()


@dataclass(frozen=True)
class JobFilter:
    """History filters; empty fields do not filter."""

    providers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    qualities: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    endpoint: str | None = None
    since: datetime | None = None  # queued at or after
    until: datetime | None = None  # queued before
    min_rating: int | None = None
    text: str | None = None  # in the prompt, case-insensitive
    run_id: str | None = None
    experiment_id: str | None = None
    winners_only: bool = False
    # Whose work: None shows everyone's (an owner, the local operator); a user id shows that person's
    # own jobs and those shared with the team (``scoped_to``); ``mine_only`` leaves out the shared ones.
    visible_to: str | None = None
    mine_only: bool = False


KEY_NEEDED = "Your key is needed to follow this job"  # the note a job waiting for its key carries


# --- what the runner hands in ---------------------------------------------------------
@dataclass(frozen=True)
class NewJob:
    prompt: str
    n: int
    quality: str
    size: str
    estimate: Money | None
    variables: Mapping[str, Any] | None = None
    expected_seconds: float | None = None
    id: str = field(default_factory=new_id)


@dataclass(frozen=True)
class Deleted:
    """What ``Store.delete_jobs`` did."""

    deleted: tuple[str, ...]
    skipped_active: tuple[str, ...]  # still running: cancel first
    files_removed: int  # images whose files went with them
    files_kept: int  # images another job (or an edit's input) still uses


BillingMode = Literal["billed", "estimated", "released"]


@dataclass(frozen=True)
class Billing:
    """How a finished job settles its reservation.

    ``mode``: ``billed`` (the provider reported the cost), ``estimated`` (no
    report: the estimate stands as billed, flagged) or ``released`` (not charged).
    """

    mode: BillingMode
    usd: Decimal | None = None
    amount: Decimal | None = None
    unit: str | None = None
    raw: Mapping[str, Any] | None = None

"""Driving one claimed job to its end: send it, follow it, download its images, settle its cost.

A ``JobDriver`` lives in one worker thread for one job. The rules it keeps, in
the order a job meets them (see ``core.jobs.runner`` for the scheduling):

1. ``submitting`` is committed just before the job-creating request. A job
   found in that state with no provider job id may have been accepted and
   charged: it becomes ``unknown`` and is never resent by itself, unless the
   provider honours idempotency keys (then it is resent with the same key,
   derived from the job id).
2. The provider's job id is committed the moment it is known; a job with one
   is polled, never resent.
3. Results are downloaded as soon as the job completes, written to disk
   atomically, and only then is the job marked ``succeeded``.

Every end goes through ``finish_with``, which stores the provider's typed error
field by field (``JobError``), never flattened into text.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import clock
from core.history import learned
from core.history.files import ImageInfo
from core.history.store import Store
from core.history.views import Billing, JobError
from core.jobs import submission, webhooks
from core.jobs.claims import JobClaims, JobRow
from core.jobs.follow import DoneWindow, follow
from core.jobs.lifecycle import Status, active_state
from core.jobs.previews import STORE, PreviewStore
from core.jobs.settlement import (
    Pricing,
    billing_for_failure,
    billing_for_report,
    refused,
    reported_cost,
    unsent_billing,
)
from core.review import locality
from providers.base import Provider
from providers.errors import (
    AuthError,
    JobCanceled,
    JobFailed,
    ModerationBlocked,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from providers.openai import safety_identifier
from providers.types import ImageRequest, JobStatus, ModelCaps, OutputImage, PartialImage

__all__ = [
    "DEFAULT_EXPECTED_SECONDS",
    "CancelNow",
    "Context",
    "DriveSettings",
    "JobDriver",
    "LostClaim",
    "Stopping",
    "drive",
    "finish_with",
    "download_failed_message",
    "mark_unknown",
    "unknown_message",
]

DEFAULT_EXPECTED_SECONDS = 60.0  # a job with no learned or published time is polled as if it took a minute

Sleep = Callable[[float], None]


# --- control-flow signals inside a worker ---------------------------------------------------
class Stopping(Exception):
    """The runner is stopping: leave the job as it is for the next start."""


class LostClaim(Exception):
    """Another runner owns the job now."""


class CancelNow(Exception):
    """Someone pressed Cancel on a job at the provider."""


@dataclass(frozen=True)
class DriveSettings:
    min_deadline_seconds: float = 900.0  # a job is given up on after 10x its expected time, at least this
    create_attempts: int = 3  # job-creating requests, counting resends to an idempotent provider
    download_attempts: int = 3
    retry_backoff: float = 2.0  # seconds, times the attempt number


@dataclass(frozen=True)
class Context:
    """What every driver of one runner shares."""

    store: Store
    claims: JobClaims
    owner: str
    pricing: Pricing
    settings: DriveSettings
    stopping: threading.Event
    previews: PreviewStore = field(default=STORE)  # streamed previews, in this process's memory only


def finish_with(
    ctx: Context,
    job_id: str,
    status: Status,
    billing: Billing,
    *,
    error: ProviderError | None = None,
    kind: str | None = None,
    message: str | None = None,
    detail: str | None = None,
    images: Sequence[tuple[ImageInfo, str | None]] = (),
    provider_seconds: float | None = None,
) -> bool:
    """End a job this runner holds, with ``error``'s typed fields (``kind``/``message``/``detail`` override them).

    Without ``error``, ``kind`` names the runner's own reason (``canceled``, ``no_image``...).
    """
    record = None
    if error is not None:
        record = JobError.of(error, kind=kind, message=message, detail=detail)
    elif kind is not None:
        record = JobError(kind, message, detail)
    return ctx.claims.finish(
        job_id, ctx.owner, status=status, billing=billing, images=images, error=record,
        provider_seconds=provider_seconds,
    )


_NOT_RESENT = "It was not sent again automatically: check the provider's dashboard before trying again."


def unknown_message(label: str, cause: ProviderError | None) -> str:
    """Why a sent job's outcome is unknown, as it happened: a server error, no answer in time, a lost connection."""
    status = cause.status_code if cause is not None else None
    if cause is not None and cause.code == "stream_cut":
        return (f"The stream from {label} was cut before the finished image arrived ({cause.detail}). "
                f"The image may have been made and charged all the same. {_NOT_RESENT}")
    if status is not None and status >= 500:
        return (f"{label} answered the request that makes this image with a server error (HTTP {status}). "
                f"The image may have been made and charged all the same. {_NOT_RESENT}")
    if cause is not None and cause.code == "malformed":
        return (f"{label} answered the request that makes this image with something this app cannot read. "
                f"The job may have been made and charged all the same. {_NOT_RESENT}")
    if isinstance(cause, ProviderTimeout):
        return (f"{label} did not answer in time after this job was sent, so it may have been accepted and "
                f"charged. {_NOT_RESENT}")
    return (f"The app lost contact with {label} while sending this job, so it may have been accepted and "
            f"charged. {_NOT_RESENT}")


def mark_unknown(
    ctx: Context, job_id: str, label: str, *, cause: ProviderError | None = None, detail: str | None = None
) -> None:
    """The job-creating request may have been accepted (and charged): say so, never resend it."""
    finish_with(
        ctx,
        job_id,
        "unknown",
        Billing("estimated"),
        error=cause,
        kind="unknown",
        message=unknown_message(label, cause),
        detail=detail,
    )


def drive(ctx: Context, job: JobRow, provider_for: Callable[[JobRow], Provider], sleep: Sleep) -> None:
    """Take a claimed job as far as it goes; raises ``Stopping``/``LostClaim`` to leave it."""
    if job.status == "queued" and job.cancel_requested:
        finish_with(ctx, job.id, "canceled", Billing("released"), kind="canceled",
                    message="Canceled before it was sent.")
        return
    try:
        provider = provider_for(job)
        caps = provider.caps(job.model)
    except ProviderError as err:
        if job.status == "queued":
            finish_with(ctx, job.id, "failed", unsent_billing(err), error=err)
            return
        raise
    JobDriver(ctx, job, provider, caps, sleep).run()


# Failures to take in a finished image that asking again cannot mend: the same link, the same answer.
FINAL_DOWNLOAD_CODES = frozenset({"result_expired", "result_too_large", "url_refused", "download_refused",
                                  "not_an_image"})


def download_failed_message(err: ProviderError) -> str:
    """What happened to a finished job's image, and a next step that can work."""
    if err.code == "result_expired":
        return (f"The image was made, but its link had expired before it could be downloaded: {err} "
                "Asking again would fetch the same dead link.")
    if err.code in FINAL_DOWNLOAD_CODES:
        return f"The image was made but not taken in: {err} Run the job again for a new one."
    return f"The image was made but could not be downloaded: {err}. Use “check again” to download it once more."


class JobDriver:
    """One job, its provider, the model's capabilities, its request and this runner's claim on it."""

    def __init__(self, ctx: Context, job: JobRow, provider: Provider, caps: ModelCaps, sleep: Sleep) -> None:
        self.ctx = ctx
        self.job = job
        self.provider = provider
        self.caps = caps
        self.sleep = sleep  # wakes early on a cancel; raises Stopping when the runner stops
        self._request: ImageRequest | None = None
        self._written: tuple[str, float | None] = (job.status, job.progress)  # what the store shows

    @property
    def request(self) -> ImageRequest:
        """The request this job sends, rebuilt from the store (its input images from their files)."""
        if self._request is None:
            self._request = self.ctx.store.load_request(self.job.id)
        return self._request

    def run(self) -> None:
        try:
            self._run()
        finally:
            self.ctx.previews.drop(self.job.id)  # a preview never outlives its job's drive

    def _run(self) -> None:
        status = self.job.status
        if status == "queued" or (status == "submitting" and self.provider.idempotent_create):
            self.send()
        elif status == "submitting" or not self.job.provider_job_id:
            mark_unknown(self.ctx, self.job.id, self.provider.label)
        else:
            self.follow()

    def finish(
        self,
        status: Status,
        billing: Billing,
        *,
        error: ProviderError | None = None,
        kind: str | None = None,
        message: str | None = None,
        images: Sequence[tuple[ImageInfo, str | None]] = (),
        provider_seconds: float | None = None,
    ) -> bool:
        return finish_with(self.ctx, self.job.id, status, billing, error=error, kind=kind, message=message,
                           images=images, provider_seconds=provider_seconds)

    def _callback_url(self) -> str | None:
        """Where the provider calls back for this job (``core.jobs.webhooks``), or None."""
        return webhooks.callback_url(self.job.provider, self.job.id) if self.provider.accepts_callback else None

    def _safety_identifier(self) -> str | None:
        """Who asked, hashed (OpenAI's safety_identifier: stable per person, nothing identifying)."""
        return safety_identifier(self.job.user_id) if self.job.user_id and self.caps.takes_safety_identifier else None

    def _poll_sleep(self, seconds: float) -> None:
        """While a callback is expected, polls are the fallback: slower, woken by the callback."""
        self.sleep(max(seconds * webhooks.POLL_SLOWDOWN, webhooks.POLL_FLOOR_SECONDS))

    def _expected(self) -> float | None:
        job = self.job
        return submission.expected_seconds(self.ctx.store, job.provider, job.model, job.quality, job.endpoint,
                                           self.caps)

    # --- sending ---------------------------------------------------------------------------------
    def send(self) -> None:
        request = self.request  # rebuilt first: a job that cannot be rebuilt fails before anything is sent
        if self.job.endpoint == "live" and not self.provider.has_key:
            p = self.provider
            self.finish("failed", Billing("released"), error=AuthError(
                f"No {p.label} API key is set ({p.key_env}). A key typed in Settings is kept "
                "only while the app runs: enter it again and resubmit.",
                provider=p.name,
            ))
            return
        expected = self.job.expected_seconds or self._expected()
        hook = self._callback_url()
        created = self._create(request.with_(callback_url=hook, safety_identifier=self._safety_identifier()),
                               expected)
        if created is not None:
            status, sent = created
            self._accepted(status, expected, sent=sent, answered=time.monotonic())

    def _create(self, request: ImageRequest, expected: float | None) -> tuple[JobStatus, float] | None:
        """Send the job-creating request: (the first status, when it went), or None once the job is settled."""
        ctx, job = self.ctx, self.job
        attempts = ctx.settings.create_attempts
        for attempt in range(1, attempts + 1):
            if not ctx.claims.mark_submitting(job.id, ctx.owner, expected_seconds=expected):
                return None  # canceled meanwhile, or another runner has it: send nothing
            sent = time.monotonic()
            try:
                status = self.provider.submit_streaming(request, idempotency_key=job.idempotency_key,
                                                        on_preview=self._on_preview)
                return status, sent
            except ProviderError as err:
                if attempt < attempts and self._resendable(err):
                    ctx.claims.note_error(job.id, ctx.owner, f"{err.kind}: {err} (resending with the same key)")
                    self.sleep(ctx.settings.retry_backoff * attempt)
                    continue
                self._create_failed(err)
                return None
        return None

    def _on_preview(self, image: PartialImage) -> None:
        self.ctx.previews.put(self.job.id, image)

    def _resendable(self, err: ProviderError) -> bool:
        # Only a provider that honours the idempotency key may get the same job twice.
        return err.sent and self.provider.idempotent_create and isinstance(err, ProviderUnavailable | RateLimited)

    def _create_failed(self, err: ProviderError) -> None:
        if err.sent and not refused(err):
            detail = "\n".join(x for x in (f"{err.kind}: {err}", err.detail) if x)
            mark_unknown(self.ctx, self.job.id, self.provider.label, cause=err, detail=detail)
        else:
            self.finish("failed", unsent_billing(err), error=err)

    def _accepted(self, status: JobStatus, expected: float | None, *, sent: float, answered: float) -> None:
        ctx, job = self.ctx, self.job
        if status.job_id:
            ok = ctx.claims.mark_submitted(
                job.id,
                ctx.owner,
                status.job_id,
                state=active_state(status.state),
                progress=status.progress,
                expected_seconds=status.estimated_seconds or expected,
            )
            if not ok:
                raise LostClaim
        if status.done:
            self.complete(status, provider_seconds=answered - sent)
            return
        if not status.job_id:
            mark_unknown(ctx, job.id, self.provider.label, detail="accepted without a job id")
            return
        self.job = ctx.claims.job_row(job.id) or job
        self._written = (self.job.status, self.job.progress)
        self.follow(not_done_at=answered)

    # --- following -------------------------------------------------------------------------------
    def follow(self, *, not_done_at: float | None = None) -> None:
        job, _ = self.job, self.request  # the request too: a job that cannot be rebuilt fails before polling
        provider_job_id = job.provider_job_id
        if not provider_job_id:
            mark_unknown(self.ctx, job.id, self.provider.label, detail="no provider job id to follow")
            return
        expected = job.expected_seconds or self._expected() or DEFAULT_EXPECTED_SECONDS
        deadline = max(self.ctx.settings.min_deadline_seconds, 10 * expected)
        since = job.submitted_at or job.queued_at
        started_at = time.monotonic() - max(0.0, (clock.now() - since).total_seconds())
        window = DoneWindow(not_done_at)
        spread = learned.learned_spread(self.ctx.store, job.provider, job.model, job.quality, job.endpoint)
        while True:
            try:
                final = follow(
                    self.provider,
                    provider_job_id,
                    expected_seconds=expected,
                    deadline_seconds=deadline,
                    started_at=started_at,
                    initial_state="running" if job.status == "running" else "queued",
                    sleep=self._poll_sleep if self._callback_url() else self.sleep,
                    on_status=self._on_status,
                    on_transient=self._on_transient,
                    on_answer=window.note,
                    spread=spread,
                )
            except CancelNow:
                if self._cancel_at_provider(provider_job_id):
                    return
                continue
            except ProviderError as err:
                self._follow_failed(err)
                return
            break
        self.complete(final, provider_seconds=window.seconds(started_at))

    def _on_status(self, status: JobStatus) -> None:
        ctx = self.ctx
        if not status.done:
            state = active_state(status.state)
            if (state, status.progress) != self._written:
                if not ctx.claims.update_progress(self.job.id, ctx.owner, state=state, progress=status.progress,
                                                  expected_seconds=status.estimated_seconds):
                    raise LostClaim
                self._written = (state, status.progress)
        if ctx.stopping.is_set():
            raise Stopping
        if not status.done and ctx.claims.cancel_requested(self.job.id):
            raise CancelNow

    def _on_transient(self, err: ProviderError) -> None:
        self.ctx.claims.note_error(self.job.id, self.ctx.owner, f"status check failed ({err.kind}): {err}")

    def _follow_failed(self, err: ProviderError) -> None:
        if isinstance(err, ProviderTimeout):
            self.finish("failed", Billing("estimated"), error=err)
        elif isinstance(err, JobFailed | ModerationBlocked):
            self._finish_failed(err, None)
        elif isinstance(err, JobCanceled):
            self.finish("canceled", Billing("estimated"), error=err)
        else:
            # The provider no longer answers about this job (key revoked, job unknown): keep its id
            # so "check again" can resume; it may still be billed.
            self.finish("unknown", Billing("estimated"), error=err, message=f"Could not follow the job: {err}")

    def _cancel_at_provider(self, provider_job_id: str) -> bool:
        ctx, job = self.ctx, self.job
        if not self.caps.can_cancel:
            ctx.claims.clear_cancel(job.id, ctx.owner, f"{self.provider.label} cannot cancel a job: it goes on.")
            return False
        try:
            self.provider.cancel(provider_job_id)
        except ProviderError as err:
            ctx.claims.clear_cancel(job.id, ctx.owner, f"Cancel failed ({err.kind}): {err}. The job goes on.")
            return False
        # Whether a canceled job is charged is not reported: the estimate stands, flagged.
        self.finish("canceled", Billing("estimated"), kind="canceled", message="Canceled.")
        return True

    # --- the end ---------------------------------------------------------------------------------
    def _finish_failed(self, err: BaseException | None, status: JobStatus | None) -> None:
        reported = None
        if status is not None:
            reported = reported_cost(self.ctx.pricing, self.job.provider, self.request, status)
        billing = billing_for_failure(self.provider, err, reported, status.billed if status else None)
        if isinstance(err, ProviderError):
            self.finish("failed", billing, error=err)
        else:
            message = str(err) if err is not None else "The provider reported that the job failed."
            self.finish("failed", billing, kind="job_failed", message=message)

    def complete(self, status: JobStatus, *, provider_seconds: float | None = None) -> None:
        if status.state == "failed":
            self._finish_failed(status.error, status)
            return
        if status.state == "canceled":
            self.finish("canceled", Billing("estimated", raw=status.billed), kind="canceled",
                        message="The provider canceled the job.")
            return
        outputs = self._download(status)
        if isinstance(outputs, ProviderError):
            self.finish("failed", Billing("estimated", raw=status.billed), error=outputs,
                        message=download_failed_message(outputs))
            return
        infos = [(self.ctx.store.files.put(o.data, o.format), o.source_url) for o in outputs]
        reported = reported_cost(self.ctx.pricing, self.job.provider, self.request, status)
        billing = billing_for_report(reported, status.billed)
        if not infos:
            self.finish("failed", billing, kind="no_image", message="The provider reported success but sent no image.")
            return
        if not self.finish("succeeded", billing, images=infos, provider_seconds=provider_seconds):
            raise LostClaim
        locality.record(self.ctx.store.engine, self.job.id, self.request, [o.data for o in outputs])  # masked edits

    def _download(self, status: JobStatus) -> list[OutputImage] | ProviderError:
        ctx = self.ctx
        attempts = ctx.settings.download_attempts
        for attempt in range(1, attempts + 1):
            try:
                return list(self.provider.result(status))
            except (ProviderUnavailable, RateLimited) as err:
                if attempt >= attempts:
                    return err
                ctx.claims.note_error(self.job.id, ctx.owner, f"download failed ({err.kind}): {err}; retrying")
                self.sleep(ctx.settings.retry_backoff * attempt)
            except ProviderError as err:
                return err
        raise AssertionError("unreachable: the last attempt returns")

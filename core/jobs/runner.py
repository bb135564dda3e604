"""The job runner: provider calls in background threads, every step committed first.

One ``JobRunner`` per app process (the app holds it with ``st.cache_resource``).
``submit`` validates, prices and stores a run with its jobs and reservations in
one transaction, then returns at once; pages show live state by reading the
store. A scheduler thread claims unfinished jobs from the database (a lease in
``jobs.claimed_by``, renewed by a heartbeat) and runs each in a worker thread,
at most ``max_in_flight`` per provider (``IMAGE_STUDIO_MAX_IN_FLIGHT``; by default
4, or a whole batch for a provider making one image per call: see ``default_in_flight``).
Several app processes may share one PostgreSQL: the claim, not any one
process's memory, decides who drives a job.

The durability rules, in the order a job meets them:

1. The job row (the request, no secret) and its reservation are committed
   before any provider is called.
2. ``submitting`` is committed just before the job-creating request. A job
   found in that state with no provider job id after a crash may have been
   accepted and charged: it becomes ``unknown`` and is never resent by itself,
   unless the provider honours idempotency keys (then it is resent with the
   same key, derived from the job id).
3. The provider's job id is committed the moment it is known; at start-up any
   unfinished job with one is polled again until done.
4. Results are downloaded as soon as the job completes, written to disk
   atomically, and only then is the job marked ``succeeded``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import clock
from core import config
from core.history.store import Billing, Money, NewJob, Store
from core.jobs import claims
from core.spend import budget
from providers.base import Provider
from providers.errors import (
    AuthError,
    InvalidRequest,
    JobCanceled,
    JobFailed,
    ModelUnavailable,
    ModerationBlocked,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
)
from providers.types import ImageRequest, JobStatus, ModelCaps, OutputImage

__all__ = [
    "NOT_CHARGED_ON_FAILURE",
    "JobRunner",
    "Pricing",
    "ProviderFactory",
    "Quote",
    "DEFAULT_MAX_IN_FLIGHT",
    "DoneWindow",
    "Submitted",
    "billing_for_failure",
    "create_runner",
    "default_in_flight",
    "default_provider_factory",
    "follow",
    "render_template",
]

log = logging.getLogger(__name__)

# Providers that do not charge for a job they report as failed (their docs say so).
NOT_CHARGED_ON_FAILURE = frozenset({"evolink", "apiframe"})
DEFAULT_EXPECTED_SECONDS = 60.0


class ProviderFactory(Protocol):
    def __call__(self, name: str, endpoint: str, api_key: str | None = None) -> Provider: ...


class Pricing(Protocol):
    """What the runner needs of ``providers.catalogue.Catalogue``."""

    def estimate(self, provider: str, request: ImageRequest, caps: ModelCaps | None = None) -> Any: ...

    def billed(self, provider: str, request: ImageRequest, status: JobStatus) -> Any: ...


@dataclass(frozen=True)
class Submitted:
    run_id: str
    job_ids: tuple[str, ...]
    estimate_usd: Decimal | None  # all jobs together; None where some could not be priced in USD


@dataclass(frozen=True)
class Quote:
    """What a submission would cost and whether it fits, before the button is pressed."""

    jobs: int
    images: int
    estimates: tuple[Money, ...]
    total_usd: Decimal | None
    spend: budget.Spend

    @property
    def fits(self) -> bool:
        if self.total_usd is None:
            return self.spend.caps.daily is None and self.spend.caps.total is None
        return all(
            left is None or self.total_usd <= left for left in (self.spend.left_today, self.spend.left_total)
        )


# --- pure pieces (tested without threads) --------------------------------------------------
def render_template(template: str, values: Mapping[str, Any]) -> str:
    """Replace ``{name}`` for each given name; other braces are left alone."""
    out = template
    for name, value in values.items():
        out = out.replace("{" + str(name) + "}", str(value))
    return out


def follow(
    provider: Provider,
    job_id: str,
    *,
    expected_seconds: float | None,
    deadline_seconds: float,
    started_at: float | None = None,
    initial_state: str = "queued",
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_status: Callable[[JobStatus], None] | None = None,
    on_transient: Callable[[ProviderError], None] | None = None,
    on_answer: Callable[[JobStatus, float], None] | None = None,
) -> JobStatus:
    """Poll one provider job until it is done; returns the final status.

    A status request that fails for a passing reason (rate limit, 5xx, network)
    is not the job failing: the last known state stands and polling goes on
    until the deadline. Raises ``ProviderTimeout`` past the deadline, and any
    other provider error (an unknown job, a revoked key) as is. ``on_answer``
    gets each status the provider actually sent, with the ``clock`` reading.
    """
    from providers import polling

    last = JobStatus(job_id=job_id, state=initial_state)  # type: ignore[arg-type]

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


def billing_for_failure(
    provider: str, err: BaseException | None, reported: Any = None, raw: Mapping[str, Any] | None = None
) -> Billing:
    """How a failed job's reservation settles.

    A failure the provider says it does not charge for gives the reservation
    back: a moderation block at the input stage or marked unbilled, and any
    failed job at EvoLink or Apiframe (their reports on a failed job, such as
    EvoLink's ``credits_reserved``, are holds that are refunded). Otherwise the
    provider's own report wins, and with none the estimate stands as billed,
    flagged: it may have been charged.
    """
    if isinstance(err, ModerationBlocked) and (err.billed is False or (err.billed is None and err.stage == "input")):
        return Billing("released", raw=raw)
    unbilled_failure = err is None or isinstance(err, JobFailed | ModerationBlocked)
    if provider in NOT_CHARGED_ON_FAILURE and unbilled_failure and not getattr(err, "billed", None):
        return Billing("released", raw=raw)
    if reported is not None:
        return Billing("billed", usd=reported.usd, amount=reported.amount, unit=reported.unit, raw=raw)
    return Billing("estimated", raw=raw)


def refused(err: ProviderError) -> bool:
    """The provider answered the create with a definite no, so no job exists.

    A 4xx answer (other than 408 timeout / 409 conflict, which may follow work
    already done) or a typed refusal. A 5xx, a timeout or a dropped connection
    leaves the outcome unknown instead.
    """
    if isinstance(err, AuthError | InvalidRequest | ModelUnavailable | ModerationBlocked | QuotaExceeded | RateLimited):
        return True
    return err.status_code is not None and 400 <= err.status_code < 500 and err.status_code not in (408, 409)


def _unsent_billing(err: ProviderError) -> Billing:
    """A create refused by the provider: nothing to pay unless it says so.

    A moderation block on the generated image (output stage) came after the work
    was done and may be billed: the estimate stands, flagged.
    """
    if isinstance(err, ModerationBlocked) and (
        err.billed is True or (err.billed is None and err.stage == "output")
    ):
        return Billing("estimated")
    return Billing("released")


def _active_state(state: str) -> str:
    return "running" if state == "running" else "submitted" if state == "queued" else "running"


# --- control-flow signals inside a worker ---------------------------------------------------
class _Stopping(Exception):
    """The runner is stopping: leave the job as it is for the next start."""


class _LostClaim(Exception):
    """Another runner owns the job now."""


class _CancelNow(Exception):
    """Someone pressed Cancel on a job at the provider."""


DEFAULT_MAX_IN_FLIGHT = 4


def default_in_flight(caps: Iterable[ModelCaps], default: int = DEFAULT_MAX_IN_FLIGHT) -> int:
    """How many jobs of one provider may run at once when nothing is configured.

    A provider that makes one image per call turns a batch of n images into n
    jobs; holding some back would make the batch take several job lengths, so
    such a provider may run its largest batch (``max_n``) at once.
    """
    return max([default, *(c.max_n for c in caps if c.max_images_per_call <= 1)])


def _max_in_flight_from_env() -> int | None:
    raw = os.environ.get("IMAGE_STUDIO_MAX_IN_FLIGHT", "").strip()
    try:
        return max(1, int(raw)) if raw else None
    except ValueError:
        return None


def default_provider_factory(name: str, endpoint: str, api_key: str | None = None) -> Provider:
    """Live providers with the key from the session, secrets or environment; or the emulator."""
    from providers import registry

    if endpoint == "emulator":
        from core import emulator_service

        emu = emulator_service.get_emulator()
        return registry.create(name, api_key=api_key or "emulator", base_url=emu.url(name), uploader=emu.upload)
    if api_key is None:
        cls = registry.provider_class(name)
        api_key = config.get_secret(cls.key_env)[0]
    return registry.create(name, api_key=api_key)


class JobRunner:
    """Runs jobs in background threads; see the module docstring for the rules it keeps."""

    def __init__(
        self,
        store: Store,
        provider_factory: ProviderFactory | None = None,
        *,
        pricing: Pricing | None = None,
        max_in_flight: int | Mapping[str, int] | None = None,
        lease_seconds: float = 30.0,
        heartbeat_seconds: float | None = None,
        scan_seconds: float = 1.0,
        min_deadline_seconds: float = 900.0,
        create_attempts: int = 3,
        download_attempts: int = 3,
        retry_backoff: float = 2.0,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.provider_factory = provider_factory or default_provider_factory
        self._pricing = pricing
        # None: each provider's default_in_flight.
        self.max_in_flight = max_in_flight if max_in_flight is not None else _max_in_flight_from_env()
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds if heartbeat_seconds is not None else lease_seconds / 3
        self.scan_seconds = scan_seconds
        self.min_deadline_seconds = min_deadline_seconds
        self.create_attempts = max(1, create_attempts)
        self.download_attempts = max(1, download_attempts)
        self.retry_backoff = retry_backoff
        self.owner = owner or claims.make_owner_id()

        self._lock = threading.Lock()
        self._active: dict[str, str] = {}  # job id -> provider, for jobs a worker of ours is driving
        self._events: dict[str, threading.Event] = {}  # wakes a worker's sleep (cancel, stop)
        self._workers: dict[str, threading.Thread] = {}
        self._keys: dict[str, str] = {}  # job id -> key typed in a session: memory only, never stored
        self._pinned: set[str] = set()  # jobs claimed at submission because only we hold their key
        self._not_before: dict[str, float] = {}  # job id -> monotonic time it may be retried after trouble
        self._providers: dict[tuple[str, str, str | None], Provider] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------
    def start(self) -> JobRunner:
        """Start the scheduler (idempotent). Unfinished jobs in the store are picked up at once."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="studio-runner", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop scheduling and interrupt waiting workers; their jobs resume at the next start."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            for ev in self._events.values():
                ev.set()
            workers = list(self._workers.values())
            thread = self._thread
        deadline = time.monotonic() + timeout
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
        for w in workers:
            w.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            pinned = list(self._pinned)
        for job_id in pinned:
            with contextlib.suppress(Exception):
                self.store.release_claim(job_id, self.owner)
        for p in list(self._providers.values()):
            with contextlib.suppress(Exception):
                p.close()
        self._providers.clear()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def wake(self) -> None:
        self._wake.set()

    def in_flight(self) -> dict[str, int]:
        with self._lock:
            counts: dict[str, int] = {}
            for provider in self._active.values():
                counts[provider] = counts.get(provider, 0) + 1
            return counts

    def in_flight_limit(self, provider: str) -> int:
        """How many of ``provider``'s jobs this runner drives at once."""
        with self._lock:
            return self._limit(provider)

    def _limit(self, provider: str) -> int:
        configured = self.max_in_flight
        if isinstance(configured, Mapping):
            configured = configured.get(provider, configured.get("*"))
        if configured is not None:
            return max(1, int(configured))
        return self._default_limit(provider)

    def _default_limit(self, provider: str) -> int:
        # Called under self._lock: read the provider cache without taking it again.
        from providers import registry

        try:
            models = registry.provider_class(provider).MODELS.values()
        except ProviderError:
            made = next((p for (name, _, _), p in tuple(self._providers.items()) if name == provider), None)
            models = type(made).MODELS.values() if made is not None else ()
        return default_in_flight(models)

    @property
    def pricing(self) -> Pricing:
        if self._pricing is None:
            from providers.catalogue import load_catalogue

            self._pricing = load_catalogue()
        return self._pricing

    # --- what pages call ------------------------------------------------------------------
    def quote(
        self, provider: str, request: ImageRequest, *, endpoint: str = "live", prompts: Sequence[str] | None = None
    ) -> Quote:
        """The estimate per job and in total, with the budget as it stands (no validation)."""
        caps = self._caps(provider, endpoint, request.model)
        planned = self._plan(request, caps, prompts)
        estimates = tuple(self._estimate(provider, req, caps) for req, _ in planned)
        total = None if any(e.usd is None for e in estimates) else sum((e.usd for e in estimates), Decimal(0))
        return Quote(
            jobs=len(planned),
            images=sum(r.n for r, _ in planned),
            estimates=estimates,
            total_usd=total,
            spend=self.store.spend(endpoint),
        )

    def submit(
        self,
        provider: str,
        request: ImageRequest,
        *,
        endpoint: str = "live",
        api_key: str | None = None,
        prompts: Sequence[str] | None = None,
        variables: Sequence[Mapping[str, Any]] | None = None,
        template: str | None = None,
        label: str | None = None,
        experiment_id: str | None = None,
        parent_job_id: str | None = None,
        validate: bool = True,
    ) -> Submitted:
        """Store a run and its jobs (reserving their estimates) and return at once.

        ``prompts`` are the prompts rendered from ``template`` (one job or more
        each; ``variables[i]`` made ``prompts[i]``); without them the request's
        own prompt is used. ``n`` images become ``ceil(n / max_images_per_call)``
        jobs per prompt. ``api_key`` (typed in a session) stays in this process's
        memory and the jobs stay with this runner.

        Raises ``InvalidRequest``/``ModelUnavailable`` for a request the model
        does not accept and ``budget.BudgetExceeded`` when it does not fit.
        """
        if endpoint not in ("live", "emulator"):
            raise ValueError("endpoint is 'live' or 'emulator'")
        if prompts is not None and variables is not None and len(prompts) != len(variables):
            raise ValueError("one variables mapping per prompt")
        prov = self._provider(provider, endpoint, api_key)
        caps = prov.caps(request.model)
        planned = self._plan(request, caps, prompts)
        if validate:
            from providers import validation

            can_upload = endpoint == "emulator" or prov.uploader is not None
            for req in dict.fromkeys(r.with_(n=request.n) for r, _ in planned):
                validation.validate(req, caps, can_upload=can_upload)
        expected = self._learned(provider, request.model, request.quality, endpoint, caps)
        jobs = [
            NewJob(
                prompt=req.prompt,
                n=req.n,
                quality=request.quality,
                size=request.size,
                estimate=self._estimate(provider, req, caps),
                variables=None if variables is None else variables[index],
                expected_seconds=expected,
            )
            for req, index in planned
        ]
        if api_key:
            # Known before the jobs exist in the store, so no worker can ever pick one up keyless.
            with self._lock:
                for job in jobs:
                    self._keys[job.id] = api_key
                    self._pinned.add(job.id)
        try:
            run_id, job_ids = self.store.create_run(
                provider=provider,
                endpoint=endpoint,
                request=request,
                jobs=jobs,
                template=template,
                variables=variables,
                can_cancel=caps.can_cancel,
                label=label,
                experiment_id=experiment_id,
                parent_job_id=parent_job_id,
                claim=(self.owner, self.lease_seconds) if api_key else None,
            )
        except BaseException:
            with self._lock:
                for job in jobs:
                    self._keys.pop(job.id, None)
                    self._pinned.discard(job.id)
            raise
        self.wake()
        usd = [j.estimate.usd if j.estimate else None for j in jobs]
        total = None if any(u is None for u in usd) else sum(usd, Decimal(0))  # type: ignore[arg-type]
        return Submitted(run_id=run_id, job_ids=tuple(job_ids), estimate_usd=total)

    def cancel(self, job_id: str) -> str:
        """Cancel a job; returns what happened (see ``Store.request_cancel``).

        ``requested``: the runner holding the job asks the provider to cancel it
        and marks it canceled within moments.
        """
        outcome = self.store.request_cancel(job_id)
        with self._lock:
            ev = self._events.get(job_id)
            if outcome == "canceled":
                self._keys.pop(job_id, None)
                self._pinned.discard(job_id)
        if ev is not None:
            ev.set()
        self.wake()
        return outcome

    def recheck(self, job_id: str) -> bool:
        """Poll again a failed or unknown job that has a provider job id (never resends)."""
        reopened = self.store.reopen(job_id)
        if reopened:
            self.wake()
        return reopened

    # --- planning -------------------------------------------------------------------------
    @staticmethod
    def _plan(
        request: ImageRequest, caps: ModelCaps, prompts: Sequence[str] | None
    ) -> list[tuple[ImageRequest, int]]:
        """(request for one call, index of its prompt) for every job of a submission."""
        per_call = max(1, caps.max_images_per_call)
        out = []
        for index, prompt in enumerate(list(prompts) if prompts else [request.prompt]):
            left = request.n
            while left > 0:
                k = min(per_call, left)
                out.append((request.with_(prompt=prompt, n=k), index))
                left -= k
        return out

    def _estimate(self, provider: str, request: ImageRequest, caps: ModelCaps) -> Money:
        try:
            total = self.pricing.estimate(provider, request, caps).total
        except (ProviderError, ValueError, KeyError) as err:
            log.warning("no estimate for %s %s: %s", provider, request.model, err)
            return Money(usd=None)
        return Money(usd=total.usd, amount=total.amount, unit=total.unit)

    def _learned(
        self, provider: str, model: str, quality: str, endpoint: str, caps: ModelCaps | None
    ) -> float | None:
        learned = self.store.learned_seconds(provider, model, quality, endpoint)
        if learned is not None:
            return learned
        return caps.expected_seconds if caps is not None else None

    def _caps(self, provider: str, endpoint: str, model: str) -> ModelCaps:
        return self._provider(provider, endpoint, None).caps(model)

    def _provider(self, name: str, endpoint: str, api_key: str | None) -> Provider:
        key = (name, endpoint, api_key)
        with self._lock:
            cached = self._providers.get(key)
        if cached is not None:
            return cached
        made = self.provider_factory(name, endpoint, api_key) if api_key else self.provider_factory(name, endpoint)
        with self._lock:
            return self._providers.setdefault(key, made)

    # --- scheduling -----------------------------------------------------------------------
    def _loop(self) -> None:
        next_beat = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_beat:
                    self._heartbeat()
                    next_beat = time.monotonic() + self.heartbeat_seconds
                self._dispatch()
            except Exception:  # the database may be briefly unreachable: try again next round
                log.exception("job runner: scheduling round failed")
            self._wake.wait(self.scan_seconds)
            self._wake.clear()

    def _heartbeat(self) -> None:
        with self._lock:
            ids = set(self._active) | self._pinned
        if ids:
            self.store.renew_claims(self.owner, self.lease_seconds, job_ids=ids)

    def _dispatch(self) -> None:
        with self._lock:
            counts: dict[str, int] = {}
            for provider in self._active.values():
                counts[provider] = counts.get(provider, 0) + 1
            busy = [p for p, c in counts.items() if c >= self._limit(p)]
            skip = set(self._active)
            now = time.monotonic()
            skip |= {j for j, t in self._not_before.items() if t > now}
        candidates = self.store.claimable(self.owner, exclude_providers=busy, exclude_ids=skip, limit=50)
        for job_id, provider in candidates:
            if self._stop.is_set():
                return
            with self._lock:
                if job_id in self._active or counts.get(provider, 0) >= self._limit(provider):
                    continue
            row = self.store.claim(job_id, self.owner, self.lease_seconds)
            if row is None:
                continue
            with self._lock:
                counts[provider] = counts.get(provider, 0) + 1
                self._active[job_id] = provider
                self._events[job_id] = threading.Event()
                thread = threading.Thread(
                    target=self._work, args=(row,), name=f"studio-job-{job_id[:8]}", daemon=True
                )
                self._workers[job_id] = thread
            thread.start()

    # --- one job --------------------------------------------------------------------------
    def _work(self, row: dict[str, Any]) -> None:
        job_id = row["id"]
        finished = False
        try:
            self._drive(row)
            finished = True
        except _Stopping:
            with contextlib.suppress(Exception):
                self.store.release_claim(job_id, self.owner)
        except _LostClaim:
            log.warning("job %s: claim lost to another runner", job_id)
            finished = True
        except Exception as exc:  # a bug or the database away: never resend, never drop
            log.exception("job %s: unexpected error", job_id)
            finished = self._after_unexpected(job_id, exc)
        finally:
            with self._lock:
                self._active.pop(job_id, None)
                self._events.pop(job_id, None)
                self._workers.pop(job_id, None)
                if finished:
                    self._not_before.pop(job_id, None)
                    self._keys.pop(job_id, None)
                    self._pinned.discard(job_id)
            self._wake.set()

    def _after_unexpected(self, job_id: str, exc: Exception) -> bool:
        """Settle what can be settled; otherwise let the job be retried after a pause."""
        try:
            row = self.store.job_row(job_id)
            if row is None:
                return True
            detail = f"{type(exc).__name__}: {exc}"
            if row["status"] == "queued":
                return (
                    self.store.finish(
                        job_id,
                        self.owner,
                        status="failed",
                        billing=Billing("released"),
                        error_kind="internal",
                        error_message="The job could not be prepared.",
                        error_detail=detail,
                    )
                    or True
                )
            if row["status"] == "submitting":
                self._mark_unknown(row, detail=detail)
                return True
            self.store.release_claim(job_id, self.owner)
        except Exception:  # the database itself is away: the lease runs out, another round retries
            log.exception("job %s: could not record the error", job_id)
        with self._lock:
            self._not_before[job_id] = time.monotonic() + 30.0
        return False

    def _sleeper(self, job_id: str) -> Callable[[float], None]:
        with self._lock:
            ev = self._events.setdefault(job_id, threading.Event())

        def sleep(seconds: float) -> None:
            if self._stop.is_set():
                raise _Stopping
            if ev.wait(max(0.0, seconds)):
                ev.clear()
            if self._stop.is_set():
                raise _Stopping

        return sleep

    def _provider_for(self, row: Mapping[str, Any]) -> Provider:
        with self._lock:
            api_key = self._keys.get(row["id"])
        return self._provider(row["provider"], row["endpoint"], api_key)

    def _drive(self, row: dict[str, Any]) -> None:
        job_id, status = row["id"], row["status"]
        if status == "queued" and row["cancel_requested"]:
            self.store.finish(
                job_id,
                self.owner,
                status="canceled",
                billing=Billing("released"),
                error_kind="canceled",
                error_message="Canceled before it was sent.",
            )
            return
        try:
            provider = self._provider_for(row)
            caps = provider.caps(row["model"])
        except ProviderError as err:
            if status == "queued":
                self._fail_unsent(row, err)
                return
            raise
        if status == "queued" or (status == "submitting" and provider.idempotent_create):
            self._send(row, provider, caps)
        elif status == "submitting" or not row["provider_job_id"]:
            self._mark_unknown(row, provider)
        else:
            self._follow(row, provider, caps, self.store.load_request(job_id))

    def _fail_unsent(self, row: Mapping[str, Any], err: ProviderError) -> None:
        self.store.finish(
            row["id"],
            self.owner,
            status="failed",
            billing=_unsent_billing(err),
            error_kind=err.kind,
            error_message=str(err),
            error_detail=err.detail,
        )

    def _mark_unknown(
        self, row: Mapping[str, Any], provider: Provider | None = None, *, detail: str | None = None
    ) -> None:
        label = provider.label if provider is not None else row["provider"]
        self.store.finish(
            row["id"],
            self.owner,
            status="unknown",
            billing=Billing("estimated"),
            error_kind="unknown",
            error_message=(
                f"The app lost contact with {label} while sending this job, so it may have been "
                "accepted and charged. It was not sent again automatically: check the provider's "
                "dashboard before trying again."
            ),
            error_detail=detail,
        )

    def _send(self, row: dict[str, Any], provider: Provider, caps: ModelCaps) -> None:
        job_id = row["id"]
        request = self.store.load_request(job_id)
        if row["endpoint"] == "live" and not provider.has_key:
            self._fail_unsent(
                row,
                AuthError(
                    f"No {provider.label} API key is set ({provider.key_env}). A key typed in Settings is kept "
                    "only while the app runs: enter it again and resubmit.",
                    provider=provider.name,
                ),
            )
            return
        expected = row["expected_seconds"] or self._learned(
            row["provider"], row["model"], row["quality"], row["endpoint"], caps
        )
        attempt = 0
        while True:
            attempt += 1
            if not self.store.mark_submitting(job_id, self.owner, expected_seconds=expected):
                return  # canceled meanwhile, or another runner has it: send nothing
            sent = time.monotonic()
            try:
                status = provider.submit(request, idempotency_key=row["idempotency_key"])
                break
            except ProviderError as err:
                retry = (
                    err.sent
                    and provider.idempotent_create
                    and isinstance(err, (ProviderUnavailable, RateLimited))
                    and attempt < self.create_attempts
                )
                if retry:
                    self.store.note_error(job_id, self.owner, f"{err.kind}: {err} (resending with the same key)")
                    self._sleeper(job_id)(self.retry_backoff * attempt)
                    continue
                if err.sent and not refused(err):
                    self._mark_unknown(row, provider, detail=f"{err.kind}: {err}\n{err.detail or ''}".strip())
                else:
                    self._fail_unsent(row, err)
                return
        self._accepted(row, provider, caps, request, status, expected, sent=sent, answered=time.monotonic())

    def _accepted(
        self,
        row: dict[str, Any],
        provider: Provider,
        caps: ModelCaps,
        request: ImageRequest,
        status: JobStatus,
        expected: float | None,
        *,
        sent: float,
        answered: float,
    ) -> None:
        job_id = row["id"]
        if status.job_id:
            ok = self.store.mark_submitted(
                job_id,
                self.owner,
                status.job_id,
                state=_active_state(status.state),
                progress=status.progress,
                expected_seconds=status.estimated_seconds or expected,
            )
            if not ok:
                raise _LostClaim
        if status.done:
            self._complete(row, provider, request, status, provider_seconds=answered - sent)
            return
        if not status.job_id:
            self._mark_unknown(row, provider, detail="accepted without a job id")
            return
        current = self.store.job_row(job_id) or row
        self._follow(current, provider, caps, request, not_done_at=answered)

    def _follow(
        self,
        row: Mapping[str, Any],
        provider: Provider,
        caps: ModelCaps,
        request: ImageRequest,
        *,
        not_done_at: float | None = None,
    ) -> None:
        job_id, provider_job_id = row["id"], row["provider_job_id"]
        expected = (
            row["expected_seconds"]
            or self._learned(row["provider"], row["model"], row["quality"], row["endpoint"], caps)
            or DEFAULT_EXPECTED_SECONDS
        )
        deadline = max(self.min_deadline_seconds, 10 * expected)
        since = row["submitted_at"] or row["queued_at"]
        started_at = time.monotonic() - max(0.0, (clock.now() - since).total_seconds())
        written = {"state": row["status"], "progress": row["progress"]}
        window = DoneWindow(not_done_at)

        def on_status(status: JobStatus) -> None:
            if not status.done:
                state = _active_state(status.state)
                if state != written["state"] or status.progress != written["progress"]:
                    if not self.store.update_progress(
                        job_id,
                        self.owner,
                        state=state,
                        progress=status.progress,
                        expected_seconds=status.estimated_seconds,
                    ):
                        raise _LostClaim
                    written.update(state=state, progress=status.progress)
            if self._stop.is_set():
                raise _Stopping
            if not status.done and self.store.cancel_requested(job_id):
                raise _CancelNow

        def on_transient(err: ProviderError) -> None:
            self.store.note_error(job_id, self.owner, f"status check failed ({err.kind}): {err}")

        while True:
            try:
                final = follow(
                    provider,
                    provider_job_id,
                    expected_seconds=expected,
                    deadline_seconds=deadline,
                    started_at=started_at,
                    initial_state="running" if row["status"] == "running" else "queued",
                    sleep=self._sleeper(job_id),
                    on_status=on_status,
                    on_transient=on_transient,
                    on_answer=window.note,
                )
            except _CancelNow:
                if self._cancel_at_provider(row, provider, caps):
                    return
                continue
            except ProviderTimeout as err:
                self.store.finish(
                    job_id,
                    self.owner,
                    status="failed",
                    billing=Billing("estimated"),
                    error_kind=err.kind,
                    error_message=str(err),
                    error_detail=err.detail,
                )
                return
            except (JobFailed, ModerationBlocked) as err:
                self._finish_failed(row, request, err, None)
                return
            except JobCanceled as err:
                self.store.finish(
                    job_id,
                    self.owner,
                    status="canceled",
                    billing=Billing("estimated"),
                    error_kind=err.kind,
                    error_message=str(err),
                    error_detail=err.detail,
                )
                return
            except ProviderError as err:
                # The provider no longer answers about this job (key revoked, job unknown): keep its id
                # so "check again" can resume; it may still be billed.
                self.store.finish(
                    job_id,
                    self.owner,
                    status="unknown",
                    billing=Billing("estimated"),
                    error_kind=err.kind,
                    error_message=f"Could not follow the job: {err}",
                    error_detail=err.detail,
                )
                return
            break
        self._complete(row, provider, request, final, provider_seconds=window.seconds(started_at))

    def _cancel_at_provider(self, row: Mapping[str, Any], provider: Provider, caps: ModelCaps) -> bool:
        job_id = row["id"]
        if caps.can_cancel:
            try:
                provider.cancel(row["provider_job_id"])
            except ProviderError as err:
                self.store.clear_cancel(job_id, self.owner, f"Cancel failed ({err.kind}): {err}. The job goes on.")
                return False
        else:
            self.store.clear_cancel(job_id, self.owner, f"{provider.label} cannot cancel a job: it goes on.")
            return False
        # Whether a canceled job is charged is not reported: the estimate stands, flagged.
        self.store.finish(
            job_id,
            self.owner,
            status="canceled",
            billing=Billing("estimated"),
            error_kind="canceled",
            error_message="Canceled.",
        )
        return True

    def _finish_failed(
        self, row: Mapping[str, Any], request: ImageRequest, err: BaseException | None, status: JobStatus | None
    ) -> None:
        reported = None
        if status is not None:
            reported = self._billed(row["provider"], request, status)
        billing = billing_for_failure(row["provider"], err, reported, status.billed if status else None)
        kind = err.kind if isinstance(err, ProviderError) else "job_failed"
        message = str(err) if err is not None else "The provider reported that the job failed."
        detail = err.detail if isinstance(err, ProviderError) else None
        self.store.finish(
            row["id"],
            self.owner,
            status="failed",
            billing=billing,
            error_kind=kind,
            error_message=message,
            error_detail=detail,
        )

    def _billed(self, provider: str, request: ImageRequest, status: JobStatus) -> Any:
        try:
            return self.pricing.billed(provider, request, status)
        except (ProviderError, ValueError, KeyError, TypeError) as err:
            log.warning("could not price the billed cost of a %s job: %s", provider, err)
            return None

    def _complete(
        self,
        row: Mapping[str, Any],
        provider: Provider,
        request: ImageRequest,
        status: JobStatus,
        *,
        provider_seconds: float | None = None,
    ) -> None:
        job_id = row["id"]
        if status.state == "failed":
            self._finish_failed(row, request, status.error, status)
            return
        if status.state == "canceled":
            self.store.finish(
                job_id,
                self.owner,
                status="canceled",
                billing=Billing("estimated", raw=status.billed),
                error_kind="canceled",
                error_message="The provider canceled the job.",
            )
            return
        outputs = self._download(job_id, provider, status)
        if isinstance(outputs, ProviderError):
            self.store.finish(
                job_id,
                self.owner,
                status="failed",
                billing=Billing("estimated", raw=status.billed),
                error_kind=outputs.kind,
                error_message=f"The image was made but could not be downloaded: {outputs}. Use “check again”.",
                error_detail=outputs.detail,
            )
            return
        infos = [(self.store.files.put(o.data, o.format), o.source_url) for o in outputs]
        reported = self._billed(row["provider"], request, status)
        if reported is not None:
            billing = Billing(
                "billed", usd=reported.usd, amount=reported.amount, unit=reported.unit, raw=status.billed
            )
        else:
            billing = Billing("estimated", raw=status.billed)
        if not infos:
            self.store.finish(
                job_id,
                self.owner,
                status="failed",
                billing=billing,
                error_kind="no_image",
                error_message="The provider reported success but sent no image.",
            )
            return
        if not self.store.finish(
            job_id, self.owner, status="succeeded", billing=billing, images=infos, provider_seconds=provider_seconds
        ):
            raise _LostClaim

    def _download(self, job_id: str, provider: Provider, status: JobStatus) -> list[OutputImage] | ProviderError:
        for attempt in range(1, self.download_attempts + 1):
            try:
                return list(provider.result(status))
            except (ProviderUnavailable, RateLimited) as err:
                if attempt >= self.download_attempts:
                    return err
                self.store.note_error(job_id, self.owner, f"download failed ({err.kind}): {err}; retrying")
                self._sleeper(job_id)(self.retry_backoff * attempt)
            except ProviderError as err:
                return err
        raise AssertionError("unreachable")


def create_runner(*, start: bool = True, **kwargs: Any) -> JobRunner:
    """The app's runner: the store from the environment, live providers or the emulator."""
    runner = JobRunner(Store(), **kwargs)
    return runner.start() if start else runner

"""The job runner: a scheduler that hands each unfinished job to a worker thread, and the calls pages make.

``submit`` validates, prices and stores a run with its jobs and reservations in
one transaction, then returns at once; pages show live state by reading the
store. A scheduler thread claims unfinished jobs from the database (a lease in
``jobs.claimed_by``, renewed by a heartbeat) and runs each in a worker thread
(``core.jobs.driver``), at most ``max_in_flight`` per provider
(``IMAGE_STUDIO_MAX_IN_FLIGHT``; by default 4, or a whole batch for a provider
making one image per call: see ``default_in_flight``); jobs on the built-in
emulator, which has no rate limit to respect, by default up to
``EMULATOR_IN_FLIGHT`` at once, so a room of people on a no-key demo is not
queued behind one another (issue 17). Several app processes may
share one PostgreSQL: the claim, not any one process's memory, decides who
drives a job. The job row (the request, no secret) and its reservation are
committed before any provider is called, so a crash or restart loses no job.
``core.services`` holds the one runner of an app process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from core.accounts.identity import LOCAL_OPERATOR, Identity
from core.history.store import Store
from core.history.views import KEY_NEEDED, Billing
from core.jobs import driver, submission
from core.jobs.claims import CancelOutcome, JobClaims, JobRow, make_owner_id
from core.jobs.driver import Context, DriveSettings, LostClaim, Stopping
from core.jobs.settlement import Pricing
from core.jobs.submission import Quote, Submitted
from providers import redact, registry
from providers.base import Provider
from providers.errors import ProviderError
from providers.types import ImageRequest, ModelCaps

__all__ = [
    "CONFIG_KEY",
    "DEFAULT_MAX_IN_FLIGHT",
    "EMULATOR_IN_FLIGHT",
    "SESSION_KEY",
    "JobRunner",
    "KeyNeeded",
    "KeyOpener",
    "ProviderFactory",
    "default_in_flight",
]

log = logging.getLogger(__name__)
# Every process that runs jobs logs through the one redaction rule: no key reaches a log line.
redact.install_log_redaction()

DEFAULT_MAX_IN_FLIGHT = 4
# Emulated jobs are timers on loopback: twenty people with a batch of ten each, and some room to spare.
EMULATOR_IN_FLIGHT = 256
_CLAIM_BATCH = 50  # candidates read per scheduling round
_RETRY_AFTER_TROUBLE = 30.0  # seconds before a job that hit an unexpected error is tried again


_KEY_WAIT = 15.0  # seconds between looks for the key a waiting job needs (its holder may store it again)

# Whose key a job uses (``jobs.key_holder``), besides a stored key's holder (a user id or "team"):
CONFIG_KEY = "config"  # the operator's secrets.toml / environment key: only without sign-in
SESSION_KEY = "session"  # typed in one session and kept in this runner's memory only


class ProviderFactory(Protocol):
    def __call__(self, name: str, endpoint: str, api_key: str | None = None) -> Provider: ...


class KeyOpener(Protocol):
    """A stored key by its holder and provider (``core.accounts.keys.open_key``); None when it is gone."""

    def __call__(self, holder: str, provider: str) -> str | None: ...


class KeyNeeded(Exception):
    """The key a job was sent with is not available: the job waits, never sent with another key."""


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


class JobRunner:
    """Runs jobs in background threads; see the module docstring for the rules it keeps."""

    def __init__(
        self,
        store: Store,
        provider_factory: ProviderFactory,
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
        key_opener: KeyOpener | None = None,
    ) -> None:
        self.store = store
        self._open_key = key_opener
        self.claims = JobClaims(store.engine)
        self.provider_factory = provider_factory
        self._pricing = pricing
        # None: each provider's default_in_flight.
        self.max_in_flight = max_in_flight if max_in_flight is not None else _max_in_flight_from_env()
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds if heartbeat_seconds is not None else lease_seconds / 3
        self.scan_seconds = scan_seconds
        self.settings = DriveSettings(
            min_deadline_seconds=min_deadline_seconds,
            create_attempts=max(1, create_attempts),
            download_attempts=max(1, download_attempts),
            retry_backoff=retry_backoff,
        )
        self.owner = owner or make_owner_id()

        self._lock = threading.Lock()
        self._active: dict[str, str] = {}  # job id -> provider, for jobs a worker of ours is driving
        self._emulated: set[str] = set()  # of those, emulator jobs outside the per-provider limit (see _room)
        self._events: dict[str, threading.Event] = {}  # wakes a worker's sleep (cancel, stop)
        self._workers: dict[str, threading.Thread] = {}
        self._keys: dict[str, str] = {}  # job id -> key typed in a session: memory only, never stored
        self._pinned: set[str] = set()  # jobs claimed at submission because only we hold their key
        self._not_before: dict[str, float] = {}  # job id -> monotonic time it may be retried after trouble
        self._providers: dict[tuple[str, str, str | None], Provider] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[str], None]] = []  # told a job's id when a worker of ours leaves it

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(job_id)`` each time a worker of this runner has finished with a job (stored its
        outcome, or let it go); on the worker's thread, so it must be quick. A page uses it to redraw a job
        the moment it is stored, rather than looking every fraction of a second (issue 17)."""
        with self._lock:
            if listener not in self._listeners:
                self._listeners.append(listener)

    def _announce(self, job_id: str) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(job_id)
            except Exception:  # a listener's trouble is never the job's
                log.exception("job %s: a listener failed", job_id)

    # --- start and stop --------------------------------------------------------------------
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
                self.claims.release_claim(job_id, self.owner)
        for p in list(self._providers.values()):
            with contextlib.suppress(Exception):
                p.close()
        self._providers.clear()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def wake(self) -> None:
        self._wake.set()

    def nudge(self, job_id: str) -> bool:
        """Wake the worker of ``job_id`` now (a provider called back): it asks the provider at once.
        False when no worker of this runner drives that job."""
        with self._lock:
            ev = self._events.get(job_id) if job_id in self._workers else None
        if ev is None:
            return False
        ev.set()
        return True

    def in_flight(self) -> dict[str, int]:
        """Jobs of each provider this runner drives now (emulator ones too)."""
        with self._lock:
            counts: dict[str, int] = {}
            for provider in self._active.values():
                counts[provider] = counts.get(provider, 0) + 1
            return counts

    def _counts(self) -> dict[str, int]:
        """Jobs counted against each provider's limit."""
        counts: dict[str, int] = {}
        for job_id, provider in self._active.items():
            if job_id not in self._emulated:
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
        try:
            models: Iterable[ModelCaps] = registry.provider_class(provider).MODELS.values()
        except ProviderError:
            made = next((p for (name, _, _), p in tuple(self._providers.items()) if name == provider), None)
            models = type(made).MODELS.values() if made is not None else ()
        return default_in_flight(models)

    @property
    def pricing(self) -> Pricing:
        if self._pricing is None:
            from providers.catalogue import load_catalogue  # the catalogue parse is only needed once priced

            self._pricing = load_catalogue()
        return self._pricing

    # --- what pages call ------------------------------------------------------------------
    def quote(
        self, provider: str, request: ImageRequest, *, endpoint: str = "live", prompts: Sequence[str] | None = None
    ) -> Quote:
        """The estimate per job and in total, with the budget as it stands (no validation)."""
        caps = self._provider(provider, endpoint, None).caps(request.model)
        planned = submission.plan(request, caps, prompts)
        estimates = tuple(submission.estimate(self.pricing, provider, req, caps) for req, _ in planned)
        return Quote(
            jobs=len(planned),
            images=sum(r.n for r, _ in planned),
            estimates=estimates,
            total_usd=submission.total_usd(estimates),
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
        by: Identity = LOCAL_OPERATOR,
        key_holder: str | None = None,
    ) -> Submitted:
        """Store a run and its jobs (reserving their estimates) and return at once.

        ``prompts`` are the prompts rendered from ``template`` (one job or more
        each; ``variables[i]`` made ``prompts[i]``); without them the request's
        own prompt is used. ``api_key`` (typed in a session) stays in this
        process's memory and the jobs stay with this runner.

        ``by`` is who asks (``generate``: ``PermissionDenied`` otherwise); the run is theirs,
        and a signed-in member is held to the per-member cap. ``key_holder`` names the
        stored key the jobs are sent and followed with (a user id or ``"team"``); without
        it a live job uses ``api_key`` (``"session"``) or the configured key (``"config"``),
        which only the local operator may use.

        Raises ``InvalidRequest``/``ModelUnavailable`` for a request the model
        does not accept and ``budget.BudgetExceeded`` when it does not fit.
        """
        by.require("generate")
        if endpoint not in ("live", "emulator"):
            raise ValueError("endpoint is 'live' or 'emulator'")
        if prompts is not None and variables is not None and len(prompts) != len(variables):
            raise ValueError("one variables mapping per prompt")
        holder = self._holder_for(by, endpoint, api_key, key_holder)
        prov = self._provider(provider, endpoint, api_key)
        caps = prov.caps(request.model)
        planned = submission.plan(request, caps, prompts)
        if validate:
            submission.validate(planned, request, caps, can_upload=endpoint == "emulator" or prov.uploader is not None)
        estimates = [submission.estimate(self.pricing, provider, req, caps) for req, _ in planned]
        expected = submission.expected_seconds(self.store, provider, request.model, request.quality, endpoint, caps)
        jobs = submission.new_jobs(planned, request, estimates, variables=variables, expected=expected)
        if api_key:
            # Known before the jobs exist in the store, so no worker can ever pick one up keyless.
            self._remember_key([job.id for job in jobs], api_key)
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
                user_id=by.user_id,
                key_holder=holder,
                member_daily_cap=not by.local,
            )
        except BaseException:
            self._forget_keys([job.id for job in jobs])
            raise
        self.wake()
        return Submitted(run_id=run_id, job_ids=tuple(job_ids), estimate_usd=submission.total_usd(estimates))

    @staticmethod
    def _holder_for(by: Identity, endpoint: str, api_key: str | None, key_holder: str | None) -> str | None:
        if endpoint == "emulator":
            return None
        if api_key:
            return SESSION_KEY
        if key_holder is not None:
            return key_holder
        if not by.local:
            # A signed-in member never rides on the operator's configured key.
            raise KeyNeeded("No key of yours or the team's is stored for this provider: store one in Settings.")
        return CONFIG_KEY

    def _check_on(self, job_id: str, by: Identity, what: str) -> None:
        """``by`` may look after this job: its maker, or an owner."""
        row = self.claims.job_row(job_id)
        by.require_on("generate", row.user_id if row is not None else None, what)

    def cancel(self, job_id: str, *, by: Identity = LOCAL_OPERATOR) -> CancelOutcome:
        """Cancel a job; returns what happened (see ``JobClaims.request_cancel``).

        ``requested``: the runner holding the job asks the provider to cancel it
        and marks it canceled within moments. Only its maker or an owner may.
        """
        self._check_on(job_id, by, "cancel this job")
        outcome = self.claims.request_cancel(job_id)
        with self._lock:
            ev = self._events.get(job_id)
        if outcome == "canceled":
            self._forget_keys([job_id])
        if ev is not None:
            ev.set()
        self.wake()
        return outcome

    def recheck(self, job_id: str, *, by: Identity = LOCAL_OPERATOR) -> bool:
        """Poll again a failed or unknown job that has a provider job id (never resends)."""
        self._check_on(job_id, by, "check this job again")
        reopened = self.claims.reopen(job_id)
        if reopened:
            self.wake()
        return reopened

    def supply_session_key(self, provider: str, api_key: str, *, by: Identity = LOCAL_OPERATOR) -> int:
        """The local operator typed a key again: jobs sent with a session key (now gone) go on with it.

        Only without sign-in (one person: the key is theirs); a signed-in person's key is a stored one.
        Returns how many waiting jobs took it.
        """
        by.require("generate")
        if not by.local or not api_key.strip():
            return 0
        waiting = self.claims.session_key_jobs(provider)
        with self._lock:
            ids = [j for j in waiting if j not in self._keys]
        if ids:
            self._remember_key(ids, api_key.strip())
            with self._lock:
                for job_id in ids:
                    self._not_before.pop(job_id, None)
            self.wake()
        return len(ids)

    def _remember_key(self, job_ids: Sequence[str], api_key: str) -> None:
        with self._lock:
            for job_id in job_ids:
                self._keys[job_id] = api_key
                self._pinned.add(job_id)

    def _forget_keys(self, job_ids: Sequence[str]) -> None:
        with self._lock:
            for job_id in job_ids:
                self._keys.pop(job_id, None)
                self._pinned.discard(job_id)

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
            self.claims.renew_claims(self.owner, self.lease_seconds, job_ids=ids)

    def _dispatch(self) -> None:
        with self._lock:
            counts = self._counts()
            busy = [p for p, c in counts.items() if c >= self._limit(p)]
            now = time.monotonic()
            skip = set(self._active) | {j for j, t in self._not_before.items() if t > now}
        candidates = self.claims.claimable(self.owner, exclude_providers=busy, exclude_ids=skip, limit=_CLAIM_BATCH)
        for job_id, provider in candidates:
            if self._stop.is_set():
                return
            with self._lock:
                if job_id in self._active or counts.get(provider, 0) >= self._limit(provider):
                    continue
            job = self.claims.claim(job_id, self.owner, self.lease_seconds)
            if job is None:
                continue
            with self._lock:
                # With no limit configured, an emulator job takes no slot of its provider's (real) limit.
                emulated = job.endpoint == "emulator" and self.max_in_flight is None
                if emulated and len(self._emulated) >= EMULATOR_IN_FLIGHT:
                    full = True
                else:
                    full = False
                    if emulated:
                        self._emulated.add(job_id)
                    else:
                        counts[provider] = counts.get(provider, 0) + 1
                    self._active[job_id] = provider
                    self._events[job_id] = threading.Event()
                    thread = threading.Thread(
                        target=self._work, args=(job,), name=f"studio-job-{job_id[:8]}", daemon=True
                    )
                    self._workers[job_id] = thread
            if full:
                with contextlib.suppress(Exception):
                    self.claims.release_claim(job_id, self.owner)
                continue
            thread.start()
        if len(candidates) >= _CLAIM_BATCH:
            self._wake.set()  # more may be waiting: look again now rather than after scan_seconds

    # --- one worker -----------------------------------------------------------------------
    def _context(self) -> Context:
        return Context(self.store, self.claims, self.owner, self.pricing, self.settings, self._stop)

    def _work(self, job: JobRow) -> None:
        finished = False
        try:
            driver.drive(self._context(), job, self._provider_for, self._sleeper(job.id))
            finished = True
        except Stopping:
            with contextlib.suppress(Exception):
                self.claims.release_claim(job.id, self.owner)
        except LostClaim:
            log.warning("job %s: claim lost to another runner", job.id)
            finished = True
        except KeyNeeded as why:
            # Never another key: the job waits, says so, and is looked at again now and then.
            with contextlib.suppress(Exception):
                self.claims.note_error(job.id, self.owner, f"{KEY_NEEDED}: {why}")
                self.claims.release_claim(job.id, self.owner)
            with self._lock:
                self._not_before[job.id] = time.monotonic() + _KEY_WAIT
        except Exception as exc:  # a bug or the database away: never resend, never drop
            log.exception("job %s: unexpected error", job.id)
            finished = self._after_unexpected(job.id, exc)
        finally:
            with self._lock:
                self._active.pop(job.id, None)
                self._emulated.discard(job.id)
                self._events.pop(job.id, None)
                self._workers.pop(job.id, None)
                if finished:
                    self._not_before.pop(job.id, None)
            if finished:
                self._forget_keys([job.id])
            self._wake.set()
            self._announce(job.id)

    def _after_unexpected(self, job_id: str, exc: Exception) -> bool:
        """Settle what can be settled; otherwise let the job be retried after a pause."""
        ctx = self._context()
        try:
            job = self.claims.job_row(job_id)
            if job is None:
                return True
            detail = f"{type(exc).__name__}: {exc}"
            if job.status == "queued":
                driver.finish_with(ctx, job_id, "failed", Billing("released"), kind="internal",
                                   message="The job could not be prepared.", detail=detail)
                return True
            if job.status == "submitting":
                driver.mark_unknown(ctx, job_id, job.provider, detail=detail)
                return True
            self.claims.release_claim(job_id, self.owner)
        except Exception:  # the database itself is away: the lease runs out, another round retries
            log.exception("job %s: could not record the error", job_id)
        with self._lock:
            self._not_before[job_id] = time.monotonic() + _RETRY_AFTER_TROUBLE
        return False

    def _sleeper(self, job_id: str) -> Callable[[float], None]:
        with self._lock:
            ev = self._events.setdefault(job_id, threading.Event())

        def sleep(seconds: float) -> None:
            if self._stop.is_set():
                raise Stopping
            if ev.wait(max(0.0, seconds)):
                ev.clear()
            if self._stop.is_set():
                raise Stopping

        return sleep

    def _provider_for(self, job: JobRow) -> Provider:
        """The provider with exactly the key the job was sent with (``jobs.key_holder``), or ``KeyNeeded``."""
        holder = job.key_holder
        if job.endpoint == "emulator" or holder is None or holder == CONFIG_KEY:
            # None on a live job: stored before accounts, when the configured key was the only one.
            return self._provider(job.provider, job.endpoint, None)
        if holder == SESSION_KEY:
            with self._lock:
                api_key = self._keys.get(job.id)
            if api_key is None:
                raise KeyNeeded("it was typed in a browser session that is gone; type it again in Settings")
            self.claims.clear_note(job.id, self.owner, KEY_NEEDED)
            return self._provider(job.provider, job.endpoint, api_key)
        try:
            stored = self._open_key(holder, job.provider) if self._open_key is not None else None
        except Exception as err:  # unreadable (changed, or sealed with a secret no longer configured)
            raise KeyNeeded(f"the stored key cannot be read ({type(err).__name__}); store it again in Settings") \
                from err
        if stored is None:
            raise KeyNeeded("the key it was sent with is no longer stored; store it again in Settings")
        self.claims.clear_note(job.id, self.owner, KEY_NEEDED)
        return self._provider(job.provider, job.endpoint, stored)

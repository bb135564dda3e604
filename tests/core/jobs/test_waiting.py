"""The runner's waiting and settling logic as plain functions, with an injected clock and sleep."""

from __future__ import annotations

from decimal import Decimal

import pytest
from core_fakes import FakeCost

from core.jobs import submission
from core.jobs.follow import follow
from core.jobs.settlement import billing_for_failure
from providers.base import Provider
from providers.errors import (
    AuthError,
    JobFailed,
    ModerationBlocked,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from providers.registry import PROVIDERS
from providers.types import ImageRequest, JobStatus, ModelCaps, OutputImage


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class Scripted(Provider):
    """Answers from the fake clock: queued, running with progress, then ``final`` at ``length`` s."""

    name = "scripted"
    label = "Scripted"
    key_env = "SCRIPTED_KEY"
    base_url_env = "SCRIPTED_URL"
    default_base_url = "http://scripted.invalid"
    default_model = "m"
    MODELS = {"m": ModelCaps(provider="scripted", model="m", label="M")}

    def __init__(self, clock: FakeClock, length: float, final: str = "succeeded",
                 errors: dict[int, Exception] | None = None) -> None:
        super().__init__(api_key="k")
        self.clock, self.length, self.final = clock, length, final
        self.start = clock()
        self.errors = errors or {}
        self.polls = 0

    def submit(self, request: ImageRequest, *, idempotency_key: str | None = None) -> JobStatus:
        raise AssertionError("follow never creates")

    def status(self, job_id: str) -> JobStatus:
        self.polls += 1
        if self.polls in self.errors:
            raise self.errors[self.polls]
        elapsed = self.clock() - self.start
        if elapsed >= self.length:
            return JobStatus(job_id, self.final, progress=100)  # type: ignore[arg-type]
        return JobStatus(job_id, "running", progress=100 * elapsed / self.length)

    def result(self, status: JobStatus) -> list[OutputImage]:
        return []


def run(provider: Scripted, clock: FakeClock, **kw) -> JobStatus:
    params = {"expected_seconds": provider.length, "deadline_seconds": 600.0}
    params.update(kw)
    return follow(provider, "job-1", clock=clock, sleep=clock.sleep, **params)


def test_follows_to_the_end_promptly_and_sparingly() -> None:
    clock = FakeClock()
    provider = Scripted(clock, length=30.0)
    seen: list[str] = []
    final = run(provider, clock, on_status=lambda s: seen.append(s.state))
    assert final.state == "succeeded"
    late = clock.now - provider.start - 30.0
    assert 0 <= late <= 0.3  # seen within the polling module's promise
    assert provider.polls <= 2 * 30.5  # at most about two status requests per second
    assert seen[-1] == "succeeded" and seen.count("succeeded") == 1


def test_a_failed_job_is_returned_not_raised() -> None:
    clock = FakeClock()
    final = run(Scripted(clock, length=5.0, final="failed"), clock)
    assert final.state == "failed"


def test_passing_trouble_keeps_the_last_state_and_goes_on() -> None:
    clock = FakeClock()
    errors = {2: ProviderUnavailable("502", sent=True), 3: RateLimited("slow down", retry_after=1.0),
              4: ProviderTimeout("read timeout", sent=True)}
    provider = Scripted(clock, length=10.0, errors=errors)
    transient: list[str] = []
    states: list[str] = []
    final = run(provider, clock, on_transient=lambda e: transient.append(e.kind),
                on_status=lambda s: states.append(s.state))
    assert final.state == "succeeded"
    assert transient == ["unavailable", "rate_limited", "timeout"]
    assert states[1] == states[0] == "running"  # the failed poll repeated the last known state


def test_first_poll_failing_reports_the_initial_state() -> None:
    clock = FakeClock()
    provider = Scripted(clock, length=3.0, errors={1: ProviderUnavailable("down")})
    states: list[str] = []
    run(provider, clock, initial_state="queued", on_status=lambda s: states.append(s.state))
    assert states[0] == "queued"


def test_deadline_raises_timeout_counting_from_started_at() -> None:
    clock = FakeClock()
    provider = Scripted(clock, length=10_000.0)
    with pytest.raises(ProviderTimeout) as info:
        run(provider, clock, deadline_seconds=100.0)
    assert info.value.sent and clock.now - provider.start == pytest.approx(100.0, abs=0.01)

    # After a restart the job's age counts: started 90 s ago leaves 10 s.
    clock2 = FakeClock()
    provider2 = Scripted(clock2, length=10_000.0)
    with pytest.raises(ProviderTimeout):
        run(provider2, clock2, deadline_seconds=100.0, started_at=clock2() - 90.0)
    assert clock2.now - provider2.start == pytest.approx(10.0, abs=0.01)


def test_a_lasting_error_is_raised() -> None:
    clock = FakeClock()
    provider = Scripted(clock, length=10.0, errors={3: AuthError("key revoked")})
    with pytest.raises(AuthError):
        run(provider, clock)


def test_on_status_can_stop_the_wait() -> None:
    class Stop(Exception):
        pass

    clock = FakeClock()
    provider = Scripted(clock, length=60.0)

    def on_status(status: JobStatus) -> None:
        if status.progress and status.progress > 20:
            raise Stop

    with pytest.raises(Stop):
        run(provider, clock, on_status=on_status)
    assert 12 <= clock.now - provider.start < 30


def test_recovery_without_an_expected_time_still_finishes() -> None:
    clock = FakeClock()
    provider = Scripted(clock, length=7.0)
    final = run(provider, clock, expected_seconds=None)
    assert final.state == "succeeded"
    assert clock.now - provider.start - 7.0 <= 2.0  # progress readings stand in for the missing estimate


# --- settling and planning ---------------------------------------------------------------------
def test_billing_for_failure_rules() -> None:
    reported = FakeCost(Decimal("0.01"), "USD", Decimal("0.01"))
    openai, evolink, apiframe, coretoday = (PROVIDERS[n] for n in ("openai", "evolink", "apiframe", "coretoday"))
    assert billing_for_failure(openai, JobFailed("x"), reported).mode == "billed"
    assert billing_for_failure(openai, ModerationBlocked("no", stage="input")).mode == "released"
    assert billing_for_failure(openai, ModerationBlocked("no", billed=False)).mode == "released"
    assert billing_for_failure(openai, ModerationBlocked("no", stage="output")).mode == "estimated"
    assert billing_for_failure(evolink, ModerationBlocked("no", billed=True)).mode == "estimated"
    assert billing_for_failure(evolink, JobFailed("x")).mode == "released"
    assert billing_for_failure(evolink, JobFailed("x"), reported).mode == "released"  # a refunded hold
    assert billing_for_failure(evolink, None).mode == "released"
    assert billing_for_failure(apiframe, JobFailed("x")).mode == "released"
    assert billing_for_failure(coretoday, JobFailed("x")).mode == "estimated"
    assert billing_for_failure(evolink, ProviderUnavailable("x")).mode == "estimated"
    assert billing_for_failure(coretoday, None).mode == "estimated"


def test_charging_failed_jobs_is_the_providers_own_attribute() -> None:
    # The rule reads the class attribute, so a new provider says it once, beside idempotent_create.
    class Refunds(Scripted):
        charges_failed_jobs = False

    clock = FakeClock()
    assert billing_for_failure(Scripted, JobFailed("x")).mode == "estimated"
    assert billing_for_failure(Refunds, JobFailed("x")).mode == "released"
    assert billing_for_failure(Refunds(clock, 1.0), JobFailed("x")).mode == "released"  # an instance too
    assert {n for n, cls in PROVIDERS.items() if not cls.charges_failed_jobs} == {"evolink", "apiframe"}


@pytest.mark.parametrize(("n", "per_call", "prompts", "expected"), [
    (1, 1, None, [("p", 1)]),
    (3, 1, None, [("p", 1)] * 3),
    (5, 2, None, [("p", 2), ("p", 2), ("p", 1)]),
    (4, 10, None, [("p", 4)]),
    (2, 1, ["a", "b"], [("a", 1), ("a", 1), ("b", 1), ("b", 1)]),
])
def test_plan_splits_into_jobs(n: int, per_call: int, prompts: list[str] | None,
                               expected: list[tuple[str, int]]) -> None:
    caps = ModelCaps(provider="x", model="m", label="M", max_images_per_call=per_call)
    got = submission.plan(ImageRequest(prompt="p", model="m", n=n), caps, prompts)
    assert [(r.prompt, r.n) for r, _ in got] == expected

"""What the runner learns of a provider's own time, and how many jobs it runs at once.

Pure pieces with an injected clock, the store's ``learned_seconds`` and the
schema migration that added ``provider_seconds``; no timing assertions.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from core_fakes import PROVIDERS as FAKES
from core_fakes import FakePricing, FakeWorld, factory_for

import clock
from core import db
from core.history.store import Store
from core.history.views import Billing, Money, NewJob
from core.jobs.claims import JobClaims
from core.jobs.follow import DoneWindow, follow
from core.jobs.runner import DEFAULT_MAX_IN_FLIGHT, JobRunner, default_in_flight
from providers.base import Provider
from providers.errors import ProviderUnavailable
from providers.registry import PROVIDERS
from providers.types import ImageRequest, JobStatus, ModelCaps, OutputImage


# --- DoneWindow: the provider's time as the polls bracket it -------------------------------------
def test_done_window_is_midway_between_the_last_not_done_and_the_first_done() -> None:
    window = DoneWindow(not_done_at=100.0)  # the submit's answer
    window.note(JobStatus("j", "queued"), 101.0)
    window.note(JobStatus("j", "running", progress=90), 101.9)
    window.note(JobStatus("j", "succeeded"), 102.1)
    window.note(JobStatus("j", "succeeded"), 105.0)  # later answers change nothing
    assert window.seconds(started_at=100.0) == pytest.approx(2.0)


def test_done_window_counts_failed_and_canceled_as_done() -> None:
    window = DoneWindow(not_done_at=0.0)
    window.note(JobStatus("j", "failed"), 4.0)
    assert window.seconds(0.0) == pytest.approx(2.0)


def test_done_window_without_both_ends_knows_nothing() -> None:
    resumed = DoneWindow()  # a job picked up again after a restart, found done at the first look
    resumed.note(JobStatus("j", "succeeded"), 50.0)
    assert resumed.seconds(0.0) is None
    never_done = DoneWindow(not_done_at=1.0)
    never_done.note(JobStatus("j", "running"), 2.0)
    assert never_done.seconds(0.0) is None


# --- follow(): on_answer sees only what the provider actually said ---------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Flaky(Provider):
    """Running until ``length`` s on the fake clock; the second status request fails (a 503)."""

    name, label, key_env, base_url_env = "flaky", "Flaky", "FLAKY_KEY", "FLAKY_URL"
    default_base_url, default_model = "http://flaky.invalid", "m"
    MODELS = {"m": ModelCaps(provider="flaky", model="m", label="M")}

    def __init__(self, clock: Clock, length: float) -> None:
        super().__init__(api_key="k")
        self.clock, self.length, self.polls = clock, length, 0

    def submit(self, request: ImageRequest, *, idempotency_key: str | None = None) -> JobStatus:
        raise AssertionError("follow never creates")

    def status(self, job_id: str) -> JobStatus:
        self.polls += 1
        if self.polls == 2:
            raise ProviderUnavailable("503", status_code=503, sent=True)
        return JobStatus(job_id, "succeeded" if self.clock() >= self.length else "running")

    def result(self, status: JobStatus) -> list[OutputImage]:
        return []


def test_follow_hands_on_answer_only_real_answers_with_their_time() -> None:
    clock = Clock()
    provider = Flaky(clock, length=6.0)
    answers: list[tuple[str, float]] = []
    seen: list[str] = []
    final = follow(provider, "j", expected_seconds=6.0, deadline_seconds=60.0, started_at=0.0, clock=clock,
                   sleep=clock.sleep, on_status=lambda s: seen.append(s.state),
                   on_answer=lambda s, at: answers.append((s.state, at)))
    assert final.state == "succeeded"
    assert len(seen) == provider.polls and len(answers) == provider.polls - 1  # not the failed request
    assert [at for _, at in answers] == sorted(at for _, at in answers)
    assert answers[-1] == ("succeeded", clock.now)


# --- the store learns the provider's time, not the app's ------------------------------------------
@pytest.fixture
def store(db_url: str, data_dir: Path) -> Store:
    return Store(db_url, data_dir)


def _finished_job(store: Store, *, took: float, provider_seconds: float | None, quality: str = "low") -> str:
    request = ImageRequest(prompt="a red fox", model="m1", quality=quality)
    _, (job_id,) = store.create_run(
        provider="fake", endpoint="live", request=request,
        jobs=[NewJob(prompt="a red fox", n=1, quality=quality, size="1:1", estimate=Money(Decimal("0.07")))],
    )
    claims = JobClaims(store.engine)
    claims.claim(job_id, "me", 30)
    now = clock.now()
    claims.finish(job_id, "me", status="succeeded", billing=Billing("estimated"), provider_seconds=provider_seconds,
                  now=now)
    with db.write(store.engine) as conn:
        conn.execute(db.jobs.update().where(db.jobs.c.id == job_id).values(submitted_at=now - timedelta(seconds=took)))
    return job_id


def test_learned_seconds_prefers_the_provider_time_over_submit_to_finish(store: Store) -> None:
    # Each job was seen and stored 0.4 s after the provider finished: that must not be learned.
    ids = [_finished_job(store, took=p + 0.4, provider_seconds=p) for p in (2.0, 2.2, 9.0)]
    assert store.learned_seconds("fake", "m1", "low", "live") == pytest.approx(2.2)
    assert store.get_job(ids[0]).provider_seconds == pytest.approx(2.0)


def test_learned_seconds_falls_back_on_submit_to_finish_for_older_rows(store: Store) -> None:
    _finished_job(store, took=30.0, provider_seconds=None)  # finished before the column existed
    _finished_job(store, took=12.0, provider_seconds=10.0)
    _finished_job(store, took=14.0, provider_seconds=None)
    assert store.learned_seconds("fake", "m1", "low", "live") == pytest.approx(14.0)  # median of 30, 10, 14


def test_migration_to_v2_adds_provider_seconds_and_keeps_the_jobs(sqlite_url: str, data_dir: Path) -> None:
    engine = db.get_engine(sqlite_url)
    with db.write(engine) as conn:  # a database as version 1 made it
        db.metadata.create_all(conn)
        for version in sorted(db.ADDED_JOB_COLUMNS):
            for column in db.ADDED_JOB_COLUMNS[version]:
                conn.exec_driver_sql(f"ALTER TABLE jobs DROP COLUMN {column}")
        conn.execute(db.schema_version.insert(), [{"version": 1, "applied_at": clock.now()}])
        conn.execute(db.budget.insert(), [{"id": 1, "updated_at": clock.now()}])
    assert "provider_seconds" not in {c["name"] for c in sa.inspect(engine).get_columns("jobs")}
    assert db.migrate(engine) == db.SCHEMA_VERSION >= 2
    assert "provider_seconds" in {c["name"] for c in sa.inspect(engine).get_columns("jobs")}
    store = Store(sqlite_url, data_dir)
    job_id = _finished_job(store, took=3.0, provider_seconds=2.5)
    assert store.get_job(job_id).provider_seconds == pytest.approx(2.5)


# --- in flight: a one-image-per-call provider runs a whole batch at once ---------------------------
def _caps(per_call: int, max_n: int = 10) -> ModelCaps:
    return ModelCaps(provider="p", model="m", label="M", max_images_per_call=per_call, max_n=max_n)


def test_default_in_flight_lets_a_whole_batch_go_where_each_call_makes_one_image() -> None:
    assert default_in_flight([_caps(1, 10)]) == 10
    assert default_in_flight([_caps(10, 10)]) == DEFAULT_MAX_IN_FLIGHT  # a batch is one call anyway
    assert default_in_flight([_caps(10), _caps(1, 6)]) == 6  # the model needing most calls decides
    assert default_in_flight([_caps(1, 2)]) == DEFAULT_MAX_IN_FLIGHT  # never below the flat default
    assert default_in_flight([]) == DEFAULT_MAX_IN_FLIGHT


def test_runner_limits_per_provider(sqlite_url: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMAGE_STUDIO_MAX_IN_FLIGHT", raising=False)
    store = Store(sqlite_url, data_dir)
    factory = factory_for(FakeWorld(), [])
    runner = JobRunner(store, factory, pricing=FakePricing(Decimal("0.07")))
    assert runner.in_flight_limit("coretoday") == PROVIDERS["coretoday"].caps().max_n  # one image per call
    # EvoLink's gpt-image-2-beta makes one image per call too: a batch of it runs at once.
    assert runner.in_flight_limit("evolink") == PROVIDERS["evolink"].caps("gpt-image-2-beta").max_n
    for name in ("openai", "apiframe"):
        assert runner.in_flight_limit(name) == DEFAULT_MAX_IN_FLIGHT
    runner.quote("fakesync", ImageRequest(prompt="x", model="m1"))  # a provider the registry does not know
    assert runner.in_flight_limit("fakesync") == default_in_flight(FAKES["fakesync"].MODELS.values())

    assert JobRunner(store, factory, max_in_flight=2).in_flight_limit("coretoday") == 2
    mapped = JobRunner(store, factory, max_in_flight={"openai": 7})
    assert mapped.in_flight_limit("openai") == 7 and mapped.in_flight_limit("coretoday") == 10
    monkeypatch.setenv("IMAGE_STUDIO_MAX_IN_FLIGHT", "3")  # set: the same for every provider
    assert JobRunner(store, factory).in_flight_limit("coretoday") == 3


# --- how much the provider's time varies (issue 17: the polling window) -------------------------------
def test_learned_spread_is_half_the_10_to_90_range_over_the_median(store: Store) -> None:
    from core.history.learned import MIN_SAMPLES, learned_spread

    for p in (8.0, 9.0, 10.0, 11.0):
        _finished_job(store, took=p + 0.4, provider_seconds=p)
    assert MIN_SAMPLES == 5 and learned_spread(store, "fake", "m1", "low", "live") is None  # too few to tell
    _finished_job(store, took=12.4, provider_seconds=12.0)
    # 8..12: deciles (inclusive) 8.4 and 11.6, median 10 -> (11.6 - 8.4) / 2 / 10
    assert learned_spread(store, "fake", "m1", "low", "live") == pytest.approx(0.16)
    assert learned_spread(store, "fake", "m1", "high", "live") is None  # another quality, its own history
    assert learned_spread(store, "fake", "m1", "low", "emulator") is None

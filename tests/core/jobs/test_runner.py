"""The job runner against an in-memory provider (fast): lifecycle, bounds, cancel, unknown, recovery."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from core_fakes import PROVIDERS, FakePricing, FakeWorld, factory_for, wait_for

from core import db
from core.history import explain
from core.history.store import Store
from core.jobs.claims import JobClaims
from core.jobs.runner import JobRunner
from core.spend.budget import BudgetExceeded
from providers.errors import (
    AuthError,
    InvalidRequest,
    JobFailed,
    ModerationBlocked,
    ProviderUnavailable,
    RateLimited,
)
from providers.types import ImageRequest

FAST = {"scan_seconds": 0.05, "lease_seconds": 5.0, "min_deadline_seconds": 30.0, "retry_backoff": 0.05}


class Harness:
    def __init__(self, url: str, data_dir: Path) -> None:
        self.url, self.data_dir = url, data_dir
        self.store = Store(url, data_dir)
        self.claims = JobClaims(self.store.engine)
        self.world = FakeWorld(job_time=0.3)
        self.calls: list[tuple[str, str, str | None]] = []
        self.runners: list[JobRunner] = []

    def runner(self, start: bool = True, **kw) -> JobRunner:
        params = {**FAST, "pricing": FakePricing(Decimal("0.07"))}
        params.update(kw)
        runner = JobRunner(self.store, factory_for(self.world, self.calls), **params)
        self.runners.append(runner)
        return runner.start() if start else runner

    def done(self, job_ids, timeout: float = 10.0):
        return wait_for(lambda: (jobs := self.store.get_jobs(list(job_ids))) and all(j.done for j in jobs) and jobs,
                        timeout)

    def close(self) -> None:
        for r in self.runners:
            r.stop(timeout=5)


@pytest.fixture
def h(sqlite_url: str, data_dir: Path) -> Iterator[Harness]:
    harness = Harness(sqlite_url, data_dir)
    yield harness
    harness.close()


def req(prompt: str = "a red fox", n: int = 1, model: str = "m1", **kw) -> ImageRequest:
    return ImageRequest(prompt=prompt, model=model, n=n, quality="low", **kw)


def test_submit_returns_at_once_and_jobs_complete(h: Harness) -> None:
    runner = h.runner()
    seen_states: set[str] = set()
    sub = runner.submit("fake", req(n=3))
    assert len(sub.job_ids) == 3 and sub.estimate_usd == Decimal("0.21")
    assert {j.status for j in h.store.get_jobs(sub.job_ids)} <= {"queued", "submitting", "submitted"}

    def watch():
        for j in h.store.get_jobs(sub.job_ids):
            seen_states.add(j.status)
        return all(j.done for j in h.store.get_jobs(sub.job_ids))

    wait_for(watch, 10, 0.02)
    jobs = h.store.get_jobs(sub.job_ids)
    assert [j.status for j in jobs] == ["succeeded"] * 3
    assert "running" in seen_states
    assert h.world.creates == 3
    for j in jobs:
        assert j.provider_job_id and j.submitted_at and j.finished_at and j.progress == 100
        assert j.expected_seconds == pytest.approx(0.3)  # the model's caps: no history yet
        assert len(j.images) == 1 and j.images[0].path.exists() and j.images[0].thumb_path.exists()
        assert j.billed.estimated and j.billed.usd == Decimal("0.07")
        assert j.claimed_by is None
    # Keys are idempotency keys derived from the job id, stable across restarts.
    assert sorted(h.world.idempotency_keys) == sorted(f"imagestudio-{j}" for j in sub.job_ids)


def test_billed_cost_from_the_provider_report(h: Harness) -> None:
    h.world.billed = {"usd": "0.0421"}
    runner = h.runner()
    (job,) = h.done(runner.submit("fake", req()).job_ids)
    assert job.billed.usd == Decimal("0.0421") and not job.billed.estimated
    assert h.store.spend().total == Decimal("0.0421")


def test_synchronous_provider(h: Harness) -> None:
    h.world.billed = {"usd": "0.05"}
    runner = h.runner()
    (job,) = h.done(runner.submit("fakesync", req(n=2)).job_ids)
    assert job.status == "succeeded" and job.provider_job_id is None and len(job.images) == 2
    assert job.billed.usd == Decimal("0.05")


def test_in_flight_is_bounded_per_provider(h: Harness) -> None:
    runner = h.runner(max_in_flight=2)
    sub = runner.submit("fake", req(n=6))
    other = runner.submit("fakesync", req(n=1))
    h.done(sub.job_ids + other.job_ids, timeout=15)
    assert h.world.max_active == 2
    assert h.world.creates == 7


def test_learned_expected_time_from_history(h: Harness) -> None:
    runner = h.runner()
    h.done(runner.submit("fake", req(model="m2", n=3)).job_ids)
    jobs = h.store.list_jobs()
    # The provider's own time (bracketed by the polls), not submit-to-finish: that also holds
    # how late the job was seen, and learning it would make every next job seen later still.
    durations = [j.provider_seconds for j in jobs]
    assert all(0 < d < j.elapsed_seconds() for d, j in zip(durations, jobs, strict=True))
    sub = runner.submit("fake", req(model="m2"))
    learned = h.store.get_job(sub.job_ids[0]).expected_seconds
    assert learned == pytest.approx(sorted(durations)[1])  # the median of the three
    assert h.store.get_job(runner.submit("fake", req(model="m1")).job_ids[0]).expected_seconds == 0.3


def test_cancel_queued_and_running(h: Harness) -> None:
    runner = h.runner(start=False)
    sub = runner.submit("fake", req(n=2))
    assert runner.cancel(sub.job_ids[0]) == "canceled"
    h.world.job_time = 5  # running after 0.5 s, far from done
    runner.start()
    running = sub.job_ids[1]
    wait_for(lambda: h.store.get_job(running).status == "running")
    assert runner.cancel(running) == "requested"
    first, second = h.done(sub.job_ids)
    assert first.status == "canceled" and first.billed.usd == 0 and h.world.creates == 1
    assert second.status == "canceled" and h.world.canceled == [second.provider_job_id]
    assert second.billed.estimated  # whether a canceled job is charged is not reported
    states = {r["job_id"]: r["state"] for r in h.store.ledger_rows()}
    assert states == {first.id: "released", second.id: "estimated"}


def test_cancel_refused_by_provider_lets_the_job_finish(h: Harness) -> None:
    h.world.job_time = 1.0
    h.world.cancel_errors.append(InvalidRequest("too late", field="cancel"))
    runner = h.runner()
    (job_id,) = runner.submit("fake", req()).job_ids
    wait_for(lambda: h.store.get_job(job_id).provider_job_id)
    assert runner.cancel(job_id) == "requested"
    (job,) = h.done([job_id])
    assert job.status == "succeeded" and "Cancel failed" in job.error_detail


def test_provider_without_cancel(h: Harness) -> None:
    runner = h.runner()
    (job_id,) = runner.submit("fakenocancel", req()).job_ids
    wait_for(lambda: h.store.get_job(job_id).provider_job_id)
    assert runner.cancel(job_id) == "not_cancelable"
    assert h.done([job_id])[0].status == "succeeded"


def test_create_that_may_have_reached_the_server_becomes_unknown_and_is_never_resent(h: Harness) -> None:
    h.world.submit_errors.append(ProviderUnavailable("read timeout", sent=True))
    runner = h.runner()
    (job,) = h.done(runner.submit("fake", req()).job_ids)
    assert job.status == "unknown" and "may have been" in job.error_message
    assert job.billed.estimated and job.billed.usd == Decimal("0.07")
    runner.wake()
    threading.Event().wait(0.3)
    assert h.world.creates == 1


def test_create_refused_outright_fails_and_releases(h: Harness) -> None:
    h.world.submit_errors.append(AuthError("bad key"))
    runner = h.runner()
    (job,) = h.done(runner.submit("fake", req()).job_ids)
    assert job.status == "failed" and job.error_kind == "auth" and job.billed.usd == 0
    assert h.store.spend().total == 0


@pytest.mark.parametrize(
    "err",
    [
        ModerationBlocked("prompt refused", stage="input", status_code=400, sent=True),
        RateLimited("slow down", retry_after=5, status_code=429, sent=True),
        AuthError("bad key", status_code=401, sent=True),
        InvalidRequest(field="size", value="7x7", status_code=400, sent=True),
    ],
    ids=["moderation-input", "rate-limited", "auth", "invalid"],
)
def test_create_answered_with_a_refusal_fails_released_not_unknown(h: Harness, err) -> None:
    # The provider answered "no": no job exists, so nothing may have been charged.
    h.world.submit_errors.append(err)
    runner = h.runner()
    (job,) = h.done(runner.submit("fake", req()).job_ids)
    assert job.status == "failed" and job.error_kind == err.kind
    assert job.error_status_code == err.status_code and job.error_sent is True
    assert job.billed.usd == 0 and h.store.spend().total == 0
    runner.wake()
    threading.Event().wait(0.3)
    assert h.world.creates == 1  # sent once, never resent


def test_output_stage_moderation_keeps_the_estimate_flagged(h: Harness) -> None:
    # Refused after the image was made: it may be billed, so the estimate stands, flagged.
    h.world.submit_errors.append(ModerationBlocked("image refused", stage="output", status_code=400, sent=True))
    runner = h.runner()
    (job,) = h.done(runner.submit("fake", req()).job_ids)
    assert job.status == "failed" and job.error_kind == "moderation"
    assert job.billed.estimated and job.billed.usd == Decimal("0.07")


def test_output_stage_moderation_is_stored_with_its_stage_and_shown(h: Harness) -> None:
    # Neither the message nor the provider's text says which stage: only the typed field does.
    h.world.submit_errors.append(ModerationBlocked("Request rejected.", stage="output", status_code=400,
                                                   code="moderation_blocked", detail='{"error": "rejected"}',
                                                   sent=True))
    runner = h.runner()
    (job,) = h.done(runner.submit("fake", req()).job_ids)
    assert (job.error_kind, job.error_stage, job.error_billed) == ("moderation", "output", None)
    assert (job.error_status_code, job.error_code, job.error_sent) == (400, "moderation_blocked", True)
    assert job.error_message == "Request rejected." and job.error_detail == '{"error": "rejected"}'
    why = explain.explain(job)
    assert why.title == "Blocked by the safety filter"
    assert why.body == "fake made the image, then its safety filter withheld it."  # an unregistered provider's name
    assert why.charge.startswith("It may have been charged")


def test_rate_limit_wait_is_shown_from_the_field_whatever_the_wording(h: Harness) -> None:
    # No number anywhere in the message: the 20 s can only come from retry_after.
    h.world.submit_errors.append(RateLimited("Too many requests; please slow down.", retry_after=20.0,
                                             status_code=429, sent=True))
    runner = h.runner()
    (job,) = h.done(runner.submit("fake", req()).job_ids)
    assert job.status == "failed" and job.error_kind == "rate_limited" and job.error_retry_after == 20.0
    why = explain.explain(job)
    assert why.title == "fake asked to slow down"
    assert "(about 20 s after the refusal)" in why.hint and why.charge == "Not charged."


def test_create_answered_with_a_server_error_is_unknown(h: Harness) -> None:
    h.world.submit_errors.append(ProviderUnavailable("bad gateway", status_code=502, detail="<html>502</html>",
                                                     sent=True))
    runner = h.runner()
    (job,) = h.done(runner.submit("fake", req()).job_ids)
    assert job.status == "unknown" and job.error_kind == "unknown"
    # The cause's typed facts stay beside the runner's own words.
    assert (job.error_status_code, job.error_sent) == (502, True)
    assert job.error_detail == "unavailable: bad gateway\n<html>502</html>"
    why = explain.explain(job)
    assert why.title == "Outcome unknown" and "may have been" in why.body and "dashboard" in why.hint


def test_idempotent_provider_resends_with_the_same_key(h: Harness) -> None:
    h.world.submit_errors.append(ProviderUnavailable("502", sent=True))
    runner = h.runner()
    (job,) = h.done(runner.submit("fakeidem", req()).job_ids)
    assert job.status == "succeeded" and job.attempts == 2
    assert h.world.idempotency_keys == [f"imagestudio-{job.id}"] * 2


def test_failed_job_keeps_the_estimate_flagged(h: Harness) -> None:
    h.world.fail_with = JobFailed("model crashed", code="E1")
    runner = h.runner()
    (job,) = h.done(runner.submit("fake", req()).job_ids)
    assert job.status == "failed" and job.error_kind == "job_failed" and job.error_message == "model crashed"
    assert job.error_code == "E1" and job.error_stage is None
    assert job.billed.estimated


def test_download_trouble_is_retried_then_check_again(h: Harness) -> None:
    h.world.result_errors.extend([ProviderUnavailable("reset")] * 3)
    runner = h.runner(download_attempts=3)
    (job,) = h.done(runner.submit("fake", req()).job_ids)
    assert job.status == "failed" and "could not be downloaded" in job.error_message
    assert runner.recheck(job.id)
    (job,) = h.done([job.id])
    assert job.status == "succeeded" and len(job.images) == 1 and h.world.creates == 1


def test_session_key_stays_in_memory_and_pins_the_job(h: Harness) -> None:
    runner = h.runner(start=False)
    (job_id,) = runner.submit("fake", req(), api_key="sk-session").job_ids
    job = h.store.get_job(job_id)
    assert job.claimed_by == runner.owner  # only this process knows the key
    with db.read(h.store.engine) as conn:
        dump = " ".join(str(v) for row in conn.execute(sa.select(db.jobs)) for v in row)
        dump += " ".join(str(v) for row in conn.execute(sa.select(db.runs)) for v in row)
    assert "sk-session" not in dump
    runner.start()
    assert h.done([job_id])[0].status == "succeeded"
    assert ("fake", "live", "sk-session") in h.calls


def test_live_job_without_a_key_fails_before_sending(h: Harness) -> None:
    runner = h.runner(start=False)
    runner.provider_factory = lambda name, endpoint, api_key=None: PROVIDERS[name](h.world, api_key=None)
    runner.start()
    (job,) = h.done(runner.submit("fake", req()).job_ids)
    assert job.status == "failed" and job.error_kind == "auth" and h.world.creates == 0
    assert job.billed.usd == 0


def test_validation_and_budget_refuse_before_storing(h: Harness) -> None:
    runner = h.runner(start=False)
    with pytest.raises(InvalidRequest):
        runner.submit("fake", req(prompt="   "))
    h.store.set_caps(Decimal("0.10"), None)
    with pytest.raises(BudgetExceeded, match=r"\$0.14.*\$0.10"):
        runner.submit("fake", req(n=2))
    assert h.store.count_jobs() == 0
    quote = runner.quote("fake", req(n=2))
    assert quote.jobs == 2 and quote.total_usd == Decimal("0.14") and not quote.fits


def test_template_prompts_make_one_run(h: Harness) -> None:
    runner = h.runner()
    sub = runner.submit("fake", req(prompt="{a} fox"), prompts=["red fox", "blue fox"], template="{a} fox",
                        variables=[{"a": "red"}, {"a": "blue"}])
    jobs = h.done(sub.job_ids)
    assert [(j.prompt, j.variables) for j in jobs] == [("red fox", {"a": "red"}), ("blue fox", {"a": "blue"})]
    run = h.store.get_run(sub.run_id)
    assert run.template == "{a} fox" and run.n == 2


# --- recovery -------------------------------------------------------------------------------------
def dead_owner() -> str:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return f"{socket.gethostname()}|{proc.pid}||dead0000"


def test_restart_polls_a_job_that_has_an_id_without_resending(h: Harness) -> None:
    first = h.runner(start=False)
    (job_id,) = first.submit("fake", req()).job_ids
    owner = dead_owner()
    provider = factory_for(h.world)("fake", "live")
    status = provider.submit(h.store.load_request(job_id))
    h.claims.claim(job_id, owner, 300)
    h.claims.mark_submitting(job_id, owner)
    h.claims.mark_submitted(job_id, owner, status.job_id)
    h.runner()  # the new process
    (job,) = h.done([job_id])
    assert job.status == "succeeded" and h.world.creates == 1 and len(job.images) == 1


def test_restart_marks_a_half_sent_job_unknown(h: Harness) -> None:
    first = h.runner(start=False)
    (job_id,) = first.submit("fake", req()).job_ids
    owner = dead_owner()
    h.claims.claim(job_id, owner, 300)
    h.claims.mark_submitting(job_id, owner)  # then the process died mid-call
    h.runner()
    (job,) = h.done([job_id])
    assert job.status == "unknown" and job.billed.estimated and h.world.creates == 0


def test_restart_resends_a_half_sent_job_to_an_idempotent_provider(h: Harness) -> None:
    first = h.runner(start=False)
    (job_id,) = first.submit("fakeidem", req()).job_ids
    owner = dead_owner()
    h.claims.claim(job_id, owner, 300)
    h.claims.mark_submitting(job_id, owner)
    h.runner()
    (job,) = h.done([job_id])
    assert job.status == "succeeded" and h.world.idempotency_keys == [f"imagestudio-{job_id}"]


def test_stop_leaves_jobs_for_the_next_start(h: Harness) -> None:
    h.world.job_time = 2.0
    first = h.runner()
    (job_id,) = first.submit("fake", req()).job_ids
    wait_for(lambda: h.store.get_job(job_id).provider_job_id)
    first.stop()
    job = h.store.get_job(job_id)
    assert job.status in ("submitted", "running") and job.claimed_by is None
    h.runner()
    (job,) = h.done([job_id])
    assert job.status == "succeeded" and h.world.creates == 1


def test_a_live_claim_elsewhere_is_left_alone(h: Harness) -> None:
    first = h.runner(start=False)
    (job_id,) = first.submit("fake", req()).job_ids
    h.claims.claim(job_id, "other-host|1|1|x", 300)
    h.runner()
    threading.Event().wait(0.5)
    assert h.store.get_job(job_id).status == "queued" and h.world.creates == 0


def test_two_runners_sharing_a_database_drive_each_job_once(db_url: str, data_dir: Path) -> None:
    """Two app processes on one database: every job is created exactly once."""
    harness = Harness(db_url, data_dir)
    try:
        first = harness.runner(start=False, max_in_flight=3)
        harness.runner(max_in_flight=3)
        sub = first.submit("fake", req(n=10))
        first.start()
        jobs = harness.done(sub.job_ids, timeout=20)
        assert {j.status for j in jobs} == {"succeeded"}
        assert harness.world.creates == 10 and all(j.attempts == 1 for j in jobs)
        assert len({j.provider_job_id for j in jobs}) == 10
    finally:
        harness.close()

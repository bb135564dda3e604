"""The runner's claims and guarded transitions on a real database: every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from store_helpers import new_run, put_image

import clock
from core import db
from core.history.store import Store
from core.history.views import Billing, JobError, Money
from core.jobs.claims import JobClaims


@pytest.fixture
def store(db_url: str, data_dir: Path) -> Store:
    return Store(db_url, data_dir)


@pytest.fixture
def claims(store: Store) -> JobClaims:
    return JobClaims(store.engine)


def test_job_lifecycle_images_shared_once(store: Store, claims: JobClaims) -> None:
    _, (a, b) = new_run(store, jobs=2)
    for job_id in (a, b):
        assert claims.claim(job_id, "owner-1", 30) is not None
        assert claims.mark_submitting(job_id, "owner-1", expected_seconds=9)
        assert claims.mark_submitted(job_id, "owner-1", f"prov-{job_id[:4]}", progress=0)
        assert claims.update_progress(job_id, "owner-1", state="running", progress=40)
    shared = put_image(store, "same picture")
    own = put_image(store, "only a's")
    assert claims.finish(a, "owner-1", status="succeeded", billing=Billing("estimated"),
                        images=[(shared, "https://x/1"), (own, None)])
    assert claims.finish(b, "owner-1", status="succeeded", billing=Billing("billed", usd=Decimal("0.05")),
                        images=[(shared, None)])
    # Finishing twice changes nothing (the job is no longer active).
    assert not claims.finish(a, "owner-1", status="failed", billing=Billing("released"))

    ja, jb = store.get_jobs([a, b])
    assert ja.status == "succeeded" and ja.progress == 100 and ja.claimed_by is None and ja.attempts == 1
    assert [i.sha256 for i in ja.images] == [shared.sha256, own.sha256]
    assert ja.images[0].path.exists() and ja.images[0].thumb_path.exists()
    assert (ja.images[0].width, ja.images[0].height, ja.images[0].format) == (64, 48, "png")
    assert ja.billed == Money(Decimal("0.07"), None, None, estimated=True)
    assert jb.billed == Money(Decimal("0.05"), None, None, estimated=False)
    assert ja.submitted_at <= ja.finished_at and ja.elapsed_seconds() >= 0
    with db.read(store.engine) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.images)).scalar() == 2
        assert conn.execute(sa.select(sa.func.count()).select_from(db.job_images)).scalar() == 3


def test_transitions_need_the_claim(store: Store, claims: JobClaims) -> None:
    _, (job_id,) = new_run(store)
    assert not claims.mark_submitting(job_id, "nobody")
    claims.claim(job_id, "owner-1", 30)
    assert not claims.mark_submitting(job_id, "owner-2")
    assert not claims.finish(job_id, "owner-2", status="failed", billing=Billing("released"))
    assert store.get_job(job_id).status == "queued"

# --- claims ------------------------------------------------------------------------------------
def test_claims_live_expired_and_dead_owners(store: Store, claims: JobClaims) -> None:
    _, (a, b, c) = new_run(store, jobs=3)
    other_host = "elsewhere|1|1|abcd1234"
    assert claims.claim(a, other_host, 30) is not None
    assert claims.claim(a, "me", 30) is None  # held by a live lease elsewhere
    assert [j for j, _ in claims.claimable("me")] == [b, c]

    # An expired lease can be taken by anyone.
    with db.write(store.engine) as conn:
        conn.execute(db.jobs.update().where(db.jobs.c.id == a)
                     .values(claim_expires_at=clock.now() - timedelta(seconds=1)))
    assert a in [j for j, _ in claims.claimable("me")]
    assert claims.claim(a, "me", 30).claimed_by == "me"

    # A process on this host that is gone: its claim is taken at once, lease or not.
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead = f"{socket.gethostname()}|{proc.pid}||deadbeef"
    assert claims.claim(b, dead, 300) is not None
    assert b in [j for j, _ in claims.claimable("me")]
    assert claims.claim(b, "me", 30) is not None
    alive = f"{socket.gethostname()}|{os.getpid()}||cafe0000"
    assert claims.claim(c, alive, 300) is not None
    assert claims.claim(c, "me", 30) is None
    assert claims.renew_claims("me", 60) == 2
    assert claims.claimable("me", exclude_ids=[a, b]) == []


def test_only_one_of_many_concurrent_claims_wins(store: Store, claims: JobClaims) -> None:
    _, (job_id,) = new_run(store)
    barrier = threading.Barrier(8)
    won: list[str] = []

    def grab(owner: str) -> None:
        barrier.wait()
        if claims.claim(job_id, owner, 30) is not None:
            won.append(owner)

    threads = [threading.Thread(target=grab, args=(f"elsewhere|{i}|1|x",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    assert store.get_job(job_id).claimed_by == won[0]

# --- cancel ------------------------------------------------------------------------------------
def test_cancel_queued_releases_and_at_provider_is_requested(store: Store, claims: JobClaims) -> None:
    _, (queued, sent) = new_run(store, jobs=2, can_cancel=True)
    claims.claim(sent, "me", 30)
    claims.mark_submitting(sent, "me")
    claims.mark_submitted(sent, "me", "prov-1")
    assert claims.request_cancel(queued) == "canceled"
    assert claims.request_cancel(sent) == "requested"
    assert claims.cancel_requested(sent)
    assert claims.request_cancel(queued) == "finished"
    assert claims.request_cancel("0" * 32) == "missing"
    job = store.get_job(queued)
    assert job.status == "canceled" and job.billed.usd == 0
    ledger = {r["job_id"]: r for r in store.ledger_rows()}
    assert ledger[queued]["state"] == "released" and ledger[queued]["usd_nanos"] == 0
    assert ledger[sent]["state"] == "reserved"
    # A queued job that was canceled cannot be sent any more.
    assert not claims.mark_submitting(queued, "me")


def test_cancel_on_a_provider_that_cannot(store: Store, claims: JobClaims) -> None:
    _, (job_id,) = new_run(store, can_cancel=False)
    claims.claim(job_id, "me", 30)
    claims.mark_submitting(job_id, "me")
    assert claims.request_cancel(job_id) == "not_cancelable"
    assert not claims.cancel_requested(job_id)


def test_reopen_puts_a_job_with_an_id_back_to_polling(store: Store, claims: JobClaims) -> None:
    _, (job_id, no_id) = new_run(store, jobs=2)
    for j in (job_id, no_id):
        claims.claim(j, "me", 30)
        claims.mark_submitting(j, "me")
    claims.mark_submitted(job_id, "me", "prov-9")
    timeout = JobError("timeout", "No answer in time.", stage=None, retry_after=None, status_code=504, code="x",
                       sent=True)
    claims.finish(job_id, "me", status="unknown", billing=Billing("estimated"), error=timeout)
    claims.finish(no_id, "me", status="unknown", billing=Billing("estimated"), error=JobError("unknown"))
    assert claims.reopen(job_id)
    assert not claims.reopen(no_id)  # without a provider job id there is nothing to ask about
    job = store.get_job(job_id)
    assert job.status == "submitted" and job.error_kind is None and job.finished_at is None
    # Active again: none of the typed fields of the old error is left to be explained.
    assert job.error is None and (job.error_status_code, job.error_code, job.error_sent) == (None, None, None)


# --- the typed error --------------------------------------------------------------------------
def test_finish_stores_every_field_of_the_error(store: Store, claims: JobClaims) -> None:
    _, (job_id,) = new_run(store)
    claims.claim(job_id, "me", 30)
    claims.mark_submitting(job_id, "me")
    error = JobError("moderation", "Blocked.", detail='{"code": "blocked"}', stage="output", billed=True,
                     status_code=400, code="x" * 300, sent=True)
    assert claims.finish(job_id, "me", status="failed", billing=Billing("estimated"), error=error)
    job = store.get_job(job_id)
    assert job.error == JobError("moderation", "Blocked.", detail='{"code": "blocked"}', stage="output",
                                 billed=True, status_code=400, code="x" * 200, sent=True)  # a code is cut to fit
    assert job.error_retry_after is None


def test_a_passing_note_stays_unless_the_error_brings_its_own_text(store: Store, claims: JobClaims) -> None:
    _, (a, b) = new_run(store, jobs=2)
    for j in (a, b):
        claims.claim(j, "me", 30)
        claims.mark_submitting(j, "me")
        claims.note_error(j, "me", "status check failed (unavailable): 502")
    claims.finish(a, "me", status="failed", billing=Billing("estimated"), error=JobError("timeout", "Too long."))
    claims.finish(b, "me", status="failed", billing=Billing("estimated"),
                  error=JobError("job_failed", "Crashed.", detail="worker died"))
    assert store.get_job(a).error_detail == "status check failed (unavailable): 502"
    assert store.get_job(b).error_detail == "worker died"


# --- settling ----------------------------------------------------------------------------------
def test_settle_and_release_move_the_spend(store: Store, claims: JobClaims) -> None:
    _, (a, b, c) = new_run(store, jobs=3, usd="0.10")
    for j in (a, b, c):
        claims.claim(j, "me", 30)
    claims.finish(a, "me", status="succeeded", billing=Billing("billed", usd=Decimal("0.0425"),
                                                              amount=Decimal("42.5"), unit="credits"))
    claims.finish(b, "me", status="failed", billing=Billing("released"))
    claims.finish(c, "me", status="unknown", billing=Billing("estimated"))
    rows = {r["job_id"]: r for r in store.ledger_rows()}
    assert (rows[a]["state"], rows[a]["usd_nanos"], rows[a]["billed_amount"]) == ("billed", 42_500_000, "42.5")
    assert (rows[b]["state"], rows[b]["usd_nanos"]) == ("released", 0)
    assert (rows[c]["state"], rows[c]["usd_nanos"]) == ("estimated", 100_000_000)
    spend = store.spend()
    assert spend.total == Decimal("0.1425") and spend.pending == 0
    job = store.get_job(a)
    assert job.billed == Money(Decimal("0.0425"), Decimal("42.5"), "credits", estimated=False)

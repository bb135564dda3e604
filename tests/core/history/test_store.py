"""The history store, ledger and budget on a real database: every test runs on SQLite and on PostgreSQL."""

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
from core_fakes import FakePricing, FakeWorld, factory_for, png_bytes

import clock
from core import db
from core.history.files import ImageInfo
from core.history.store import Billing, JobFilter, Money, NewJob, Store
from core.jobs.runner import JobRunner
from core.spend.budget import BudgetExceeded
from core.spend.money import usd_to_nanos
from providers.types import ImageRequest, InputImage


@pytest.fixture
def store(db_url: str, data_dir: Path) -> Store:
    return Store(db_url, data_dir)


def new_run(store: Store, *, provider: str = "fake", model: str = "m1", prompt: str = "a red fox", jobs: int = 1,
            usd: str | None = "0.07", endpoint: str = "live", quality: str = "low", request: ImageRequest | None = None,
            **kw) -> tuple[str, list[str]]:
    request = request or ImageRequest(prompt=prompt, model=model, quality=quality)
    new_jobs = [NewJob(prompt=request.prompt, n=1, quality=request.quality, size=request.size,
                       estimate=Money(None if usd is None else Decimal(usd), None if usd is None else Decimal(usd),
                                      "USD"))
                for _ in range(jobs)]
    return store.create_run(provider=provider, endpoint=endpoint, request=request, jobs=new_jobs, **kw)


def put_image(store: Store, seed: str) -> ImageInfo:
    return store.files.put(png_bytes(seed))


# --- schema and migrations ------------------------------------------------------------------
def test_fresh_database_is_stamped_and_migrate_is_idempotent(store: Store) -> None:
    with db.read(store.engine) as conn:
        assert db.current_version(conn) == db.SCHEMA_VERSION
        assert conn.execute(sa.select(sa.func.count()).select_from(db.budget)).scalar() == 1
    assert db.migrate(store.engine) == db.SCHEMA_VERSION  # a second start changes nothing
    names = set(sa.inspect(store.engine).get_table_names())
    assert {"runs", "jobs", "images", "job_images", "ledger", "budget", "schema_version", "run_inputs",
            "experiments"} <= names
    if store.backend == "sqlite":
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_pending_migration_is_applied_once_and_keeps_data(store: Store) -> None:
    run_id, (job_id,) = new_run(store)

    def add_note(conn: sa.Connection) -> None:
        conn.exec_driver_sql("ALTER TABLE jobs ADD COLUMN note VARCHAR(50)")
        conn.exec_driver_sql("UPDATE jobs SET note = 'migrated'")

    nxt = db.SCHEMA_VERSION + 1  # the next version, whatever the current one is
    steps = {**db.MIGRATIONS, nxt: add_note}
    assert db.migrate(store.engine, steps) == nxt
    assert db.migrate(store.engine, steps) == nxt  # already there: the step does not run again
    with db.read(store.engine) as conn:
        assert conn.exec_driver_sql("SELECT note FROM jobs").scalar() == "migrated"
        assert db.current_version(conn) == nxt
    assert store.get_job(job_id).run_id == run_id


def test_newer_schema_is_refused(store: Store) -> None:
    with db.write(store.engine) as conn:
        conn.execute(db.schema_version.insert(), [{"version": db.SCHEMA_VERSION + 5, "applied_at": clock.now()}])
    with pytest.raises(db.SchemaTooNew, match="newer than this app"):
        db.migrate(store.engine)


def test_concurrent_first_start_migrates_once(db_url: str) -> None:
    engine = db.get_engine(db_url)
    errors: list[BaseException] = []

    def go() -> None:
        try:
            db.migrate(engine)
        except BaseException as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.read(engine) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.schema_version)).scalar() == 1


# --- runs, jobs, images ----------------------------------------------------------------------
def test_create_run_stores_request_without_bytes_and_rebuilds_it(store: Store) -> None:
    photo = png_bytes("input photo", (80, 60))
    mask = png_bytes("the mask", (80, 60))
    request = ImageRequest(prompt="{animal} in snow", model="m1", quality="high", size="3:2",
                           images=(InputImage(data=photo, mime="image/png", name="photo.png"),
                                   InputImage(url="https://example.test/ref.jpg", name="ref.jpg")),
                           mask=InputImage(data=mask, mime="image/png", name="mask.png"))
    jobs = [NewJob(prompt="fox in snow", n=1, quality="high", size="3:2", estimate=Money(Decimal("0.2")),
                   variables={"animal": "fox"}, expected_seconds=12.5),
            NewJob(prompt="owl in snow", n=1, quality="high", size="3:2", estimate=Money(Decimal("0.2")),
                   variables={"animal": "owl"})]
    run_id, job_ids = store.create_run(provider="fake", endpoint="emulator", request=request, jobs=jobs,
                                       template="{animal} in snow", variables=[{"animal": "fox"}, {"animal": "owl"}],
                                       can_cancel=True, label="snow", parent_job_id="p" * 32)
    run = store.get_run(run_id)
    assert run.kind == "edit" and run.template == "{animal} in snow" and run.endpoint == "emulator"
    assert run.variables == [{"animal": "fox"}, {"animal": "owl"}]
    assert [j.id for j in run.jobs] == job_ids
    assert [(i.role, i.sha256 is not None, i.url) for i in run.inputs] == [
        ("image", True, None), ("image", False, "https://example.test/ref.jpg"), ("mask", True, None)]
    assert run.inputs[0].path.read_bytes() == photo
    assert "data" not in repr(run.params) and run.params["images"][0]["sha256"] == run.inputs[0].sha256

    job = store.get_job(job_ids[0])
    assert job.status == "queued" and job.prompt == "fox in snow" and job.variables == {"animal": "fox"}
    assert job.expected_seconds == 12.5 and job.can_cancel and job.parent_job_id == "p" * 32
    assert job.estimate == Money(Decimal("0.2"), None, None)
    assert job.queued_at.tzinfo is not None

    rebuilt = store.load_request(job_ids[1])
    assert rebuilt.prompt == "owl in snow" and rebuilt.quality == "high" and rebuilt.size == "3:2"
    assert rebuilt.images[0].data == photo and rebuilt.images[1].url == "https://example.test/ref.jpg"
    assert rebuilt.mask is not None and rebuilt.mask.data == mask


def test_job_lifecycle_images_shared_once(store: Store) -> None:
    _, (a, b) = new_run(store, jobs=2)
    for job_id in (a, b):
        assert store.claim(job_id, "owner-1", 30) is not None
        assert store.mark_submitting(job_id, "owner-1", expected_seconds=9)
        assert store.mark_submitted(job_id, "owner-1", f"prov-{job_id[:4]}", progress=0)
        assert store.update_progress(job_id, "owner-1", state="running", progress=40)
    shared = put_image(store, "same picture")
    own = put_image(store, "only a's")
    assert store.finish(a, "owner-1", status="succeeded", billing=Billing("estimated"),
                        images=[(shared, "https://x/1"), (own, None)])
    assert store.finish(b, "owner-1", status="succeeded", billing=Billing("billed", usd=Decimal("0.05")),
                        images=[(shared, None)])
    # Finishing twice changes nothing (the job is no longer active).
    assert not store.finish(a, "owner-1", status="failed", billing=Billing("released"))

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


def test_transitions_need_the_claim(store: Store) -> None:
    _, (job_id,) = new_run(store)
    assert not store.mark_submitting(job_id, "nobody")
    store.claim(job_id, "owner-1", 30)
    assert not store.mark_submitting(job_id, "owner-2")
    assert not store.finish(job_id, "owner-2", status="failed", billing=Billing("released"))
    assert store.get_job(job_id).status == "queued"


# --- claims ------------------------------------------------------------------------------------
def test_claims_live_expired_and_dead_owners(store: Store) -> None:
    _, (a, b, c) = new_run(store, jobs=3)
    other_host = "elsewhere|1|1|abcd1234"
    assert store.claim(a, other_host, 30) is not None
    assert store.claim(a, "me", 30) is None  # held by a live lease elsewhere
    assert [j for j, _ in store.claimable("me")] == [b, c]

    # An expired lease can be taken by anyone.
    with db.write(store.engine) as conn:
        conn.execute(db.jobs.update().where(db.jobs.c.id == a)
                     .values(claim_expires_at=clock.now() - timedelta(seconds=1)))
    assert a in [j for j, _ in store.claimable("me")]
    assert store.claim(a, "me", 30)["claimed_by"] == "me"

    # A process on this host that is gone: its claim is taken at once, lease or not.
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead = f"{socket.gethostname()}|{proc.pid}||deadbeef"
    assert store.claim(b, dead, 300) is not None
    assert b in [j for j, _ in store.claimable("me")]
    assert store.claim(b, "me", 30) is not None
    alive = f"{socket.gethostname()}|{os.getpid()}||cafe0000"
    assert store.claim(c, alive, 300) is not None
    assert store.claim(c, "me", 30) is None
    assert store.renew_claims("me", 60) == 2
    assert store.claimable("me", exclude_ids=[a, b]) == []


def test_only_one_of_many_concurrent_claims_wins(store: Store) -> None:
    _, (job_id,) = new_run(store)
    barrier = threading.Barrier(8)
    won: list[str] = []

    def grab(owner: str) -> None:
        barrier.wait()
        if store.claim(job_id, owner, 30) is not None:
            won.append(owner)

    threads = [threading.Thread(target=grab, args=(f"elsewhere|{i}|1|x",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    assert store.get_job(job_id).claimed_by == won[0]


# --- cancel ------------------------------------------------------------------------------------
def test_cancel_queued_releases_and_at_provider_is_requested(store: Store) -> None:
    _, (queued, sent) = new_run(store, jobs=2, can_cancel=True)
    store.claim(sent, "me", 30)
    store.mark_submitting(sent, "me")
    store.mark_submitted(sent, "me", "prov-1")
    assert store.request_cancel(queued) == "canceled"
    assert store.request_cancel(sent) == "requested"
    assert store.cancel_requested(sent)
    assert store.request_cancel(queued) == "finished"
    assert store.request_cancel("0" * 32) == "missing"
    job = store.get_job(queued)
    assert job.status == "canceled" and job.billed.usd == 0
    ledger = {r["job_id"]: r for r in store.ledger_rows()}
    assert ledger[queued]["state"] == "released" and ledger[queued]["usd_nanos"] == 0
    assert ledger[sent]["state"] == "reserved"
    # A queued job that was canceled cannot be sent any more.
    assert not store.mark_submitting(queued, "me")


def test_cancel_on_a_provider_that_cannot(store: Store) -> None:
    _, (job_id,) = new_run(store, can_cancel=False)
    store.claim(job_id, "me", 30)
    store.mark_submitting(job_id, "me")
    assert store.request_cancel(job_id) == "not_cancelable"
    assert not store.cancel_requested(job_id)


def test_reopen_puts_a_job_with_an_id_back_to_polling(store: Store) -> None:
    _, (job_id, no_id) = new_run(store, jobs=2)
    for j in (job_id, no_id):
        store.claim(j, "me", 30)
        store.mark_submitting(j, "me")
    store.mark_submitted(job_id, "me", "prov-9")
    store.finish(job_id, "me", status="unknown", billing=Billing("estimated"), error_kind="unknown")
    store.finish(no_id, "me", status="unknown", billing=Billing("estimated"), error_kind="unknown")
    assert store.reopen(job_id)
    assert not store.reopen(no_id)  # without a provider job id there is nothing to ask about
    job = store.get_job(job_id)
    assert job.status == "submitted" and job.error_kind is None and job.finished_at is None


# --- history queries ----------------------------------------------------------------------------
def test_filters_paging_and_ratings(store: Store) -> None:
    exp = store.create_experiment("grid")
    base = clock.now() - timedelta(days=10)
    ids = []
    for i in range(30):
        provider = ("fake", "other")[i % 2]
        quality = ("low", "high", "medium")[i % 3]
        _, (job_id,) = new_run(store, provider=provider, model=("m1", "m2")[i % 2], quality=quality,
                               prompt=f"prompt {i} {'Red_Fox 100%' if i % 5 == 0 else 'owl'}",
                               now=base + timedelta(days=i % 10, minutes=i),
                               experiment_id=exp if i < 4 else None)
        ids.append(job_id)
    for j in ids[:6]:
        store.claim(j, "me", 30)
        store.mark_submitting(j, "me")
        store.finish(j, "me", status="succeeded", billing=Billing("estimated"), images=[(put_image(store, j), None)])
    store.set_rating(ids[0], 5)
    store.set_rating(ids[1], 2, idx=0)
    store.set_winner(ids[2], 0)

    assert store.count_jobs() == 30
    assert store.count_jobs(JobFilter(providers=("fake",))) == 15
    assert store.count_jobs(JobFilter(providers=("fake",), qualities=("low",))) == 5
    assert store.count_jobs(JobFilter(models=("m2",))) == 15
    assert store.count_jobs(JobFilter(statuses=("succeeded",))) == 6
    assert store.count_jobs(JobFilter(statuses=("queued",))) == 24
    assert store.count_jobs(JobFilter(text="red_fox 100%")) == 6  # case-insensitive, % and _ literal
    assert store.count_jobs(JobFilter(text="red%fox")) == 0
    assert store.count_jobs(JobFilter(min_rating=2)) == 2
    assert store.count_jobs(JobFilter(min_rating=4)) == 1
    assert store.count_jobs(JobFilter(winners_only=True)) == 1
    assert store.count_jobs(JobFilter(experiment_id=exp)) == 4
    assert store.count_jobs(JobFilter(endpoint="emulator")) == 0
    since, until = base + timedelta(days=2), base + timedelta(days=4)
    assert store.count_jobs(JobFilter(since=since, until=until)) == 6

    pages = [store.list_jobs(limit=7, offset=o) for o in range(0, 30, 7)]
    seen = [j.id for page in pages for j in page]
    assert sorted(seen) == sorted(ids) and len(seen) == 30
    queued = [j.queued_at for page in pages for j in page]
    assert queued == sorted(queued, reverse=True)
    rated = store.get_job(ids[1])
    assert rated.images[0].rating == 2 and not rated.images[0].winner
    assert store.get_job(ids[2]).images[0].winner
    with pytest.raises(ValueError):
        store.set_rating(ids[0], 6)


def test_learned_seconds_is_the_median_of_like_jobs(store: Store) -> None:
    assert store.learned_seconds("fake", "m1", "low", "live") is None
    now = clock.now()
    for seconds, quality in ((10, "low"), (30, "low"), (20, "low"), (500, "high")):
        _, (job_id,) = new_run(store, quality=quality)
        store.claim(job_id, "me", 30)
        store.finish(job_id, "me", status="succeeded", billing=Billing("estimated"))
        with db.write(store.engine) as conn:
            conn.execute(db.jobs.update().where(db.jobs.c.id == job_id)
                         .values(submitted_at=now - timedelta(seconds=seconds), finished_at=now))
    assert store.learned_seconds("fake", "m1", "low", "live") == pytest.approx(20)
    assert store.learned_seconds("fake", "m1", "high", "live") == pytest.approx(500)
    assert store.learned_seconds("fake", "m1", "low", "emulator") is None


# --- ledger and budget ---------------------------------------------------------------------------
def test_caps_from_settings_override_environment(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGE_STUDIO_BUDGET_USD_DAILY", "2.50")
    caps = store.get_caps()
    assert (caps.daily, caps.daily_source, caps.total, caps.total_source) == (Decimal("2.50"), "environment",
                                                                              None, None)
    store.set_caps(Decimal("1.25"), Decimal("100"))
    caps = store.get_caps()
    assert (caps.daily, caps.daily_source, caps.total, caps.total_source) == (Decimal("1.25"), "settings",
                                                                              Decimal("100"), "settings")
    store.set_caps(None, None)
    assert store.get_caps().daily == Decimal("2.50")
    with pytest.raises(ValueError):
        store.set_caps(Decimal("-1"), None)


def test_refusal_names_both_figures_and_inserts_nothing(store: Store) -> None:
    store.set_caps(Decimal("0.10"), None)
    new_run(store, usd="0.07")
    with pytest.raises(BudgetExceeded) as info:
        new_run(store, usd="0.07", jobs=2)
    message = str(info.value)
    assert "$0.14" in message and "$0.03" in message and "today" in message
    assert info.value.scope == "daily" and info.value.needed == Decimal("0.14") and info.value.left == Decimal("0.03")
    assert store.count_jobs() == 1 and len(store.ledger_rows()) == 1
    # Emulator spend has its own meter against the same caps.
    new_run(store, usd="0.07", endpoint="emulator")
    spend = store.spend("live")
    assert spend.today == Decimal("0.07") and spend.left_today == Decimal("0.03") and spend.pending == Decimal("0.07")

    store.set_caps(None, Decimal("0.08"))
    with pytest.raises(BudgetExceeded, match=r"\$0.01 is left of the total \$0.08 budget"):
        new_run(store, usd="0.02")
    with pytest.raises(BudgetExceeded, match="no price in USD"):
        new_run(store, usd=None)
    store.set_caps(None, None)
    new_run(store, usd=None)  # without a cap an unpriced request is fine


def test_settle_and_release_move_the_spend(store: Store) -> None:
    _, (a, b, c) = new_run(store, jobs=3, usd="0.10")
    for j in (a, b, c):
        store.claim(j, "me", 30)
    store.finish(a, "me", status="succeeded", billing=Billing("billed", usd=Decimal("0.0425"),
                                                              amount=Decimal("42.5"), unit="credits"))
    store.finish(b, "me", status="failed", billing=Billing("released"))
    store.finish(c, "me", status="unknown", billing=Billing("estimated"))
    rows = {r["job_id"]: r for r in store.ledger_rows()}
    assert (rows[a]["state"], rows[a]["usd_nanos"], rows[a]["billed_amount"]) == ("billed", 42_500_000, "42.5")
    assert (rows[b]["state"], rows[b]["usd_nanos"]) == ("released", 0)
    assert (rows[c]["state"], rows[c]["usd_nanos"]) == ("estimated", 100_000_000)
    spend = store.spend()
    assert spend.total == Decimal("0.1425") and spend.pending == 0
    job = store.get_job(a)
    assert job.billed == Money(Decimal("0.0425"), Decimal("42.5"), "credits", estimated=False)


def test_budget_race_twenty_threads_ten_fit(store: Store) -> None:
    """20 submissions at once against a budget that fits 10: exactly 10 accepted, the ledger exact."""
    store.set_caps(Decimal("1.00"), Decimal("0.70"))
    runner = JobRunner(store, factory_for(FakeWorld()), pricing=FakePricing(Decimal("0.07")))
    barrier = threading.Barrier(20)
    accepted: list[str] = []
    refused: list[str] = []
    other: list[BaseException] = []
    lock = threading.Lock()

    def submit(i: int) -> None:
        barrier.wait()
        try:
            sub = runner.submit("fake", ImageRequest(prompt=f"race {i}", model="m1", quality="low"))
        except BudgetExceeded as err:
            with lock:
                refused.append(str(err))
        except BaseException as err:  # noqa: BLE001 - any other failure fails the test below
            with lock:
                other.append(err)
        else:
            with lock:
                accepted.extend(sub.job_ids)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert other == []
    assert len(accepted) == 10 and len(refused) == 10
    assert all("$0.07" in m and "$0.00" in m and "total" in m for m in refused)
    rows = store.ledger_rows()
    assert len(rows) == 10 and {r["job_id"] for r in rows} == set(accepted)
    assert sum(r["usd_nanos"] for r in rows) == usd_to_nanos(Decimal("0.70"))
    with db.read(store.engine) as conn:
        total = conn.execute(sa.select(sa.func.sum(db.ledger.c.usd_nanos))).scalar()
    assert int(total) == 700_000_000
    assert store.spend().total == Decimal("0.70") and store.spend().left_total == 0
    assert store.count_jobs() == 10


# --- edit chains and delete --------------------------------------------------------------------
def test_edit_of_an_output_links_the_parent(store: Store) -> None:
    _, (first,) = new_run(store)
    store.claim(first, "me", 30)
    output = png_bytes("first output")
    store.finish(first, "me", status="succeeded", billing=Billing("estimated"),
                 images=[(store.files.put(output), None)])
    edit = ImageRequest(prompt="make it blue", model="m1", quality="low",
                        images=(InputImage(data=output, mime="image/png"),))
    run_id, (second,) = new_run(store, request=edit)
    assert store.get_run(run_id).parent_job_id == first
    assert store.get_job(second).parent_job_id == first


def test_delete_keeps_shared_files_and_the_spend(store: Store) -> None:
    _, (a, b, c) = new_run(store, jobs=3)
    shared, own = put_image(store, "shared"), put_image(store, "own")
    for job_id, imgs in ((a, [shared, own]), (b, [shared]), (c, [])):
        store.claim(job_id, "me", 30)
        store.finish(job_id, "me", status="succeeded", billing=Billing("estimated"),
                     images=[(i, None) for i in imgs])
    spent = store.spend().total
    assert store.delete_jobs([a]).deleted == (a,)
    assert store.get_job(a) is None and store.files.find(own.sha256) is None
    assert not (store.data_dir / own.thumb_path).exists()
    assert store.files.find(shared.sha256) is not None  # b still shows it
    assert store.get_job(b).images[0].path.exists()
    assert store.spend().total == spent  # history deleted, money still spent

    run_id, (active,) = new_run(store)
    refused = store.delete_jobs([active])  # still running: skipped, reported, kept
    assert refused.deleted == () and refused.skipped_active == (active,) and store.get_job(active)
    store.request_cancel(active)
    assert store.delete_run(run_id).deleted == (active,) and store.get_run(run_id) is None

    b_run = store.get_job(b).run_id
    store.delete_jobs([b, c])
    assert store.get_run(b_run) is None and store.files.find(shared.sha256) is None
    with db.read(store.engine) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.images)).scalar() == 0

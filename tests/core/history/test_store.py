"""The history store, ledger and budget on a real database: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from core_fakes import FakePricing, FakeWorld, factory_for, png_bytes
from store_helpers import new_run, put_image

import clock
from core import db
from core.history import ops as history_ops
from core.history.store import Store
from core.history.views import Billing, JobError, JobFilter, Money, NewJob
from core.jobs.claims import JobClaims
from core.jobs.runner import JobRunner
from core.spend.budget import BudgetExceeded
from core.spend.money import usd_to_nanos
from providers.types import ImageRequest, InputImage


@pytest.fixture
def store(db_url: str, data_dir: Path) -> Store:
    return Store(db_url, data_dir)


@pytest.fixture
def claims(store: Store) -> JobClaims:
    return JobClaims(store.engine)


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

# --- history queries ----------------------------------------------------------------------------
def test_filters_paging_and_ratings(store: Store, claims: JobClaims) -> None:
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
        claims.claim(j, "me", 30)
        claims.mark_submitting(j, "me")
        claims.finish(j, "me", status="succeeded", billing=Billing("estimated"), images=[(put_image(store, j), None)])
    store.set_rating(ids[0], 5)
    store.set_rating(ids[1], 2, idx=0)
    history_ops.mark_winner(store, ids, ids[2], 0)

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


def test_learned_seconds_is_the_median_of_like_jobs(store: Store, claims: JobClaims) -> None:
    assert store.learned_seconds("fake", "m1", "low", "live") is None
    now = clock.now()
    for seconds, quality in ((10, "low"), (30, "low"), (20, "low"), (500, "high")):
        _, (job_id,) = new_run(store, quality=quality)
        claims.claim(job_id, "me", 30)
        claims.finish(job_id, "me", status="succeeded", billing=Billing("estimated"))
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
    with pytest.raises(BudgetExceeded, match=r"\$0.0100 is left of the total \$0.0800 budget"):
        new_run(store, usd="0.02")
    with pytest.raises(BudgetExceeded, match="no price in USD"):
        new_run(store, usd=None)
    store.set_caps(None, None)
    new_run(store, usd=None)  # without a cap an unpriced request is fine


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
def test_edit_of_an_output_links_the_parent(store: Store, claims: JobClaims) -> None:
    _, (first,) = new_run(store)
    claims.claim(first, "me", 30)
    output = png_bytes("first output")
    claims.finish(first, "me", status="succeeded", billing=Billing("estimated"),
                 images=[(store.files.put(output), None)])
    edit = ImageRequest(prompt="make it blue", model="m1", quality="low",
                        images=(InputImage(data=output, mime="image/png"),))
    run_id, (second,) = new_run(store, request=edit)
    assert store.get_run(run_id).parent_job_id == first
    assert store.get_job(second).parent_job_id == first


def test_delete_keeps_shared_files_and_the_spend(store: Store, claims: JobClaims) -> None:
    _, (a, b, c) = new_run(store, jobs=3)
    shared, own = put_image(store, "shared"), put_image(store, "own")
    for job_id, imgs in ((a, [shared, own]), (b, [shared]), (c, [])):
        claims.claim(job_id, "me", 30)
        claims.finish(job_id, "me", status="succeeded", billing=Billing("estimated"),
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
    claims.request_cancel(active)
    assert store.delete_run(run_id).deleted == (active,) and store.get_run(run_id) is None

    b_run = store.get_job(b).run_id
    store.delete_jobs([b, c])
    assert store.get_run(b_run) is None and store.files.find(shared.sha256) is None
    with db.read(store.engine) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.images)).scalar() == 0


def test_a_job_nobody_holds_is_finished_with_its_error_texts(store: Store, claims: JobClaims) -> None:
    # What the tests' seeding and the benchmarks' own polling loop do, outside any runner.
    _, (free, held) = new_run(store, jobs=2)
    assert claims.finish(free, None, status="failed", billing=Billing("released"),
                         error=JobError("timeout", "Too slow.", "seeded"))
    job = store.get_job(free)
    assert (job.status, job.error_kind, job.error_message, job.error_detail) == ("failed", "timeout", "Too slow.",
                                                                                 "seeded")
    assert job.billed.usd == 0 and job.error_retry_after is None
    claims.claim(held, "me", 30)
    assert not claims.finish(held, None, status="failed", billing=Billing("released"))  # a runner holds it

"""The schema and its migrations on a real database: every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from store_helpers import drop_schema_7, kept_totals, ledger_sums, new_run, put_image

import clock
from core import db
from core.history import explain, search
from core.history.store import Store
from core.history.views import Billing, JobError, JobFilter
from core.jobs.claims import JobClaims


@pytest.fixture
def store(db_url: str, data_dir: Path) -> Store:
    return Store(db_url, data_dir)


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


# --- schema 3: the typed error columns ----------------------------------------------------------
def _job_columns(store: Store) -> set[str]:
    return {c["name"] for c in sa.inspect(store.engine).get_columns("jobs")}


def _back_to_version_2(store: Store) -> None:
    """Make this database what schema 2 made: schema 4's tables, 3's columns and the stamp go, the rows stay."""
    with db.write(store.engine) as conn:
        drop_schema_7(conn)
        db.metadata.drop_all(conn, tables=list(db.ACCOUNT_TABLES))  # schema 4's
        for column in db.ADDED_JOB_COLUMNS[3]:
            conn.exec_driver_sql(f"ALTER TABLE jobs DROP COLUMN {column}")
        # A fresh database is stamped once, with the version it was made at.
        conn.execute(db.schema_version.update().values(version=2))


def test_migration_to_v3_adds_the_error_fields_to_a_database_with_rows(store: Store) -> None:
    claims = JobClaims(store.engine)
    _, (limited, lost, done) = new_run(store, jobs=3)
    for job_id in (limited, lost, done):
        claims.claim(job_id, "me", 30)
        claims.mark_submitting(job_id, "me")
    # What schema 2 kept of an error: its kind, and the rest as text.
    claims.finish(limited, "me", status="failed", billing=Billing("released"),
                  error=JobError("rate_limited", "Slow down. Wait about 20 s and try again.", '{"code": "rate"}'))
    claims.finish(lost, "me", status="unknown", billing=Billing("estimated"),
                  error=JobError("unknown", "The app lost contact.", "rate_limited: Slow down.\n{}"))
    claims.finish(done, "me", status="succeeded", billing=Billing("estimated"), images=[(put_image(store, done), None)])
    _back_to_version_2(store)
    assert not _job_columns(store) & set(db.ADDED_JOB_COLUMNS[3])
    with db.read(store.engine) as conn:
        assert db.current_version(conn) == 2

    assert db.migrate(store.engine) == db.SCHEMA_VERSION
    assert set(db.ADDED_JOB_COLUMNS[3]) <= _job_columns(store)
    old_limit, old_lost, old_done = store.get_jobs([limited, lost, done])
    assert (old_limit.status, old_lost.status, old_done.status) == ("failed", "unknown", "succeeded")
    assert old_limit.error_message == "Slow down. Wait about 20 s and try again."
    assert old_limit.error is not None and old_limit.error.retry_after is None  # not recorded then: not invented
    assert len(old_done.images) == 1 and old_done.images[0].path.exists() and old_done.error is None
    assert store.spend().total == Decimal("0.14")  # the unknown and the succeeded job: estimates stand
    assert kept_totals(store) == ledger_sums(store)  # schema 7 summed the ledger it found

    # Old rows are explained from their kind alone: no wait time scraped from the message.
    assert explain.explain(old_limit).hint == "Wait a minute, then try again."
    assert explain.explain(old_lost).title == "Outcome unknown"
    assert explain.explain(old_done).title == "fake could not make this image"

    # And new rows keep the fields.
    _, (fresh,) = new_run(store)
    claims.claim(fresh, "me", 30)
    claims.mark_submitting(fresh, "me")
    claims.finish(fresh, "me", status="failed", billing=Billing("released"),
                  error=JobError("rate_limited", "Slow down.", retry_after=12.5, status_code=429, sent=True))
    assert store.get_job(fresh).error_retry_after == 12.5
    assert db.migrate(store.engine) == db.SCHEMA_VERSION  # once migrated, nothing runs again


# --- schema 7: the ledger's totals and the search index ------------------------------------------
def test_migration_to_v7_sums_the_ledger_and_indexes_the_prompts_there_are(store: Store) -> None:
    claims = JobClaims(store.engine)
    _, (billed, estimated, released, pending) = new_run(store, jobs=4, usd="0.25", prompt="Old Lighthouse")
    new_run(store, jobs=2, usd="0.10", endpoint="emulator", prompt="an owl")
    for job_id, billing in ((billed, Billing("billed", usd=Decimal("0.20"))), (estimated, Billing("estimated")),
                            (released, Billing("released"))):
        claims.claim(job_id, "me", 30)
        claims.finish(job_id, "me", status="succeeded" if billing.mode != "released" else "failed", billing=billing)
    before = (store.spend("live"), store.spend("emulator"))
    with db.write(store.engine) as conn:  # what schema 6 had
        drop_schema_7(conn)
        conn.execute(db.schema_version.update().values(version=6))
    assert "ledger_totals" not in sa.inspect(store.engine).get_table_names()

    assert db.migrate(store.engine) == db.SCHEMA_VERSION == 7
    assert kept_totals(store) == ledger_sums(store) == {"live": (700_000_000, 250_000_000),
                                                        "emulator": (200_000_000, 200_000_000)}
    assert (store.spend("live"), store.spend("emulator")) == before
    migrated = Store(store.url, store.data_dir)  # a process started after the migration
    assert migrated._indexed_search == (store.backend == "sqlite")
    with db.read(store.engine) as conn:
        if store.backend == "sqlite":
            assert conn.exec_driver_sql("SELECT count(*) FROM jobs_fts").scalar() == 6
            found = conn.execute(search.matching_job_ids("lighthouse")).scalars().all()
            assert set(found) == {billed, estimated, released, pending}
        else:
            assert conn.exec_driver_sql("SELECT 1 FROM pg_indexes WHERE indexname = %(n)s",
                                        {"n": search.PG_INDEX}).first() is not None
    assert migrated.count_jobs(JobFilter(text="LIGHTHOUSE")) == 4
    new_run(migrated, usd="0.05")  # later writes move the back-filled totals
    assert kept_totals(store) == ledger_sums(store)
    assert db.migrate(store.engine) == db.SCHEMA_VERSION  # once migrated, nothing runs again

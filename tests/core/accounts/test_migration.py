"""Schema 4 adds the accounts tables to a database made by schema 3, keeping what it holds."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from store_helpers import drop_schema_7, kept_totals, ledger_sums, new_run

from core import db
from core.accounts import Accounts
from core.accounts.sources import configured_roles
from core.history.store import Store
from core.history.views import JobFilter

ACCOUNT_TABLE_NAMES = {t.name for t in db.ACCOUNT_TABLES}


def test_a_schema_3_database_gets_the_accounts_tables(db_url: str, data_dir: Path) -> None:
    store = Store(db_url, data_dir)
    run_id, (job_id,) = new_run(store)
    with db.write(store.engine) as conn:  # what schema 3 made: no accounts tables, stamped 3
        drop_schema_7(conn)
        db.metadata.drop_all(conn, tables=list(db.ACCOUNT_TABLES))
        conn.execute(db.schema_version.update().values(version=3))
    assert not ACCOUNT_TABLE_NAMES & set(sa.inspect(store.engine).get_table_names())

    assert db.migrate(store.engine) == db.SCHEMA_VERSION
    assert ACCOUNT_TABLE_NAMES <= set(sa.inspect(store.engine).get_table_names())
    assert {i["name"] for i in sa.inspect(store.engine).get_indexes("account_sessions")} == {
        "ix_account_sessions_user"}
    with db.read(store.engine) as conn:
        assert [r.version for r in conn.execute(sa.select(db.schema_version.c.version)
                                                .order_by(db.schema_version.c.version))] == [
            *range(3, db.SCHEMA_VERSION + 1)]
    assert store.get_job(job_id).run_id == run_id  # the history is untouched
    assert kept_totals(store) == ledger_sums(store) == {"live": (70_000_000, 70_000_000)}  # schema 7 on the way
    assert Store(store.url, store.data_dir).count_jobs(JobFilter(text="Red Fox")) == 1
    rules = configured_roles({"IMAGE_STUDIO_OWNERS": "ana@example.com"}).rules
    assert Accounts(store.engine, lambda: rules).sign_in("ana@example.com").role == "owner"
    assert db.migrate(store.engine) == db.SCHEMA_VERSION  # once migrated, nothing runs again


def _columns(store: Store, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(store.engine).get_columns(table)}


def test_a_schema_4_database_gets_who_made_and_spent_what(db_url: str, data_dir: Path) -> None:
    """Schema 5: ownership columns, member caps and share links; old rows read as the operator's, private."""
    store = Store(db_url, data_dir)
    run_id, (job_id,) = new_run(store)
    with db.write(store.engine) as conn:  # what schema 4 made
        drop_schema_7(conn)
        db.metadata.drop_all(conn, tables=[db.shares])
        for table, names in db.OWNERSHIP_COLUMNS.items():
            for name in names:
                for index in (i for i in db.metadata.tables[table].indexes if name in i.columns):
                    conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index.name}")
                conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {name}")
        conn.execute(db.schema_version.update().values(version=4))
    assert "user_id" not in _columns(store, "jobs") and "shares" not in sa.inspect(store.engine).get_table_names()

    assert db.migrate(store.engine) == db.SCHEMA_VERSION  # 5 adds them; 6 (reviews) and 7 (totals) follow
    assert kept_totals(store) == ledger_sums(store) == {"live": (70_000_000, 70_000_000)}
    for table, names in db.OWNERSHIP_COLUMNS.items():
        assert set(names) <= _columns(store, table), table
    assert "ix_jobs_user" in {i["name"] for i in sa.inspect(store.engine).get_indexes("jobs")}
    old = store.get_job(job_id)
    assert old is not None and old.run_id == run_id
    assert (old.user_id, old.shared, old.key_holder) == (None, False, None)
    assert store.get_caps().member_daily is None
    assert db.migrate(store.engine) == db.SCHEMA_VERSION  # once migrated, nothing runs again

"""History's text search on its index (schema 7, ``core.history.search``): the same matches in the same order
as the plain ILIKE over every row, on SQLite (FTS5 trigram) and PostgreSQL (pg_trgm)."""

from __future__ import annotations

import logging
import random
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from store_helpers import new_run

from core import db
from core.history import search
from core.history import store as store_module
from core.history.rows import filtered
from core.history.store import Store
from core.history.views import JobFilter
from core.jobs.claims import JobClaims

PROMPTS = (
    "A lighthouse on a cliff at dawn, watercolor",
    "LIGHTHOUSE keeper's cat, 35mm film",
    "Product shot of a ceramic mug on oak, soft light",
    "100% cotton t_shirt mockup, red_fox print",
    "path C:\\images\\fox and 50%_off sign",
    'A "quoted" neon sign: OPEN late',
    "Äpfel und Birnen auf dem Tisch, ÉCOLE",
    "äpfel im korb, école primaire",
    "봄 축제 포스터, 벚꽃과 한글 타이포그래피",
    "emoji party 🎉🎈 with confetti",
    "x",
    "ab",
)
QUERIES = (
    "lighthouse", "LightHouse", "house", "ceramic mug", "100%", "t_shirt", "red_fox", "50%_", "%_o", "C:\\images",
    "\\", "\"quoted\"", "\"", "Äpfel", "äpfel", "ÉCOLE", "école", "축제 포", "🎉🎈", "a", "ab", "x", " on ", "zebra",
    "'s cat", "NEON", "o", "%", "_", "",
)


@pytest.fixture
def store(db_url: str, data_dir: Path) -> Store:
    return Store(db_url, data_dir)


def _unindexed(store: Store, flt: JobFilter) -> tuple[int, list[str]]:
    """What the search was before schema 7: ILIKE over every row (PostgreSQL: told to leave the index alone)."""
    order = (db.jobs.c.queued_at.desc(), db.jobs.c.id.desc())
    with db.read(store.engine) as conn:
        if store.backend == "postgresql":
            conn.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
            conn.exec_driver_sql("SET LOCAL enable_indexscan = off")
        count = conn.execute(filtered(sa.select(sa.func.count()).select_from(db.jobs), flt)).scalar_one()
        ids = list(conn.execute(filtered(sa.select(db.jobs.c.id), flt).order_by(*order)).scalars())
    return count, ids


def _searched(store: Store, flt: JobFilter, page: int = 7) -> tuple[int, list[str]]:
    """What the store answers, a page at a time as History reads it."""
    ids: list[str] = []
    while len(page_ids := [j.id for j in store.list_jobs(flt, limit=page, offset=len(ids))]) == page:
        ids += page_ids
    return store.count_jobs(flt), ids + page_ids


def _seed(store: Store, rng: random.Random, count: int = 60) -> list[str]:
    out = []
    for i in range(count):
        _, ids = new_run(store, prompt=rng.choice(PROMPTS) + f" #{i}", jobs=rng.randint(1, 2))
        out += ids
    return out


def test_the_index_finds_exactly_what_ilike_finds_in_the_same_order(store: Store, monkeypatch) -> None:
    if store.backend == "sqlite":
        assert store._indexed_search  # this Python's SQLite has FTS5 with the trigram tokenizer
    rng = random.Random(7)
    _seed(store, rng)
    # A window far smaller than the history: both ways a page is found (in the window, from the index) are taken.
    monkeypatch.setattr(store_module, "SEARCH_WINDOW", 20)
    substrings = [p[a:a + n] for p in PROMPTS for a, n in ((rng.randrange(len(p)), rng.randint(1, 9)),)]
    for text in (*QUERIES, *substrings, *(s.swapcase() for s in substrings)):
        flt = JobFilter(text=text)
        assert _searched(store, flt) == _unindexed(store, flt), repr(text)
    # And the figures themselves, where both backends agree (ASCII folds the same everywhere).
    assert store.count_jobs(JobFilter(text="LightHouse")) == _unindexed(store, JobFilter(text="lighthouse"))[0] > 0
    assert store.count_jobs(JobFilter(text="50%_")) == _unindexed(store, JobFilter(text="50%_off"))[0] > 0
    assert store.count_jobs(JobFilter(text="t%n")) == 0  # % and _ are literal, not wildcards ("a lighthouse on")
    # With the other filters too: provider, and the rows a signed-in member may see.
    _, own = new_run(store, prompt="A lighthouse of my own", provider="other", user_id="ann")
    for flt in (JobFilter(text="lighthouse", providers=("other",)), JobFilter(text="lighthouse", visible_to="ann")):
        assert _searched(store, flt) == _unindexed(store, flt) == (1, own)


def test_the_index_follows_every_insert_prompt_change_and_delete(store: Store, monkeypatch) -> None:
    monkeypatch.setattr(store_module, "SEARCH_WINDOW", 1)  # pages from the index, not the newest jobs
    run_a, (a1, a2) = new_run(store, prompt="a quiet harbour at night", jobs=2)
    _, (b,) = new_run(store, prompt="harbour seals on rocks")

    def found(text: str) -> set[str]:
        listed = {j.id for j in store.list_jobs(JobFilter(text=text), limit=100)}
        assert store.count_jobs(JobFilter(text=text)) == len(listed)
        return listed

    assert found("harbour") == {a1, a2, b}
    with db.write(store.engine) as conn:  # whoever changes a prompt, the index follows (a trigger)
        conn.execute(db.jobs.update().where(db.jobs.c.id == b).values(prompt="grey seals on a beach"))
    assert found("harbour") == {a1, a2} and found("grey seal") == {b}
    for job_id in (a1, a2):  # only finished jobs are deleted
        JobClaims(store.engine).request_cancel(job_id)
    assert store.delete_jobs([a1]).deleted == (a1,)
    assert found("harbour") == {a2}
    with db.write(store.engine) as conn:  # the run's last job goes by the foreign key's cascade
        conn.execute(db.runs.delete().where(db.runs.c.id == run_a))
    assert store.get_job(a2) is None
    assert found("harbour") == set() and found("seals") == {b}
    if store.backend == "sqlite":
        with db.read(store.engine) as conn:
            in_index = conn.exec_driver_sql("SELECT count(*) FROM jobs_fts").scalar()
            keys = conn.exec_driver_sql("SELECT job_id FROM jobs_search_keys").scalars().all()
        assert in_index == 1 and keys == [b]  # nothing left behind for the deleted jobs


def _plan(store: Store, flt: JobFilter) -> str:
    query = filtered(sa.select(sa.func.count()).select_from(db.jobs), flt, indexed=store._indexed_search)
    with db.read(store.engine) as conn:
        if store.backend == "sqlite":
            compiled = query.compile(dialect=conn.dialect)
            params = tuple(compiled.params[name] for name in compiled.positiontup or ())
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params).all()
            return "\n".join(str(r[-1]) for r in rows)
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a tiny table: say whether the index can be used
        compiled = query.compile(dialect=conn.dialect)
        return "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params).all())


def test_a_search_of_three_characters_or_more_uses_the_index(store: Store) -> None:
    _seed(store, random.Random(3), 10)
    plan = _plan(store, JobFilter(text="house"))
    assert ("jobs_fts VIRTUAL TABLE" if store.backend == "sqlite" else search.PG_INDEX) in plan, plan
    if store.backend == "sqlite":  # the trigram tokenizer finds nothing shorter: LIKE reads every row
        assert "jobs_fts" not in _plan(store, JobFilter(text="ho"))


def test_an_older_database_gets_the_index_filled_with_its_jobs(store: Store) -> None:
    _, old = new_run(store, prompt="an old lighthouse", jobs=3)
    with db.write(store.engine) as conn:  # what schema 6 had: no index
        search.drop(conn)
        conn.execute(db.schema_version.update().values(version=6))
    stale = Store(store.url, store.data_dir)
    assert not stale._indexed_search
    assert search.PG_INDEX not in _plan(stale, JobFilter(text="lighthouse"))
    assert db.migrate(store.engine) == db.SCHEMA_VERSION
    fresh = Store(store.url, store.data_dir)
    assert fresh._indexed_search == (store.backend == "sqlite")
    plan = _plan(fresh, JobFilter(text="lighthouse"))
    assert ("jobs_fts" if store.backend == "sqlite" else search.PG_INDEX) in plan, plan
    assert {j.id for j in fresh.list_jobs(JobFilter(text="LIGHTHOUSE"))} == set(old)
    new_run(fresh, prompt="a new lighthouse")  # and new jobs go into it
    assert fresh.count_jobs(JobFilter(text="lighthouse")) == 4


def test_an_sqlite_without_fts5_searches_with_like_as_before(sqlite_url: str, data_dir: Path, monkeypatch,
                                                             caplog) -> None:
    # The module this SQLite lacks is named instead of fts5: the same error as a build without it.
    monkeypatch.setattr(search, "_SQLITE_TABLES", (search._SQLITE_TABLES[0],
                                                   f"CREATE VIRTUAL TABLE {search.FTS} USING nofts(prompt)"))
    with caplog.at_level(logging.WARNING, logger=search.__name__):
        store = Store(sqlite_url, data_dir)
    assert "without an index" in caplog.text and "nofts" in caplog.text
    assert not store._indexed_search
    with db.read(store.engine) as conn:  # nothing half-made is left: no triggers writing to a missing table
        assert conn.exec_driver_sql("SELECT count(*) FROM sqlite_master WHERE name LIKE 'jobs_search%' "
                                    "OR name LIKE 'jobs_fts%'").scalar() == 0
    _, ids = new_run(store, prompt="A Lighthouse at dawn", jobs=2)
    new_run(store, prompt="an owl")
    assert {j.id for j in store.list_jobs(JobFilter(text="lighthouse"))} == set(ids)
    assert store.count_jobs(JobFilter(text="lighthouse")) == 2


@pytest.mark.postgres
def test_postgresql_without_the_right_to_create_pg_trgm_logs_and_searches_without_it(pg_server, data_dir: Path,
                                                                                    caplog) -> None:
    import psycopg

    name, role = f"t_{uuid.uuid4().hex[:12]}", f"r_{uuid.uuid4().hex[:12]}"
    admin = f"host=127.0.0.1 port={pg_server.port} user=postgres"
    pg_server.url(name)
    with psycopg.connect(f"{admin} dbname=postgres", autocommit=True) as c:
        c.execute(f"CREATE ROLE {role} LOGIN")
    with psycopg.connect(f"{admin} dbname={name}", autocommit=True) as c:
        c.execute(f"ALTER SCHEMA public OWNER TO {role}")  # may make tables, not extensions (no CREATE on the db)
    url = f"postgresql+psycopg://{role}@127.0.0.1:{pg_server.port}/{name}"
    try:
        with caplog.at_level(logging.WARNING, logger=search.__name__):
            store = Store(url, data_dir)
        assert "pg_trgm could not be created" in caplog.text
        assert db.migrate(store.engine) == db.SCHEMA_VERSION  # each start tries again, and keeps working
        _, ids = new_run(store, prompt="A Lighthouse at dawn", jobs=2)
        new_run(store, prompt="an owl")
        assert {j.id for j in store.list_jobs(JobFilter(text="lighthouse"))} == set(ids)
        with db.read(store.engine) as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM pg_indexes WHERE indexname = %(n)s",
                                        {"n": search.PG_INDEX}).scalar() == 0
    finally:
        db.dispose_engines(url)
        pg_server.drop(name)
        with psycopg.connect(f"{admin} dbname=postgres", autocommit=True) as c:
            c.execute(f"DROP ROLE IF EXISTS {role}")

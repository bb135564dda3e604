"""The index behind History's text search (schema 7), so a search does not read every prompt.

History's search is a case-insensitive substring match of ``jobs.prompt``
(``rows.filtered``: ILIKE with % _ \\ literal). That predicate stays the one
that decides; the index only narrows the rows it is tried on:

- **SQLite**: an FTS5 table over the prompts with the ``trigram`` tokenizer, so
  a query of 3 or more characters is a phrase of trigrams (a substring). The
  tokenizer folds case for all of Unicode while SQLite's LIKE folds ASCII only,
  so what it finds is a superset of what LIKE matches and the LIKE after it
  gives exactly the old results. FTS5 keys a row by an integer; ``jobs`` has a
  text key and its implicit rowid is not promised to survive a VACUUM, so
  ``jobs_search_keys`` (an INTEGER PRIMARY KEY, which is) pairs each job id with
  its FTS row. Triggers on ``jobs`` keep both in step with every insert,
  delete (a run's cascade too) and change of a prompt, whoever writes.
  Shorter queries, or an SQLite without FTS5 or the trigram tokenizer, use the
  plain LIKE over every row, as before.
- **PostgreSQL**: a GIN index with ``pg_trgm``'s ``gin_trgm_ops`` on
  ``jobs.prompt``, which ILIKE '%x%' uses as it is. Without the right to create
  the extension the app logs it and searches without the index; every start
  tries again (``db.migrate`` calls :func:`ensure`).

This module names no table of ``core.db`` (which imports it): the SQL is written out.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["MIN_CHARS", "available", "drop", "ensure", "matching_job_ids", "usable"]

log = logging.getLogger(__name__)

MIN_CHARS = 3  # the trigram tokenizer finds nothing shorter

FTS = "jobs_fts"
KEYS = "jobs_search_keys"
PG_INDEX = "ix_jobs_prompt_trgm"
TRIGGERS = ("jobs_search_insert", "jobs_search_delete", "jobs_search_update")

_SQLITE_TABLES = (
    f"CREATE TABLE {KEYS} (fts_rowid INTEGER PRIMARY KEY, job_id VARCHAR(32) NOT NULL UNIQUE)",
    f"CREATE VIRTUAL TABLE {FTS} USING fts5(prompt, tokenize='trigram')",
)
_KEY_OF = f"(SELECT fts_rowid FROM {KEYS} WHERE job_id = {{}}.id)"
_SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER {TRIGGERS[0]} AFTER INSERT ON jobs BEGIN
        INSERT INTO {KEYS} (job_id) VALUES (new.id);
        INSERT INTO {FTS} (rowid, prompt) VALUES ({_KEY_OF.format("new")}, new.prompt);
    END""",
    f"""CREATE TRIGGER {TRIGGERS[1]} AFTER DELETE ON jobs BEGIN
        DELETE FROM {FTS} WHERE rowid = {_KEY_OF.format("old")};
        DELETE FROM {KEYS} WHERE job_id = old.id;
    END""",
    # Fires only when an UPDATE sets one of these columns: the runner's many updates never do.
    f"""CREATE TRIGGER {TRIGGERS[2]} AFTER UPDATE OF id, prompt ON jobs BEGIN
        UPDATE {KEYS} SET job_id = new.id WHERE job_id = old.id;
        UPDATE {FTS} SET prompt = new.prompt WHERE rowid = {_KEY_OF.format("new")};
    END""",
)
_SQLITE_BACKFILL = (
    f"INSERT INTO {KEYS} (job_id) SELECT id FROM jobs",
    f"INSERT INTO {FTS} (rowid, prompt) SELECT k.fts_rowid, j.prompt FROM jobs j JOIN {KEYS} k ON k.job_id = j.id",
)

_fts = sa.table(FTS, sa.column("rowid"), sa.column(FTS))
_keys = sa.table(KEYS, sa.column("fts_rowid"), sa.column("job_id"))


def available(conn: Connection) -> bool:
    """Whether this database has the SQLite index (PostgreSQL's needs nothing of the query)."""
    return conn.dialect.name == "sqlite" and _sqlite_has(conn, "table", FTS)


def _sqlite_has(conn: Connection, kind: str, name: str) -> bool:
    found = conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE type = ? AND name = ?", (kind, name)).first()
    return found is not None


def ensure(conn: Connection) -> None:
    """Create the index (and fill it from the jobs there are) where it is missing; cheap when present."""
    if conn.dialect.name == "sqlite":
        _ensure_sqlite(conn)
    elif conn.dialect.name == "postgresql":
        _ensure_postgresql(conn)


def _ensure_sqlite(conn: Connection) -> None:
    if _sqlite_has(conn, "table", FTS) and all(_sqlite_has(conn, "trigger", t) for t in TRIGGERS):
        return
    drop(conn)  # a half-made index (or none) is rebuilt whole
    try:
        with conn.begin_nested():
            for statement in _SQLITE_TABLES:
                conn.exec_driver_sql(statement)
    except sa.exc.OperationalError as err:  # no fts5 module, or no trigram tokenizer (SQLite < 3.34)
        log.warning("History search runs without an index: this SQLite cannot make one (%s)", err.orig)
        return
    for statement in (*_SQLITE_TRIGGERS, *_SQLITE_BACKFILL):
        conn.exec_driver_sql(statement)


def _ensure_postgresql(conn: Connection) -> None:
    present = conn.exec_driver_sql("SELECT 1 FROM pg_indexes WHERE indexname = %(name)s", {"name": PG_INDEX}).first()
    if present is not None:
        return
    try:
        with conn.begin_nested():  # a refusal must not abort the migration's transaction
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {PG_INDEX} ON jobs USING gin (prompt gin_trgm_ops)")
    except sa.exc.DBAPIError as err:
        log.warning("History search runs without an index: pg_trgm could not be created (%s). "
                    "A superuser can run CREATE EXTENSION pg_trgm in this database.", err.orig)


def drop(conn: Connection) -> None:
    """Remove the index (what schema 6 had: tests rebuild older databases with it)."""
    if conn.dialect.name == "sqlite":
        for trigger in TRIGGERS:
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger}")
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {FTS}")
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {KEYS}")
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {PG_INDEX}")


def usable(text: str) -> bool:
    """Whether the SQLite index can narrow a search for ``text`` (else LIKE reads every row)."""
    return len(text) >= MIN_CHARS and "\x00" not in text


def matching_job_ids(text: str) -> sa.Select[tuple[str]]:
    """Ids of the jobs whose prompt may contain ``text`` (a superset: LIKE decides), from the SQLite index."""
    phrase = '"' + text.replace('"', '""') + '"'  # one FTS5 string: every other character is literal
    rowids = sa.select(_fts.c.rowid).where(_fts.c[FTS].match(phrase))
    return sa.select(_keys.c.job_id).where(_keys.c.fts_rowid.in_(rowids))

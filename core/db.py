"""The history database: schema, migrations, engines.

SQLite (WAL) in the data directory by default, PostgreSQL when
``IMAGE_STUDIO_DATABASE_URL`` names one. Everything goes through SQLAlchemy
Core with short transactions: :func:`read` for snapshots, :func:`write` for
changes. On SQLite a write transaction starts with ``BEGIN IMMEDIATE`` so a
read-then-write (the budget check, a claim) can never be overtaken by another
writer between its read and its write; on PostgreSQL the same guarantee comes
from a row lock (see ``core.spend.budget``) or a conditional ``UPDATE``.

Schema changes: a fresh database gets the current schema and is stamped
``SCHEMA_VERSION``; an older one gets each pending migration in ``MIGRATIONS``
in order, inside one transaction, under a lock so several processes starting
at once migrate it once. To change the schema: edit the tables below, bump
``SCHEMA_VERSION`` and add the migration that brings version N-1 to N.

Two things are derived and kept in step on every write (schema 7, so a Studio
rerun or a search does not grow with the history): ``ledger_totals``, written
by ``core.spend.budget`` in the transaction of each ledger write, and History's
search index (``core.history.search``: triggers on SQLite, a ``pg_trgm`` index
on PostgreSQL), which :func:`migrate` makes sure of at every start.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

import clock
from core.history import search
from core.jobs.lifecycle import ACTIVE_STATES, FINISHED_STATES, JOB_STATES

__all__ = [
    "ACCOUNT_TABLES", "ACTIVE_STATES", "ADDED_JOB_COLUMNS", "COUNTING_STATES", "FINISHED_STATES", "JOB_STATES",
    "MIGRATIONS", "OWNERSHIP_COLUMNS", "REVIEW_TABLES", "SCHEMA_VERSION", "SchemaTooNew", "account_sessions", "as_utc",
    "budget", "dispose_engines", "edit_spill", "experiments", "get_engine", "images", "job_images", "jobs", "ledger",
    "ledger_totals", "metadata", "migrate", "normalize_url", "read", "recount_ledger_totals", "review_items",
    "review_votes", "reviews", "role_grants", "run_inputs", "runs", "schema_version", "shares", "stored_keys", "users",
    "write",
]

# The job states (JOB_STATES, ACTIVE_STATES, FINISHED_STATES) live in core.jobs.lifecycle.

SCHEMA_VERSION = 7


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC in Python on both backends (SQLite keeps no offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite compares the stored text: keep one format (no offset) so order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return as_utc(value)


ID = sa.String(32)  # uuid4 hex: unique across databases, so idempotency keys never collide
Nanos = sa.BigInteger  # USD nano-dollars (core.spend.money)

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", UTCDateTime, nullable=False),
)

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, default=""),
    sa.Column("notes", sa.Text, nullable=False, default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("user_id", sa.String(40), nullable=True),  # who made it (schema 5; NULL: before accounts)
    sa.Column("shared", sa.Boolean, nullable=True),  # True: the whole team sees it (schema 5)
)

# What a person asked for, once per click of "Generate".
runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # generate / edit
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("endpoint", sa.String(16), nullable=False),  # live / emulator: never the key
    sa.Column("prompt", sa.Text, nullable=False),  # the prompt, or the template when there is one
    sa.Column("template", sa.Text, nullable=True),
    sa.Column("variables", sa.JSON, nullable=True),  # one mapping per prompt rendered from the template
    sa.Column("params", sa.JSON, nullable=False),  # ImageRequest.params(): no bytes, no secrets
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("label", sa.String(200), nullable=True),
    sa.Column("experiment_id", ID, sa.ForeignKey("experiments.id", ondelete="SET NULL"), nullable=True),
    # Edit chains: the job whose output this run edits (no FK: history may be deleted).
    sa.Column("parent_job_id", ID, nullable=True),
    sa.Column("user_id", sa.String(40), nullable=True),  # who asked (schema 5; NULL: before accounts)
    sa.Index("ix_runs_created", "created_at"),
    sa.Index("ix_runs_experiment", "experiment_id"),
    sa.Index("ix_runs_parent", "parent_job_id"),
)

# Input images of an edit, by content hash (the bytes are in the file store) or URL.
run_inputs = sa.Table(
    "run_inputs",
    metadata,
    sa.Column("run_id", ID, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("role", sa.String(8), nullable=False),  # image / mask
    sa.Column("sha256", sa.String(64), nullable=True),
    sa.Column("url", sa.Text, nullable=True),
    sa.Column("mime", sa.String(32), nullable=True),
    sa.Column("name", sa.String(200), nullable=True),
    sa.Index("ix_run_inputs_sha", "sha256"),
)

# One provider call. Columns the History page filters on are copied from the run.
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("run_id", ID, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("quality", sa.String(16), nullable=False),
    sa.Column("size", sa.String(32), nullable=False),
    sa.Column("endpoint", sa.String(16), nullable=False),
    sa.Column("prompt", sa.Text, nullable=False),  # rendered for this job
    sa.Column("variables", sa.JSON, nullable=True),
    sa.Column("n", sa.Integer, nullable=False),  # images asked of this one call
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("provider_job_id", sa.String(200), nullable=True),
    sa.Column("idempotency_key", sa.String(64), nullable=False),
    sa.Column("progress", sa.Float, nullable=True),
    sa.Column("expected_seconds", sa.Float, nullable=True),
    sa.Column("can_cancel", sa.Boolean, nullable=False, default=False),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),  # job-creating requests sent
    sa.Column("queued_at", UTCDateTime, nullable=False),
    sa.Column("submitted_at", UTCDateTime, nullable=True),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    # Seconds from submission until the provider was done, midway between the last "not done" and the
    # first "done" answer: the history polling learns from (finished_at also holds our download time).
    sa.Column("provider_seconds", sa.Float, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("error_kind", sa.String(32), nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("error_detail", sa.Text, nullable=True),  # the provider's own text, or the latest passing trouble
    # The typed fields of the provider's error (core.history.views.JobError), so the explanation
    # a person reads never has to be parsed back out of the message (schema 3).
    sa.Column("error_stage", sa.String(16), nullable=True),  # moderation: input / output
    sa.Column("error_billed", sa.Boolean, nullable=True),  # the provider's word on charging the failure
    sa.Column("error_retry_after", sa.Float, nullable=True),  # seconds the provider asked to wait
    sa.Column("error_status_code", sa.Integer, nullable=True),
    sa.Column("error_code", sa.String(200), nullable=True),  # the provider's own error code
    sa.Column("error_sent", sa.Boolean, nullable=True),  # the failed request may have reached the provider
    # Money, denormalised from the ledger for display (the ledger is what budgets sum).
    sa.Column("estimate_usd_nanos", Nanos, nullable=True),
    sa.Column("estimate_amount", sa.String(40), nullable=True),  # Decimal as text: exact on SQLite too
    sa.Column("estimate_unit", sa.String(16), nullable=True),
    sa.Column("billed_usd_nanos", Nanos, nullable=True),
    sa.Column("billed_amount", sa.String(40), nullable=True),
    sa.Column("billed_unit", sa.String(16), nullable=True),
    sa.Column("billed_estimated", sa.Boolean, nullable=True),  # True: no report, the estimate stands
    sa.Column("billed_raw", sa.JSON, nullable=True),
    # The lease that makes one runner own the job (several app processes may share PostgreSQL).
    sa.Column("claimed_by", sa.String(200), nullable=True),
    sa.Column("claim_expires_at", UTCDateTime, nullable=True),
    sa.Column("rating", sa.SmallInteger, nullable=True),
    sa.Column("parent_job_id", ID, nullable=True),
    # Who made it, whether the team sees it, and whose key it is sent and followed with (schema 5):
    # key_holder is a stored key's holder (a user id or "team", core.accounts.keys), "config" (the
    # operator's secrets/environment, only without sign-in), "session" (typed in one session, kept in
    # that runner's memory), or NULL (the emulator).
    sa.Column("user_id", sa.String(40), nullable=True),
    sa.Column("shared", sa.Boolean, nullable=True),
    sa.Column("key_holder", sa.String(40), nullable=True),
    sa.Index("ix_jobs_status_queued", "status", "queued_at"),
    sa.Index("ix_jobs_queued", "queued_at"),
    sa.Index("ix_jobs_run", "run_id", "seq"),
    sa.Index("ix_jobs_learn", "provider", "model", "quality", "endpoint", "status", "finished_at"),
    sa.Index("ix_jobs_model_queued", "model", "queued_at"),
    sa.Index("ix_jobs_claim", "claimed_by"),
    sa.Index("ix_jobs_rating", "rating"),
    sa.Index("ix_jobs_parent", "parent_job_id"),
    sa.Index("ix_jobs_user", "user_id", "queued_at"),
)

# One file per distinct image content; jobs share it through job_images.
images = sa.Table(
    "images",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("format", sa.String(8), nullable=False),
    sa.Column("width", sa.Integer, nullable=True),
    sa.Column("height", sa.Integer, nullable=True),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("path", sa.String(300), nullable=False),  # relative to the data directory
    sa.Column("thumb_path", sa.String(300), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

job_images = sa.Table(
    "job_images",
    metadata,
    sa.Column("job_id", ID, sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("sha256", sa.String(64), sa.ForeignKey("images.sha256"), nullable=False),
    sa.Column("source_url", sa.Text, nullable=True),
    sa.Column("rating", sa.SmallInteger, nullable=True),
    sa.Column("winner", sa.Boolean, nullable=False, default=False),
    sa.Index("ix_job_images_sha", "sha256"),
)

# Money committed per job. No FK to jobs: deleting history must not give budget back.
ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("job_id", ID, primary_key=True),
    sa.Column("run_id", ID, nullable=False),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("endpoint", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),  # the day the spend counts against
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # reserved -> billed (provider reported) | estimated (no report: the estimate stands) | released
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("reserved_usd_nanos", Nanos, nullable=False),
    sa.Column("usd_nanos", Nanos, nullable=False),  # what counts against the budget now
    sa.Column("billed_amount", sa.String(40), nullable=True),
    sa.Column("billed_unit", sa.String(16), nullable=True),
    sa.Column("user_id", sa.String(40), nullable=True),  # who spent it (schema 5; NULL: before accounts)
    sa.Index("ix_ledger_endpoint_created", "endpoint", "created_at"),
    sa.Index("ix_ledger_user_created", "user_id", "created_at"),
)

# What the ledger sums to per endpoint (schema 7), kept in the transaction of every ledger write
# (core.spend.budget), so the budget's totals cost one row however long the ledger grows.
ledger_totals = sa.Table(
    "ledger_totals",
    metadata,
    sa.Column("endpoint", sa.String(16), primary_key=True),
    sa.Column("spent_usd_nanos", Nanos, nullable=False),  # usd_nanos of rows not released
    sa.Column("pending_usd_nanos", Nanos, nullable=False),  # of which still reserved
)

COUNTING_STATES = ("reserved", "billed", "estimated")  # the ledger states that count against a budget


def recount_ledger_totals(conn: Connection) -> None:
    """``ledger_totals`` summed afresh from the ledger (schema 7's back-fill; seeds writing rows directly)."""
    lg = ledger.c
    counted = sa.case((lg.state.in_(COUNTING_STATES), lg.usd_nanos), else_=0)
    pending = sa.case((lg.state == "reserved", lg.usd_nanos), else_=0)
    sums = sa.select(lg.endpoint, sa.func.coalesce(sa.func.sum(counted), 0),
                     sa.func.coalesce(sa.func.sum(pending), 0)).group_by(lg.endpoint)
    conn.execute(ledger_totals.delete())
    conn.execute(ledger_totals.insert().from_select(["endpoint", "spent_usd_nanos", "pending_usd_nanos"], sums))


# The budget caps set in Settings (NULL: fall back on the environment). Its single
# row is also the lock that serialises check-and-reserve on PostgreSQL.
budget = sa.Table(
    "budget",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("daily_usd_nanos", Nanos, nullable=True),
    sa.Column("total_usd_nanos", Nanos, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("member_daily_usd_nanos", Nanos, nullable=True),  # each member's own daily cap (schema 5)
)


# --- accounts (schema 4; core.accounts reads and writes them) ------------------------
# Everyone who has signed in, by their email as the identity provider gave it (lowercased).
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False, default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),  # the first sign-in
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
)

# Roles an owner gave in the app, by email or "@domain"; the configured lists are the floor.
role_grants = sa.Table(
    "role_grants",
    metadata,
    sa.Column("pattern", sa.String(320), primary_key=True),  # an email or "@domain", lowercased
    sa.Column("role", sa.String(8), nullable=False),  # owner / maker / viewer
    sa.Column("granted_by", sa.String(320), nullable=False),  # the owner's email
    sa.Column("granted_at", UTCDateTime, nullable=False),
)

# One signed-in browser session (its id is the app's own, not Streamlit's), so every process knows who it is.
account_sessions = sa.Table(
    "account_sessions",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("user_id", ID, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime, nullable=True),  # logged out
    sa.Index("ix_account_sessions_user", "user_id", "last_seen_at"),
)

# Provider keys, encrypted (core.accounts.crypto: Fernet under IMAGE_STUDIO_SECRET_KEY); never in clear.
stored_keys = sa.Table(
    "stored_keys",
    metadata,
    sa.Column("holder", sa.String(40), primary_key=True),  # a user id, or "team"
    sa.Column("provider", sa.String(32), primary_key=True),
    sa.Column("token", sa.Text, nullable=False),  # the Fernet token (the key, bound to holder and provider)
    sa.Column("set_by", sa.String(320), nullable=True),  # who typed it (an email), for "set by ... on ..."
    sa.Column("set_at", UTCDateTime, nullable=False),
    sa.Column("rotated_at", UTCDateTime, nullable=True),  # last re-encrypted with the newest secret
)

ACCOUNT_TABLES = (users, role_grants, account_sessions, stored_keys)

# A link to one result or experiment (schema 5): whoever signed in opens it, read-only.
shares = sa.Table(
    "shares",
    metadata,
    sa.Column("token", sa.String(64), primary_key=True),  # secrets.token_urlsafe: the link's secret part
    sa.Column("kind", sa.String(12), nullable=False),  # job / experiment
    sa.Column("target_id", ID, nullable=False),
    sa.Column("created_by", sa.String(40), nullable=False),  # a user id
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_shares_target", "kind", "target_id"),
)

# Columns schema 5 added to older tables (who made and spent what, whose key, shared).
OWNERSHIP_COLUMNS: dict[str, tuple[str, ...]] = {
    "runs": ("user_id",),
    "jobs": ("user_id", "shared", "key_holder"),
    "experiments": ("user_id", "shared"),
    "ledger": ("user_id",),
    "budget": ("member_daily_usd_nanos",),
}


# --- blind reviews and edit spill (schema 6; core.review reads and writes them) -------
# A review: images people vote on in pairs through a link carrying ``token`` (unguessable).
reviews = sa.Table(
    "reviews",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("token", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False, default=""),
    sa.Column("created_by", sa.String(40), nullable=False),  # a users.id, or "local"
    sa.Column("created_by_email", sa.String(320), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),  # left/right and tie-breaks of the schedule
    sa.Column("closed_at", UTCDateTime, nullable=True),
    sa.Column("closed_by", sa.String(40), nullable=True),
)

# The images of a review. The candidate and its price are for the results only: never sent to a voter.
review_items = sa.Table(
    "review_items",
    metadata,
    sa.Column("review_id", ID, sa.ForeignKey("reviews.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("job_id", ID, nullable=False),  # no FK: deleting history must not rewrite a review's votes
    sa.Column("image_idx", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),  # the file, kept while the review is
    sa.Column("prompt", sa.Text, nullable=False),  # pairs are only ever of one prompt
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("quality", sa.String(16), nullable=False),
    sa.Column("price_usd", sa.String(40), nullable=True),  # per image, Decimal as text; NULL: not known
)

# One vote per voter per pair (item_a < item_b whichever side each was shown on).
review_votes = sa.Table(
    "review_votes",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("review_id", ID, sa.ForeignKey("reviews.id", ondelete="CASCADE"), nullable=False),
    sa.Column("voter", sa.String(80), nullable=False),  # "user:<users.id>" or "browser:<random id>"
    sa.Column("voter_email", sa.String(320), nullable=True),
    sa.Column("item_a", sa.Integer, nullable=False),
    sa.Column("item_b", sa.Integer, nullable=False),
    sa.Column("left_item", sa.Integer, nullable=False),  # as shown
    sa.Column("right_item", sa.Integer, nullable=False),
    sa.Column("choice", sa.String(8), nullable=False),  # left / right / tie
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("review_id", "voter", "item_a", "item_b", name="uq_review_votes_pair"),
    sa.Index("ix_review_votes_review", "review_id", "item_a", "item_b"),
)

# How far a masked edit's result spilled outside its mask, measured once when it was stored.
edit_spill = sa.Table(
    "edit_spill",
    metadata,
    sa.Column("job_id", ID, primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("fraction", sa.Float, nullable=False),  # changed / total outside the mask
    sa.Column("mean_change", sa.Float, nullable=False),  # 0..1 of full scale
    sa.Column("changed", sa.BigInteger, nullable=False),
    sa.Column("total", sa.BigInteger, nullable=False),
    sa.Column("resized", sa.Boolean, nullable=False),
    sa.Column("computed_at", UTCDateTime, nullable=False),
    sa.ForeignKeyConstraint(["job_id", "idx"], ["job_images.job_id", "job_images.idx"], ondelete="CASCADE"),
)

REVIEW_TABLES = (reviews, review_items, review_votes, edit_spill)


# --- engines ------------------------------------------------------------------------
_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def normalize_url(url: str) -> str:
    """Pick the installed PostgreSQL driver (psycopg 3) when the URL names none."""
    url = url.strip()
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def get_engine(url: str) -> Engine:
    """One engine per URL per process (each holds a connection pool)."""
    url = normalize_url(url)
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _make_engine(url)
            _engines[url] = engine
        return engine


def dispose_engines(url: str | None = None) -> None:
    """Close pooled connections (tests drop databases; a child process after fork)."""
    with _engines_lock:
        keys = [normalize_url(url)] if url else list(_engines)
        for key in keys:
            engine = _engines.pop(key, None)
            if engine is not None:
                engine.dispose()


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            pool_size=8,
            max_overflow=16,
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event below decide how transactions start.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get("studio_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=16)


@contextlib.contextmanager
def read(engine: Engine) -> Iterator[Connection]:
    """A short read transaction (one consistent snapshot on SQLite)."""
    with engine.connect() as conn, conn.begin():
        yield conn


# SQLite has one writer at a time, and a writer that finds the lock taken sleeps in SQLite's busy handler
# (1, 2, 5 ... 100 ms between tries) however soon the lock frees. With a room of sessions the runner's
# threads queued there for seconds (issue 17: a job sent 13 s after its click). Writers of one process
# take turns on this lock instead; other processes still meet at SQLite's lock. Re-entrant, so a write
# opened inside another on the same thread waits on SQLite as before rather than here for good.
_sqlite_writers: dict[str, threading.RLock] = {}


def _writer_lock(engine: Engine) -> contextlib.AbstractContextManager[Any]:
    if engine.dialect.name != "sqlite":
        return contextlib.nullcontext()
    key = str(engine.url)
    lock = _sqlite_writers.get(key)
    if lock is None:
        with _engines_lock:
            lock = _sqlite_writers.setdefault(key, threading.RLock())
    return lock


@contextlib.contextmanager
def write(engine: Engine) -> Iterator[Connection]:
    """A short write transaction: commits on success, rolls back on any error."""
    with _writer_lock(engine), engine.connect() as conn:
        conn.execution_options(studio_write=True)
        with conn.begin():
            yield conn


# --- migrations ---------------------------------------------------------------------
Migration = Callable[[Connection], None]


# Columns of ``jobs`` each version added (tests rebuild an older schema from this).
ADDED_JOB_COLUMNS: dict[int, tuple[str, ...]] = {
    2: ("provider_seconds",),
    3: ("error_stage", "error_billed", "error_retry_after", "error_status_code", "error_code", "error_sent"),
}


def _add_job_columns(version: int) -> Migration:
    """The step adding ``version``'s columns, typed as the table above says, in each backend's SQL."""

    def step(conn: Connection) -> None:
        for name in ADDED_JOB_COLUMNS[version]:
            column_type = jobs.c[name].type.compile(dialect=conn.dialect)
            # Nullable, no default: existing rows read as "not recorded", which is the truth.
            conn.exec_driver_sql(f"ALTER TABLE jobs ADD COLUMN {name} {column_type}")

    return step


def _create_tables(*tables: sa.Table) -> Migration:
    """The step creating new tables (and their indexes) as defined above."""

    def step(conn: Connection) -> None:
        metadata.create_all(conn, tables=list(tables))

    return step


def _ownership(conn: Connection) -> None:
    """Schema 5, in one step: who made, shared and spent what, whose key a job uses, member caps, share links.

    Each column is added only if missing (tests rebuild older schemas from today's tables).
    Old rows read NULL: made before accounts, by the one operator, private, sent with the configured key.
    """
    inspector = sa.inspect(conn)
    for table_name, names in OWNERSHIP_COLUMNS.items():
        table = metadata.tables[table_name]
        have = {c["name"] for c in inspector.get_columns(table_name)}
        for name in names:
            if name not in have:
                column_type = table.c[name].type.compile(dialect=conn.dialect)
                conn.exec_driver_sql(f"ALTER TABLE {table_name} ADD COLUMN {name} {column_type}")
    for table_name, index in (("jobs", "ix_jobs_user"), ("ledger", "ix_ledger_user_created")):
        if index not in {i["name"] for i in inspector.get_indexes(table_name)}:
            next(i for i in metadata.tables[table_name].indexes if i.name == index).create(conn)
    metadata.create_all(conn, tables=[shares])  # checkfirst: only if missing


def _flat_in_history(conn: Connection) -> None:
    """Schema 7 (issue 17): ``ledger_totals`` summed from the ledger there is, and History's search index."""
    metadata.create_all(conn, tables=[ledger_totals])
    recount_ledger_totals(conn)
    search.ensure(conn)


# version -> the step that brings version-1 to version.
MIGRATIONS: dict[int, Migration] = {
    **{v: _add_job_columns(v) for v in ADDED_JOB_COLUMNS},
    4: _create_tables(*ACCOUNT_TABLES),  # accounts: users, role grants, sessions, encrypted keys
    5: _ownership,  # accounts: who made and spent what, whose key, member caps, share links
    6: _create_tables(*REVIEW_TABLES),  # blind reviews (items, votes) and edit spill
    7: _flat_in_history,  # the ledger's totals as rows (kept by core.spend.budget), the prompt search index
}


class SchemaTooNew(RuntimeError):
    """The database was written by a newer Image Studio; refusing to touch it."""


def _lock_for_migration(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        # Several app processes may start at once against one PostgreSQL.
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727274001)")
    # SQLite: write() already began with BEGIN IMMEDIATE, which excludes other writers.


def current_version(conn: Connection) -> int | None:
    if not sa.inspect(conn).has_table("schema_version"):
        return None
    return conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()


def migrate(engine: Engine, migrations: Mapping[int, Migration] | None = None) -> int:
    """Bring the database to the newest schema; returns the version it is at."""
    steps = dict(MIGRATIONS if migrations is None else migrations)
    target = max([SCHEMA_VERSION, *steps])
    with write(engine) as conn:
        _lock_for_migration(conn)
        version = current_version(conn)
        now = clock.now()
        if version is None:
            metadata.create_all(conn)
            conn.execute(schema_version.insert(), [{"version": target, "applied_at": now}])
            version = target
        elif version > target:
            raise SchemaTooNew(
                f"The history database is at schema version {version}, newer than this app "
                f"({target}). Update Image Studio or point IMAGE_STUDIO_DATABASE_URL elsewhere."
            )
        else:
            for step in range(version + 1, target + 1):
                steps[step](conn)
                conn.execute(schema_version.insert(), [{"version": step, "applied_at": now}])
            version = target
        # Every start, not one step: an index pg_trgm could not be made is tried again (core.history.search).
        search.ensure(conn)
        if conn.execute(sa.select(budget.c.id).where(budget.c.id == 1)).first() is None:
            conn.execute(budget.insert(), [{"id": 1, "updated_at": now}])
    return version

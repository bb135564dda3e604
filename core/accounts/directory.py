"""The accounts directory in the shared database: users, the roles owners give, signed-in sessions.

A person's role is the higher of what the configuration says (``IMAGE_STUDIO_OWNERS``,
``_MAKERS``, ``_VIEWERS``: the floor, which the app cannot lower) and what an owner
granted in the app (``role_grants``). Nobody becomes an owner by arriving first: with
no owner configured and none granted, everyone who signs in has no access until the
deployment names one. Everything is read from the database on each call, so several
app processes on one PostgreSQL agree at once (no process keeps its own copy).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

import clock
from core import db
from core.accounts.identity import Identity
from core.accounts.roles import ROLES, AccessRole, Role, RoleRules, highest, normalize_email, normalize_pattern
from core.accounts.sources import configured_roles

__all__ = ["Accounts", "CannotChangeOwnRole", "Grant", "Member", "SessionView"]

SESSION_TOUCH = timedelta(minutes=1)  # how stale last_seen_at may get before a page run writes it again


class CannotChangeOwnRole(ValueError):
    """An owner may not change or remove the grant that names themselves (no one locks themselves out)."""


@dataclass(frozen=True)
class Grant:
    pattern: str  # an email or "@domain"
    role: Role
    granted_by: str
    granted_at: datetime


@dataclass(frozen=True)
class Member:
    """Someone who has signed in, with where their role comes from."""

    user_id: str
    email: str
    name: str
    role: AccessRole  # what counts: the higher of the two below
    configured: AccessRole
    granted: AccessRole
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class SessionView:
    id: str
    user_id: str
    started_at: datetime
    last_seen_at: datetime
    ended_at: datetime | None

    @property
    def active(self) -> bool:
        return self.ended_at is None


def _upsert(conn: Connection, table: sa.Table, row: dict[str, Any], keys: list[str], update: list[str]) -> None:
    """INSERT ... ON CONFLICT DO UPDATE on either backend (two processes may sign one person in at once)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        pg = pg_insert(table).values(row)
        conn.execute(pg.on_conflict_do_update(index_elements=keys, set_={c: pg.excluded[c] for c in update}))
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        lite = sqlite_insert(table).values(row)
        conn.execute(lite.on_conflict_do_update(index_elements=keys, set_={c: lite.excluded[c] for c in update}))


def _domain_of(email: str) -> str:
    return "@" + email.rpartition("@")[2]


class Accounts:
    """Users, role grants and sessions over one database (the history's)."""

    def __init__(self, engine: Engine, configured: Callable[[], RoleRules] | None = None) -> None:
        self.engine = engine
        self._configured = configured or (lambda: configured_roles().rules)

    # --- roles ----------------------------------------------------------------------
    def configured_rules(self) -> RoleRules:
        return self._configured()

    def _granted(self, conn: Connection, email: str) -> AccessRole:
        rows = conn.execute(
            sa.select(db.role_grants.c.pattern, db.role_grants.c.role).where(
                db.role_grants.c.pattern.in_([email, _domain_of(email)])
            )
        ).all()
        return RoleRules.from_pairs((r.pattern, cast(Role, r.role)) for r in rows).role_of(email)

    def role_of(self, email: str) -> AccessRole:
        """What ``email`` may do now: the configured role, raised by any grant."""
        address = normalize_email(email)
        with db.read(self.engine) as conn:
            granted = self._granted(conn, address)
        return highest([self.configured_rules().role_of(address), granted])

    def has_owner(self) -> bool:
        """Whether anyone at all can be an owner (configured, or granted in the app)."""
        if self.configured_rules().has_owner():
            return True
        with db.read(self.engine) as conn:
            found = conn.execute(sa.select(db.role_grants.c.pattern).where(db.role_grants.c.role == "owner")).first()
        return found is not None

    def grants(self) -> list[Grant]:
        with db.read(self.engine) as conn:
            rows = conn.execute(sa.select(db.role_grants).order_by(db.role_grants.c.pattern)).all()
        return [Grant(r.pattern, cast(Role, r.role), r.granted_by, cast(datetime, db.as_utc(r.granted_at)))
                for r in rows]

    def grant(self, by: Identity, pattern: str, role: Role) -> Grant:
        """Give ``pattern`` (an email or ``@domain``) ``role``; only an owner may, never to themselves."""
        by.require("manage_roles")
        normalized = self._changeable(by, pattern)
        if role not in ROLES:
            raise ValueError(f"not a role: {role!r}")
        now = clock.now()
        granted_by = by.email or "operator"
        row = {"pattern": normalized, "role": role, "granted_by": granted_by, "granted_at": now}
        with db.write(self.engine) as conn:
            _upsert(conn, db.role_grants, row, ["pattern"], ["role", "granted_by", "granted_at"])
        return Grant(normalized, role, granted_by, now)

    def revoke(self, by: Identity, pattern: str) -> bool:
        """Remove a grant (the configured role, if any, still stands). True if there was one."""
        by.require("manage_roles")
        normalized = self._changeable(by, pattern)
        with db.write(self.engine) as conn:
            gone = conn.execute(sa.delete(db.role_grants).where(db.role_grants.c.pattern == normalized)).rowcount
        return bool(gone)

    @staticmethod
    def _changeable(by: Identity, pattern: str) -> str:
        normalized = normalize_pattern(pattern)
        if normalized is None:
            raise ValueError(f"not an email or @domain: {pattern!r}")
        if by.email is not None and normalized == normalize_email(by.email):
            raise CannotChangeOwnRole("An owner cannot change their own role; another owner can.")
        return normalized

    # --- users ----------------------------------------------------------------------
    def sign_in(self, email: str, name: str = "", *, start_session: bool = True) -> Identity:
        """Record a signed-in person (first sign-in or a returning one) and return who they are now."""
        address = normalize_email(email)
        if address.startswith("@") or normalize_pattern(address) != address:
            raise ValueError("a sign-in needs an email address")
        now = clock.now()
        name = name.strip()[:200]
        row = {"id": uuid.uuid4().hex, "email": address, "name": name, "created_at": now, "last_seen_at": now}
        with db.write(self.engine) as conn:
            _upsert(conn, db.users, row, ["email"], ["name", "last_seen_at"])
            user_id = conn.execute(sa.select(db.users.c.id).where(db.users.c.email == address)).scalar_one()
            session_id = self._start_session(conn, user_id, now) if start_session else None
        return Identity(user_id=user_id, email=address, name=name or address.partition("@")[0],
                        role=self.role_of(address), session_id=session_id)

    def identity(self, user_id: str, session_id: str | None = None) -> Identity | None:
        """Who ``user_id`` is right now (their role re-read), or None if no such user."""
        with db.read(self.engine) as conn:
            row = conn.execute(sa.select(db.users).where(db.users.c.id == user_id)).first()
        if row is None:
            return None
        return Identity(user_id=row.id, email=row.email, name=row.name or row.email.partition("@")[0],
                        role=self.role_of(row.email), session_id=session_id)

    def members(self) -> list[Member]:
        """Everyone who has signed in (also those with no access yet: an owner can let them in)."""
        rules = self.configured_rules()
        with db.read(self.engine) as conn:
            users = conn.execute(sa.select(db.users).order_by(db.users.c.email)).all()
            grants = RoleRules.from_pairs(
                (r.pattern, cast(Role, r.role)) for r in conn.execute(sa.select(db.role_grants)).all()
            )
        out = []
        for u in users:
            configured, granted = rules.role_of(u.email), grants.role_of(u.email)
            out.append(Member(u.id, u.email, u.name, highest([configured, granted]), configured, granted,
                              cast(datetime, db.as_utc(u.created_at)), cast(datetime, db.as_utc(u.last_seen_at))))
        return out

    # --- sessions -------------------------------------------------------------------
    @staticmethod
    def _start_session(conn: Connection, user_id: str, now: datetime) -> str:
        session_id = uuid.uuid4().hex
        conn.execute(db.account_sessions.insert(),
                     [{"id": session_id, "user_id": user_id, "started_at": now, "last_seen_at": now}])
        return session_id

    def session(self, session_id: str) -> SessionView | None:
        with db.read(self.engine) as conn:
            r = conn.execute(sa.select(db.account_sessions).where(db.account_sessions.c.id == session_id)).first()
        if r is None:
            return None
        return SessionView(r.id, r.user_id, cast(datetime, db.as_utc(r.started_at)),
                           cast(datetime, db.as_utc(r.last_seen_at)), db.as_utc(r.ended_at))

    def touch_session(self, session_id: str) -> bool:
        """Note that a session is still in use (at most once a minute); False if it has ended or never was."""
        now = clock.now()
        s = db.account_sessions.c
        with db.read(self.engine) as conn:  # most page runs only read: no write lock taken
            found = conn.execute(sa.select(s.ended_at, s.last_seen_at).where(s.id == session_id)).first()
        if found is None or found.ended_at is not None:
            return False
        last = db.as_utc(found.last_seen_at)
        if last is None or now - last >= SESSION_TOUCH:
            with db.write(self.engine) as conn:
                conn.execute(sa.update(db.account_sessions).where(s.id == session_id, s.ended_at.is_(None))
                             .values(last_seen_at=now))
        return True

    def end_session(self, session_id: str) -> None:
        """Logged out: the session is over in every process."""
        s = db.account_sessions.c
        with db.write(self.engine) as conn:
            conn.execute(sa.update(db.account_sessions).where(s.id == session_id, s.ended_at.is_(None))
                         .values(ended_at=clock.now()))

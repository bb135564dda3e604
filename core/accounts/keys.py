"""Provider keys people type, stored encrypted in the shared database and never shown again.

A key belongs to a holder: a user (their id) or the team (:data:`TEAM`, set by an
owner). Pages get :class:`KeyStatus` only (that a key is set, by whom and when),
never the key or any part of it. The runner alone opens a key, with
:func:`open_key`, when it sends or follows a job, so a job keeps its key across a
restart of the app: the key is in the database, encrypted, not in a session's memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine

import clock
from core import db
from core.accounts.crypto import KeyUnreadable, Sealer, sealer
from core.accounts.identity import Identity

__all__ = ["TEAM", "KeyStatus", "KeyVault", "holder_for", "open_key"]

TEAM = "team"  # the holder of the keys an owner shares with the team


@dataclass(frozen=True)
class KeyStatus:
    """What a page may know about a stored key: that it is set, by whom and when. Never the key."""

    holder: str
    provider: str
    set_by: str | None
    set_at: datetime
    rotated_at: datetime | None


def holder_for(identity: Identity, team: bool = False) -> str:
    """Whose key a person sets: their own, or (an owner only) the team's."""
    if team:
        identity.require("manage_team_keys")
        return TEAM
    identity.require("use_own_key")
    return identity.user_id


class KeyVault:
    """Stores, lists, forgets and re-encrypts keys; hands none back (see :func:`open_key`)."""

    def __init__(self, engine: Engine, secrets: Mapping[str, object] | None = None) -> None:
        self.engine = engine
        self._secrets = secrets  # None: the configuration at each use

    def _sealer(self) -> Sealer:
        return sealer(self._secrets)

    def store(self, by: Identity, provider: str, key: str, *, team: bool = False) -> KeyStatus:
        """Encrypt and keep ``key`` for ``by`` (or the team); replaces one set before.

        Raises ``PermissionDenied`` if the role does not allow it and ``SecretKeyMissing``
        when no server secret is configured (before anything is written).
        """
        holder = holder_for(by, team)
        key = key.strip()
        if not key:
            raise ValueError("an empty key")
        token = self._sealer().seal(holder, provider, key)
        now = clock.now()
        row = {"holder": holder, "provider": provider, "token": token, "set_by": by.email, "set_at": now,
               "rotated_at": None}
        with db.write(self.engine) as conn:
            conn.execute(sa.delete(db.stored_keys).where(db.stored_keys.c.holder == holder,
                                                         db.stored_keys.c.provider == provider))
            conn.execute(db.stored_keys.insert(), [row])
        return KeyStatus(holder, provider, by.email, now, None)

    def forget(self, by: Identity, provider: str, *, team: bool = False) -> bool:
        holder = holder_for(by, team)
        with db.write(self.engine) as conn:
            gone = conn.execute(sa.delete(db.stored_keys).where(db.stored_keys.c.holder == holder,
                                                                db.stored_keys.c.provider == provider)).rowcount
        return bool(gone)

    def statuses(self, holder: str) -> dict[str, KeyStatus]:
        """The providers ``holder`` has a key for, and when each was set."""
        k = db.stored_keys.c
        with db.read(self.engine) as conn:
            rows = conn.execute(sa.select(k.holder, k.provider, k.set_by, k.set_at, k.rotated_at)
                                .where(k.holder == holder)).all()
        return {r.provider: KeyStatus(r.holder, r.provider, r.set_by, cast(datetime, db.as_utc(r.set_at)),
                                      db.as_utc(r.rotated_at)) for r in rows}

    def count(self) -> int:
        with db.read(self.engine) as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(db.stored_keys)).scalar_one())

    def rotate(self, by: Identity) -> tuple[int, int]:
        """Re-encrypt every stored key with the newest secret (an owner's step after rotating it).

        Returns (re-encrypted, unreadable): a key no configured secret opens is left as it
        is (and stays unusable until its holder types it again).
        """
        by.require("manage_team_keys")
        seal = self._sealer()
        done = bad = 0
        now = clock.now()
        k = db.stored_keys.c
        with db.write(self.engine) as conn:
            for row in conn.execute(sa.select(k.holder, k.provider, k.token)).all():
                try:
                    token = seal.rotate(row.token)
                except KeyUnreadable:
                    bad += 1
                    continue
                conn.execute(sa.update(db.stored_keys).where(k.holder == row.holder, k.provider == row.provider)
                             .values(token=token, rotated_at=now))
                done += 1
        return done, bad


def open_key(engine: Engine, holder: str, provider: str, secrets: Mapping[str, object] | None = None) -> str | None:
    """The runner's way to a stored key: decrypted, checked to be ``holder``'s for ``provider``.

    None when no key is stored; raises ``KeyUnreadable`` if it was changed or sealed
    with a secret no longer configured, ``SecretKeyMissing`` with no secret at all.
    Never call this to show anything to a person.
    """
    k = db.stored_keys.c
    with db.read(engine) as conn:
        token = conn.execute(sa.select(k.token).where(k.holder == holder, k.provider == provider)).scalar()
    if token is None:
        return None
    return sealer(secrets).open(token, holder, provider)

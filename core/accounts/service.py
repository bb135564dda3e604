"""This process's accounts directory and key vault, over the history's database.

Keyed by ``IMAGE_STUDIO_DATABASE_URL`` (or the SQLite file in the data directory), so
a test that moves the data directory gets its own; the schema is brought up to
date once per database per process (``core.db.migrate``, safe to run from many
processes at once).
"""

from __future__ import annotations

import threading

from sqlalchemy.engine import Engine

from core import config, db
from core.accounts.directory import Accounts
from core.accounts.keys import KeyVault

__all__ = ["accounts", "engine", "vault"]

_lock = threading.Lock()
_migrated: set[str] = set()


def engine() -> Engine:
    url = db.normalize_url(config.database_url())
    found = db.get_engine(url)
    with _lock:
        if url not in _migrated:
            db.migrate(found)
            _migrated.add(url)
    return found


def accounts() -> Accounts:
    return Accounts(engine())


def vault() -> KeyVault:
    return KeyVault(engine())

"""Fixtures for the core (store, files, budget, runner) tests.

``pg_url`` starts a real PostgreSQL server once per session (Debian's server
binaries, run as the ``postgres`` user when the tests run as root) in a
temporary folder on a free 127.0.0.1 port, and tears it down at the end.
``db_url`` gives each test a fresh database: an SQLite file, or a new
PostgreSQL database on that server. Where PostgreSQL is missing the postgres
half is skipped, except in CI (``CI=true``) where that is a failure.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


def _load_pg_helper():
    spec = importlib.util.spec_from_file_location("pg_test_server", ROOT / "scripts" / "pg_test_server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["pg_test_server"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def pg_server() -> Iterator[object]:
    helper = _load_pg_helper()
    try:
        server = helper.PgServer().start()
    except helper.PgUnavailable as err:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is needed in CI: {err}")
        pytest.skip(str(err))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_url(pg_server) -> str:
    """A session-wide database on the test server (tests wanting a clean one use ``db_url``)."""
    return pg_server.url("studio_session")


def _fresh_pg(pg_server) -> Iterator[str]:
    from core import db

    name = f"t_{uuid.uuid4().hex[:12]}"
    url = pg_server.url(name)
    yield url
    db.dispose_engines(url)
    pg_server.drop(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each backend."""
    from core import db

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'core.db'}"
        yield url
        db.dispose_engines(url)
    else:
        yield from _fresh_pg(request.getfixturevalue("pg_server"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    from core import db

    url = f"sqlite:///{tmp_path / 'core.db'}"
    yield url
    db.dispose_engines(url)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "files"
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def _no_budget_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMAGE_STUDIO_BUDGET_USD_DAILY", raising=False)
    monkeypatch.delenv("IMAGE_STUDIO_BUDGET_USD_TOTAL", raising=False)

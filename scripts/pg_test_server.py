#!/usr/bin/env python3
"""A throwaway PostgreSQL server for tests: initdb + pg_ctl in a temporary folder.

Uses Debian's ``postgresql`` server binaries (``/usr/lib/postgresql/<v>/bin``).
PostgreSQL refuses to run as root, so as root the server runs as the
``postgres`` user. It listens on 127.0.0.1 only, on a free port, with trust
authentication, and everything is deleted on ``stop()``.

    server = PgServer().start()
    url = server.url("mydb")  # creates the database
    ...
    server.stop()

Run directly to keep one up until Ctrl-C: ``python scripts/pg_test_server.py``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["PgServer", "PgUnavailable", "find_bindir"]


class PgUnavailable(RuntimeError):
    """No PostgreSQL server binaries here, or no user to run them as."""


def find_bindir() -> Path | None:
    explicit = os.environ.get("PG_BINDIR")
    if explicit and (Path(explicit) / "initdb").exists():
        return Path(explicit)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    which = shutil.which("initdb")
    return Path(which).parent if which else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self, bindir: Path | None = None) -> None:
        self.bindir = bindir or find_bindir()
        if self.bindir is None:
            raise PgUnavailable("PostgreSQL server binaries not found (apt-get install postgresql)")
        self.root: Path | None = None
        self.port: int | None = None
        self._user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self._user = pwd.getpwnam("postgres")
            except KeyError as err:
                raise PgUnavailable("running as root and there is no 'postgres' user") from err

    def _run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        if self._user is not None:
            kwargs = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        return subprocess.run(
            list(args),
            check=check,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
            env={**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"},
            **kwargs,  # type: ignore[arg-type]
        )

    @property
    def data(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    def start(self) -> PgServer:
        self.root = Path(tempfile.mkdtemp(prefix="studio-pg-"))
        if self._user is not None:
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        try:
            self._run(
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",  # a test server: speed over crash safety
            )
            last_error = ""
            for _ in range(5):  # a free port can be taken between the check and the bind
                self.port = _free_port()
                opts = (
                    f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
                    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
                )
                result = self._run(
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-o",
                    opts,
                    "-l",
                    str(self.root / "server.log"),
                    "-w",
                    "-t",
                    "30",
                    "start",
                    check=False,
                )
                if result.returncode == 0:
                    return self
                last_error = result.stdout + result.stderr + self.log()
            raise RuntimeError(f"PostgreSQL did not start: {last_error[-2000:]}")
        except BaseException:
            self.stop()
            raise

    def log(self) -> str:
        if self.root is None:
            return ""
        with contextlib.suppress(OSError):
            return (self.root / "server.log").read_text(errors="replace")
        return ""

    def admin_url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def url(self, database: str) -> str:
        """Create ``database`` (if missing) and return its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            exists = c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
            if not exists:
                c.execute(f'CREATE DATABASE "{database}"')
        return self.admin_url(database)

    def drop(self, database: str) -> None:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    def stop(self) -> None:
        if self.root is None:
            return
        if self.data.exists():
            result = self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop",
                               check=False)
            if result.returncode != 0:
                self._kill_postmaster()
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def _kill_postmaster(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)


if __name__ == "__main__":
    server = PgServer().start()
    print(server.url("studio"), flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()

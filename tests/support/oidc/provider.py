"""Install (once) and start the test identity provider, ``server.mjs`` beside this file, on 127.0.0.1.

``npm ci`` fills ``node_modules`` here the first time (git-ignored, then reused); a
file lock keeps two pytest-xdist workers from installing at once. Where node or npm
is missing or the registry cannot be reached the caller gets :class:`OidcUnavailable`
(the fixture skips locally and fails in CI, like the PostgreSQL fixture).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx

from tests.ports import free_port

HERE = Path(__file__).resolve().parent
SERVER = HERE / "server.mjs"
CLIENT_ID = "image-studio"
CLIENT_SECRET = "test-secret"


class OidcUnavailable(RuntimeError):
    """The provider cannot run here (no node/npm, or its package could not be installed)."""


def _installed() -> bool:
    return (HERE / "node_modules" / "oidc-provider" / "package.json").exists()


def ensure_installed() -> None:
    """``npm ci`` (or ``npm install`` without a lock file) once; afterwards a no-op."""
    if _installed():
        return
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        raise OidcUnavailable("node and npm are not installed (README's test command installs Debian's nodejs, npm)")
    with (HERE / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed():
            return
        command = [npm, "ci" if (HERE / "package-lock.json").exists() else "install", "--no-audit", "--no-fund"]
        done = subprocess.run(command, cwd=HERE, capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not _installed():
            raise OidcUnavailable(f"npm could not install oidc-provider:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


class OidcProvider:
    """One provider process; anyone may sign in as any email (the dev login page takes any password)."""

    def __init__(self, redirect_uris: list[str], log: Path) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.metadata_url = f"{self.issuer}/.well-known/openid-configuration"
        self.redirect_uris = redirect_uris
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> OidcProvider:
        ensure_installed()
        env = {**os.environ, "PORT": str(self.port), "REDIRECT_URI": ",".join(self.redirect_uris)}
        self.proc = subprocess.Popen(["node", str(SERVER)], cwd=HERE, env=env, stdout=self.log.open("wb"),
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the OIDC provider exited early:\n{self.log.read_text()}")
            try:
                if httpx.get(self.metadata_url, timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the OIDC provider did not start:\n{self.log.read_text()}")

    def auth_section(self, redirect_uri: str, cookie_secret: str = "image-studio-test-cookie-secret") -> str:
        """Streamlit's ``[auth]`` for this provider, as secrets.toml text (prompt=login: it refuses select_account)."""
        return (
            "[auth]\n"
            f'redirect_uri = "{redirect_uri}"\n'
            f'cookie_secret = "{cookie_secret}"\n'
            f'client_id = "{CLIENT_ID}"\n'
            f'client_secret = "{CLIENT_SECRET}"\n'
            f'server_metadata_url = "{self.metadata_url}"\n'
            'client_kwargs = { prompt = "login" }\n'
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

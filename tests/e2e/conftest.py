"""Start the real app (`streamlit run app.py`) on a free loopback port and a headless Chromium.

The browser is Debian's /usr/bin/chromium driven by Playwright; no browser is ever
downloaded. In CI (CI=true) a missing browser fails the run instead of skipping.

An ``AppServer`` given ``secrets`` (secrets.toml text) writes them to its own data
directory and points Streamlit there (``--secrets.files``), so a test's ``[auth]`` never
touches the checkout's ``.streamlit/secrets.toml``. ``signed_in_app`` starts a real
OpenID Connect provider (tests/support/oidc) and the app with ``[auth]`` pointing at it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


class AppServer:
    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, secrets: str | None = None) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / "streamlit.log"
        self.env = {
            **os.environ,
            "IMAGE_STUDIO_DATA_DIR": str(data_dir),
            "IMAGE_STUDIO_EMULATOR_PORT": str(free_port()),
            "IMAGE_STUDIO_EMULATOR_LATENCY": os.environ.get("IMAGE_STUDIO_EMULATOR_LATENCY", "1"),
            **(env or {}),
        }
        self.secrets = secrets  # secrets.toml text for this server alone (None: Streamlit's usual files)
        self.proc: subprocess.Popen | None = None

    def _secrets_args(self) -> list[str]:
        if self.secrets is None:
            return []
        path = self.data_dir / "secrets.toml"
        path.write_text(self.secrets)
        return ["--secrets.files", str(path)]

    def start(self) -> AppServer:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py",
             "--server.port", str(self.port), "--server.address", "127.0.0.1",
             "--server.headless", "true", "--browser.gatherUsageStats", "false", *self._secrets_args()],
            cwd=ROOT, env=self.env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/_stcore/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"streamlit did not start:\n{self.log.read_text()}")

    def stop(self, sig: int | None = None) -> None:
        if self.proc and self.proc.poll() is None:
            if sig is None:
                self.proc.terminate()
            else:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def app_server(tmp_path):
    server = AppServer(tmp_path / "app-data")
    server.data_dir.mkdir()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def signed_in_app(tmp_path):
    """Start the identity provider and the app with ``[auth]`` on it: ``signed_in_app(owners=..., ...)``.

    Roles go in the environment (``IMAGE_STUDIO_OWNERS``, ``_MAKERS``) or, for ``section_viewers``,
    under ``[image_studio]`` in the app's secrets.toml, the two places the contract names.
    """
    from tests.support.oidc import OidcProvider, OidcUnavailable

    started: list[AppServer | OidcProvider] = []

    def start(owners: str = "", makers: str = "", viewers: str = "", section_viewers: str = "",
              env: dict[str, str] | None = None) -> AppServer:
        data = tmp_path / f"app-data-{len(started)}"
        data.mkdir()
        server = AppServer(data, env={"IMAGE_STUDIO_OWNERS": owners, "IMAGE_STUDIO_MAKERS": makers,
                                      "IMAGE_STUDIO_VIEWERS": viewers, **(env or {})})
        redirect = f"{server.url}/oauth2callback"
        provider = OidcProvider([redirect], data / "oidc.log")
        try:
            provider.start()
        except OidcUnavailable as err:
            if os.environ.get("CI"):
                pytest.fail(f"The test identity provider is needed in CI: {err}")
            pytest.skip(str(err))
        started.append(provider)
        server.secrets = provider.auth_section(redirect) + (
            f'\n[image_studio]\nIMAGE_STUDIO_VIEWERS = "{section_viewers}"\n' if section_viewers else "")
        started.append(server.start())
        return server

    yield start
    for proc in reversed(started):
        proc.stop()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing at /usr/bin/chromium: README's test command installs it")
        pytest.skip("Chromium is not installed (run README's test command)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    yield pg
    context.close()

"""The wiring of one app process: its store, job runner, pricing, built-in emulator and provider factory.

Both the server's start-up hook (``app.py``'s lifespan, which runs before any
browser connects, so unfinished jobs resume at once) and the pages use them.
``st.cache_resource`` cannot be the holder: the lifespan runs outside any script,
and Streamlit gives it a separate cache, which would make a second runner. A
module is imported once per process, so a plain guarded singleton is shared.
The store and runner are keyed by the data directory and database URL: when
those change (tests give every case its own), the old runner is stopped and new
ones are made.

The emulator listens on ``IMAGE_STUDIO_EMULATOR_PORT`` (default 8765). If that
port already answers ``GET /_admin/health`` as the Image Studio emulator
(another app process on this host, or one started by hand), it is reused; if the
port is taken by something else, a free port is used. Its jobs live in the data
directory, so they outlive a restart of the app just as the history does.
"""

from __future__ import annotations

import atexit
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from core import config
from core import settings as app_settings
from core.accounts.identity import Identity
from core.accounts.keys import TEAM, open_key
from core.config import KeySource
from core.history.store import Store
from core.jobs.runner import CONFIG_KEY, SESSION_KEY, JobRunner
from providers import registry
from providers.base import Provider
from providers.catalogue import Catalogue, Cost, Estimate, load_catalogue
from providers.types import ImageRequest, JobStatus, ModelCaps

if TYPE_CHECKING:
    from emulator import Emulator

__all__ = [
    "DEFAULT_PORT",
    "SERVICE",
    "EmulatorHandle",
    "KeyChoice",
    "LivePricing",
    "get_emulator",
    "key_choice",
    "pricing",
    "provider_factory",
    "provider_key",
    "runner",
    "running_emulator",
    "shutdown",
    "stop_emulator",
    "store",
]


# --- keys -----------------------------------------------------------------------------------
def provider_key(
    provider: str, *, explicit: str | None = None, session: Mapping[str, object] | None = None
) -> tuple[str | None, KeySource]:
    """A provider's API key and where it came from: the one place keys are resolved.

    In this order: ``explicit`` (a key typed in a session and handed to the runner
    with the job; reported as ``session``), the session's typed keys (``session``,
    what pages pass), ``.streamlit/secrets.toml``, then the environment.
    """
    if explicit is not None and explicit.strip():
        return explicit.strip(), "session"
    return config.get_secret(registry.provider_class(provider).key_env, session)


@dataclass(frozen=True)
class KeyChoice:
    """Whose key a person's next job of one provider is sent with, and so where it goes."""

    endpoint: str  # live / emulator
    holder: str | None  # jobs.key_holder: a user id, "team", "session", "config"; None on the emulator
    source: str  # KeySource, or "yours" / "team" for a stored key

    @property
    def stored(self) -> bool:
        return self.holder not in (None, SESSION_KEY, CONFIG_KEY)


def key_choice(identity: Identity, provider: str, session: Mapping[str, object] | None = None) -> KeyChoice:
    """The one rule for whose key pays.

    The local operator (no sign-in configured): a key typed in this session, else
    secrets.toml, else the environment, as always. A signed-in member: their own stored
    key, else the team's, else the emulator; never the operator's configured key.
    """
    if identity.local:
        _, source = provider_key(provider, session=session)
        if source == "none":
            return KeyChoice("emulator", None, source)
        return KeyChoice("live", SESSION_KEY if source == "session" else CONFIG_KEY, source)
    from core.accounts import service as accounts_service

    vault = accounts_service.vault()
    if identity.can("use_own_key") and provider in vault.statuses(identity.user_id):
        return KeyChoice("live", identity.user_id, "yours")
    if identity.can("generate") and provider in vault.statuses(TEAM):
        return KeyChoice("live", TEAM, "team")
    return KeyChoice("emulator", None, "none")


def open_stored_key(holder: str, provider: str) -> str | None:
    """The runner's key opener: a stored key from the shared database (survives any restart)."""
    from core.accounts import service as accounts_service

    return open_key(accounts_service.engine(), holder, provider)


# --- pricing --------------------------------------------------------------------------------
class LivePricing:
    """The catalogue with the credit values set in Settings, read at each use.

    The runner is long-lived; reading the (small) settings file on each estimate
    keeps a changed credit value effective without a restart.
    """

    def current(self) -> Catalogue:
        return load_catalogue().with_overrides(app_settings.load().credit_overrides())

    def estimate(self, provider: str, request: ImageRequest, caps: ModelCaps | None = None, **kw: Any) -> Estimate:
        return self.current().estimate(provider, request, caps, **kw)

    def billed(self, provider: str, request: ImageRequest, status: JobStatus) -> Cost | None:
        return self.current().billed(provider, request, status)


# --- the built-in emulator ------------------------------------------------------------------
DEFAULT_PORT = 8765
SERVICE = "image-studio-emulator"  # what the emulator's health check calls itself


@dataclass
class EmulatorHandle:
    """Where the emulator answers; ``emulator`` is set when this process runs it."""

    base_url: str
    emulator: Emulator | None = None

    def url(self, provider: str) -> str:
        return f"{self.base_url}/{provider}"

    def upload(self, data: bytes, mime: str) -> str:
        """Host input bytes on the emulator (URL-only providers fetch them from there)."""
        if self.emulator is not None:
            return self.emulator.upload(data, mime)
        answer = httpx.post(f"{self.base_url}/_admin/uploads", content=data, headers={"Content-Type": mime},
                            timeout=30)
        answer.raise_for_status()
        url: str = answer.json()["url"]
        return url

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])


# The emulator this process uses, once asked for.
_handle: EmulatorHandle | None = None
_emulator_lock = threading.Lock()


def _port_from_env() -> int:
    raw = os.environ.get("IMAGE_STUDIO_EMULATOR_PORT", "").strip()
    try:
        return int(raw) if raw else DEFAULT_PORT
    except ValueError:
        return DEFAULT_PORT


def _answers_as_emulator(port: int) -> bool:
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/_admin/health", timeout=2)
        return answer.status_code == 200 and answer.json().get("service") == SERVICE
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _start_emulator(port: int) -> EmulatorHandle:
    from emulator import Emulator  # only a process that runs one pays for importing it

    if not _port_free(port) and _answers_as_emulator(port):
        return EmulatorHandle(f"http://127.0.0.1:{port}")
    latency, jitter = config.emulator_latency(), config.emulator_jitter()
    # prerender: a result is made while its job runs, so it is ready when the job is done, as at a real
    # provider; rendered on the first download instead, it sat between "done" and "on screen" (issue 17).
    def make(on: int) -> Emulator:
        return Emulator(port=on, data_dir=config.data_dir(), latency=latency, jitter=jitter, prerender=True)

    emu = make(port if _port_free(port) else 0)
    try:
        emu.start()
    except OSError:
        # Lost a race for the port: another process's emulator may have just taken it.
        if _answers_as_emulator(port):
            return EmulatorHandle(f"http://127.0.0.1:{port}")
        emu = make(0).start()
    return EmulatorHandle(emu.base_url, emu)


def get_emulator() -> EmulatorHandle:
    """The process's emulator, started on first use."""
    global _handle
    with _emulator_lock:
        if _handle is None:
            _handle = _start_emulator(_port_from_env())
        return _handle


def running_emulator() -> EmulatorHandle | None:
    """The emulator this process uses if it already asked for one; never starts one (benchmarks count its requests)."""
    with _emulator_lock:
        return _handle


def stop_emulator() -> None:
    """Stop the emulator this process runs (tests)."""
    global _handle
    with _emulator_lock:
        if _handle is not None and _handle.emulator is not None:
            _handle.emulator.stop()
        _handle = None


# --- providers ------------------------------------------------------------------------------
def provider_factory(name: str, endpoint: str, api_key: str | None = None) -> Provider:
    """The runner's providers: live ones with their key (``provider_key``), or the emulator's.

    The runner passes the key of the job's holder (``jobs.key_holder``); only a job
    whose holder is ``"config"`` (the local operator's) comes here without one.
    """
    if endpoint == "emulator":
        emu = get_emulator()
        return registry.create(name, api_key=api_key or "emulator", base_url=emu.url(name), uploader=emu.upload)
    key, _ = provider_key(name, explicit=api_key)
    return registry.create(name, api_key=key)


# --- the store and runner -------------------------------------------------------------------
@dataclass
class _Services:
    key: tuple[str, str]
    store: Store
    pricing: LivePricing
    runner: JobRunner | None = None


_lock = threading.RLock()
_current: _Services | None = None


def _key() -> tuple[str, str]:
    return str(config.data_dir()), config.database_url()


def _services() -> _Services:
    global _current
    key = _key()
    with _lock:
        if _current is not None and _current.key != key:
            _stop(_current)
            _current = None
        if _current is None:
            _current = _Services(key=key, store=Store(), pricing=LivePricing())
        return _current


def store() -> Store:
    return _services().store


def pricing() -> LivePricing:
    return _services().pricing


def runner() -> JobRunner:
    """The started runner (starting it resumes every unfinished job in the store)."""
    with _lock:
        services = _services()
        if services.runner is None or not services.runner.running:
            services.runner = JobRunner(services.store, provider_factory, pricing=services.pricing,
                                        key_opener=open_stored_key).start()
        return services.runner


def running_runner() -> JobRunner | None:
    """The runner if it is running now (never starts one: health checks and callbacks only look)."""
    with _lock:
        current = _current
        return current.runner if current is not None and current.runner is not None and current.runner.running \
            else None


def _stop(services: _Services) -> None:
    if services.runner is not None:
        services.runner.stop()
        services.runner = None


def shutdown() -> None:
    """Stop the runner (its jobs resume at the next start); used at exit and between tests."""
    global _current
    with _lock:
        if _current is not None:
            _stop(_current)
            _current = None


atexit.register(shutdown)

"""The built-in emulator, started once per app process.

Port from ``IMAGE_STUDIO_EMULATOR_PORT`` (default 8765). If that port already
answers ``GET /_admin/health`` as the Image Studio emulator (another app process
on this host, or one started by hand), it is reused; if the port is taken by
something else, a free port is used. Its jobs live in the data directory, so
they outlive a restart of the app just as the history does.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass

import httpx

from core import config

__all__ = ["DEFAULT_PORT", "EmulatorHandle", "get_emulator", "stop_emulator"]

DEFAULT_PORT = 8765
SERVICE = "image-studio-emulator"  # what the emulator's health check calls itself


@dataclass
class EmulatorHandle:
    """Where the emulator answers; ``emulator`` is set when this process runs it."""

    base_url: str
    emulator: object | None = None  # emulator.Emulator

    def url(self, provider: str) -> str:
        return f"{self.base_url}/{provider}"

    def upload(self, data: bytes, mime: str) -> str:
        """Host input bytes on the emulator (URL-only providers fetch them from there)."""
        if self.emulator is not None:
            return self.emulator.upload(data, mime)  # type: ignore[attr-defined]
        answer = httpx.post(f"{self.base_url}/_admin/uploads", content=data, headers={"Content-Type": mime},
                            timeout=30)
        answer.raise_for_status()
        return answer.json()["url"]

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])


_handle: EmulatorHandle | None = None
_lock = threading.Lock()


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


def get_emulator() -> EmulatorHandle:
    """The process's emulator, started on first use."""
    global _handle
    with _lock:
        if _handle is not None:
            return _handle
        from emulator import Emulator

        port = _port_from_env()
        if not _port_free(port) and _answers_as_emulator(port):
            _handle = EmulatorHandle(f"http://127.0.0.1:{port}")
            return _handle
        emu = Emulator(port=port if _port_free(port) else 0, data_dir=config.data_dir(),
                       latency=config.emulator_latency())
        try:
            emu.start()
        except OSError:
            # Lost a race for the port: another process's emulator may have just taken it.
            if _answers_as_emulator(port):
                _handle = EmulatorHandle(f"http://127.0.0.1:{port}")
                return _handle
            emu = Emulator(port=0, data_dir=config.data_dir(), latency=config.emulator_latency()).start()
        _handle = EmulatorHandle(emu.base_url, emu)
        return _handle


def stop_emulator() -> None:
    """Stop the emulator this process runs (tests)."""
    global _handle
    with _lock:
        if _handle is not None and _handle.emulator is not None:
            _handle.emulator.stop()  # type: ignore[attr-defined]
        _handle = None

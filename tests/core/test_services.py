"""One built-in emulator per process: started once, reused when one already answers, else a free port."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from core_fakes import png_bytes

from core import emulator_service
from core.jobs.runner import create_runner, default_provider_factory
from emulator import Emulator
from tests.ports import free_port


@pytest.fixture(autouse=True)
def _fresh_service(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("IMAGE_STUDIO_EMULATOR_LATENCY", "0.1")
    emulator_service.stop_emulator()
    yield
    emulator_service.stop_emulator()


def test_started_once_on_the_configured_port(monkeypatch: pytest.MonkeyPatch, _isolated_data_dir: Path) -> None:
    port = free_port()
    monkeypatch.setenv("IMAGE_STUDIO_EMULATOR_PORT", str(port))
    handle = emulator_service.get_emulator()
    assert handle.port == port and handle.emulator is not None
    assert emulator_service.get_emulator() is handle
    assert handle.emulator.data_dir == _isolated_data_dir and handle.emulator.latency == 0.1
    health = httpx.get(f"{handle.base_url}/_admin/health", timeout=5).json()
    assert health["service"] == emulator_service.SERVICE


def test_reuses_an_emulator_already_answering(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    other = Emulator(port=free_port(), data_dir=tmp_path / "other", latency=0.1).start()
    try:
        monkeypatch.setenv("IMAGE_STUDIO_EMULATOR_PORT", str(other.port))
        handle = emulator_service.get_emulator()
        assert handle.emulator is None and handle.base_url == other.base_url
        url = handle.upload(png_bytes("upload"), "image/png")
        assert httpx.get(url, timeout=5).content == png_bytes("upload")
    finally:
        emulator_service.stop_emulator()
        other.stop()


def test_port_taken_by_something_else_gives_a_free_port(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        taken = squatter.getsockname()[1]
        monkeypatch.setenv("IMAGE_STUDIO_EMULATOR_PORT", str(taken))
        handle = emulator_service.get_emulator()
        assert handle.port != taken and handle.emulator is not None


def test_default_factory_and_create_runner(monkeypatch: pytest.MonkeyPatch, _isolated_data_dir: Path) -> None:
    monkeypatch.setenv("IMAGE_STUDIO_EMULATOR_PORT", str(free_port()))
    provider = default_provider_factory("coretoday", "emulator")
    assert provider.base_url.startswith(emulator_service.get_emulator().base_url) and provider.has_key
    monkeypatch.setenv("EVOLINK_API_KEY", "ek-from-env")
    assert default_provider_factory("evolink", "live").api_key == "ek-from-env"
    assert default_provider_factory("evolink", "live", "ek-typed").api_key == "ek-typed"
    runner = create_runner(start=False)
    assert runner.store.url == f"sqlite:///{_isolated_data_dir / 'core.db'}"
    assert not runner.running

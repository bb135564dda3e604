"""The process's wiring: one built-in emulator (started once, reused when one already answers, else a free
port), the provider factory, the one key resolution, the store and the runner."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from core_fakes import png_bytes

from core import config, services
from core.services import provider_factory, provider_key
from emulator import Emulator
from tests.ports import free_port


@pytest.fixture(autouse=True)
def _fresh_service(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("IMAGE_STUDIO_EMULATOR_LATENCY", "0.1")
    services.stop_emulator()
    yield
    services.stop_emulator()


def test_started_once_on_the_configured_port(monkeypatch: pytest.MonkeyPatch, _isolated_data_dir: Path) -> None:
    port = free_port()
    monkeypatch.setenv("IMAGE_STUDIO_EMULATOR_PORT", str(port))
    assert services.running_emulator() is None  # asking whether one runs starts none
    handle = services.get_emulator()
    assert handle.port == port and handle.emulator is not None and services.running_emulator() is handle
    assert services.get_emulator() is handle
    assert handle.emulator.data_dir == _isolated_data_dir and handle.emulator.latency == 0.1
    health = httpx.get(f"{handle.base_url}/_admin/health", timeout=5).json()
    assert health["service"] == services.SERVICE


def test_reuses_an_emulator_already_answering(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    other = Emulator(port=free_port(), data_dir=tmp_path / "other", latency=0.1).start()
    try:
        monkeypatch.setenv("IMAGE_STUDIO_EMULATOR_PORT", str(other.port))
        handle = services.get_emulator()
        assert handle.emulator is None and handle.base_url == other.base_url
        url = handle.upload(png_bytes("upload"), "image/png")
        assert httpx.get(url, timeout=5).content == png_bytes("upload")
    finally:
        services.stop_emulator()
        other.stop()


def test_port_taken_by_something_else_gives_a_free_port(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        taken = squatter.getsockname()[1]
        monkeypatch.setenv("IMAGE_STUDIO_EMULATOR_PORT", str(taken))
        handle = services.get_emulator()
        assert handle.port != taken and handle.emulator is not None


def test_provider_factory_and_the_runner(monkeypatch: pytest.MonkeyPatch, _isolated_data_dir: Path) -> None:
    monkeypatch.setenv("IMAGE_STUDIO_EMULATOR_PORT", str(free_port()))
    provider = provider_factory("coretoday", "emulator")
    assert provider.base_url.startswith(services.get_emulator().base_url) and provider.has_key
    monkeypatch.setenv("EVOLINK_API_KEY", "ek-from-env")
    assert provider_factory("evolink", "live").api_key == "ek-from-env"
    assert provider_factory("evolink", "live", "ek-typed").api_key == "ek-typed"
    assert services.store().url == f"sqlite:///{_isolated_data_dir / 'core.db'}"
    runner = services.runner()
    try:
        assert runner.running and runner.store is services.store()
        assert runner.provider_factory is provider_factory  # the same key resolution as the pages'
        assert services.runner() is runner
    finally:
        services.shutdown()
    assert not runner.running


def test_one_key_resolution_in_its_order(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets: dict[str, object] = {}
    monkeypatch.setattr(config, "streamlit_secrets", lambda: secrets)
    session = {"OPENAI_API_KEY": "sk-session"}
    assert provider_key("openai") == (None, "none")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    assert provider_key("openai") == ("sk-env", "environment")
    secrets["OPENAI_API_KEY"] = "sk-secrets"
    assert provider_key("openai") == ("sk-secrets", "secrets")
    assert provider_key("openai", session=session) == ("sk-session", "session")
    assert provider_key("openai", explicit="sk-typed", session=session) == ("sk-typed", "session")
    assert provider_key("openai", explicit="  ", session={"OPENAI_API_KEY": " "}) == ("sk-secrets", "secrets")

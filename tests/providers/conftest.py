"""One emulator for the whole provider suite, reset between tests.

Adapters talk to it over real loopback sockets: no HTTP mocks. Retries sleep
through an injected no-op so fault tests stay fast.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator

import pytest
from PIL import Image

import clock
from emulator import Emulator
from providers.http import HttpProvider
from providers.registry import PROVIDERS

LATENCY = 0.3


@pytest.fixture(scope="session")
def _emulator(tmp_path_factory) -> Iterator[Emulator]:
    emu = Emulator(port=0, data_dir=tmp_path_factory.mktemp("emulator"), latency=LATENCY).start()
    yield emu
    emu.stop()


@pytest.fixture
def emu(_emulator: Emulator) -> Iterator[Emulator]:
    _emulator.reset()
    _emulator.set_latency(LATENCY)
    yield _emulator
    _emulator.reset()


@pytest.fixture
def make(emu: Emulator) -> Iterator[Callable[..., HttpProvider]]:
    """Build a provider pointed at the emulator: ``make("apiframe", uploader=None, api_key="invalid")``."""
    made: list[HttpProvider] = []
    sleeps: list[float] = []

    def build(name: str, **kw) -> HttpProvider:
        kw.setdefault("api_key", "test-key")
        kw.setdefault("base_url", emu.url(name))
        kw.setdefault("uploader", emu.upload)
        kw.setdefault("retry_sleep", sleeps.append)
        provider = PROVIDERS[name](**kw)
        assert isinstance(provider, HttpProvider)
        made.append(provider)
        return provider

    build.sleeps = sleeps  # type: ignore[attr-defined]
    yield build
    for provider in made:
        provider.close()


def _png(w: int, h: int, mode: str) -> bytes:
    buf = io.BytesIO()
    colour = (200, 80, 40, 0) if mode == "RGBA" else (200, 80, 40)
    Image.new(mode, (w, h), colour).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def png_bytes() -> bytes:
    return _png(256, 256, "RGB")


@pytest.fixture(scope="session")
def mask_bytes() -> bytes:
    return _png(256, 256, "RGBA")


@pytest.fixture
def log(emu: Emulator) -> Callable[..., list[dict]]:
    """The emulator's request log for one provider: ``log("evolink", "GET", "/tasks/")``."""

    # A previous test's slow request can be logged after this test began: only count
    # requests the server received since now.
    started = clock.timestamp()

    def requests_to(provider: str, method: str | None = None, part: str = "") -> list[dict]:
        # The server logs a request after its answer is sent, so the client can be a
        # moment ahead: read until two reads agree.
        def read() -> list[dict]:
            return [
                r
                for r in emu.stats()["requests"]
                if r["at"] >= started
                and r["provider"] == provider
                and (method is None or r["method"] == method)
                and part in r["path"]
            ]

        before = read()
        for _ in range(20):
            time.sleep(0.05)
            after = read()
            if after == before:
                return after
            before = after
        return before

    return requests_to

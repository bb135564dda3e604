"""One emulator per test module (real loopback HTTP, port 0, a temp data dir),
reset before every test so faults, stats and jobs never leak between tests."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from emulator import Emulator

LATENCY = 0.2

KEYS = {
    "openai": {"Authorization": "Bearer sk-test"},
    "coretoday": {"X-API-Key": "cdt_test"},
    "apiframe": {"X-API-Key": "afk_test"},
    "evolink": {"Authorization": "Bearer ek-test"},
}
TERMINAL = {
    "coretoday": ("succeeded", "failed", "canceled"),
    "apiframe": ("COMPLETED", "FAILED"),
    "evolink": ("completed", "failed"),
}
STATUS_PATH = {
    "coretoday": "/v1/predictions/{}",
    "apiframe": "/v2/jobs/{}",
    "evolink": "/v1/tasks/{}",
}


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emulator = Emulator(data_dir=tmp_path_factory.mktemp("emu"), latency=LATENCY).start()
    yield emulator
    emulator.stop()


@pytest.fixture(autouse=True)
def _fresh(request: pytest.FixtureRequest) -> None:
    if "emu" in request.fixturenames:
        emulator = request.getfixturevalue("emu")
        emulator.reset()
        emulator.set_latency(LATENCY)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=15) as client:
        yield client


class Helper:
    """Small conveniences over raw HTTP so the tests read like the protocols."""

    def __init__(self, emu: Emulator, http: httpx.Client) -> None:
        self.emu = emu
        self.http = http

    def post(self, provider: str, path: str, **kw: Any) -> httpx.Response:
        headers = {**KEYS[provider], **kw.pop("headers", {})}
        return self.http.post(self.emu.url(provider) + path, headers=headers, **kw)

    def status(self, provider: str, job_id: str, **kw: Any) -> httpx.Response:
        headers = {**KEYS[provider], **kw.pop("headers", {})}
        return self.http.get(self.emu.url(provider) + STATUS_PATH[provider].format(job_id), headers=headers, **kw)

    def wait(self, provider: str, job_id: str, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            resp = self.status(provider, job_id)
            assert resp.status_code == 200, resp.text
            body = resp.json()
            if body["status"] in TERMINAL[provider]:
                return body
            assert time.monotonic() < deadline, f"job {job_id} still {body['status']}"
            time.sleep(0.04)

    @staticmethod
    def image(width: int = 64, height: int = 64, colour: tuple[int, ...] = (200, 30, 30), fmt: str = "PNG") -> bytes:
        return image_bytes(width, height, colour, fmt)

    def download(self, url: str) -> Image.Image:
        resp = self.http.get(url)
        assert resp.status_code == 200, resp.text
        img = Image.open(io.BytesIO(resp.content))
        img.load()
        return img


@pytest.fixture
def api(emu: Emulator, http: httpx.Client) -> Helper:
    return Helper(emu, http)


def image_bytes(width: int = 64, height: int = 64, colour: tuple[int, ...] = (200, 30, 30), fmt: str = "PNG") -> bytes:
    mode = "RGBA" if len(colour) == 4 else "RGB"
    out = io.BytesIO()
    Image.new(mode, (width, height), colour).save(out, fmt)
    return out.getvalue()

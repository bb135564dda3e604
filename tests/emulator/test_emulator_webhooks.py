"""The emulator calls back as each provider documents: EvoLink retries at 1, 2 and 4 s; Apiframe signs."""

from __future__ import annotations

import hashlib
import hmac
import socket
import threading
import time

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.emulator.conftest import KEYS


class Listener:
    def __init__(self, fail_first: int) -> None:
        self.calls: list[tuple[float, dict[str, str], bytes]] = []
        self.fail_first = fail_first
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

        async def hook(request: Request) -> Response:
            self.calls.append((time.monotonic(), dict(request.headers), await request.body()))
            return Response(status_code=500 if len(self.calls) <= self.fail_first else 204)

        app = Starlette(routes=[Route("/cb", hook, methods=["POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)

    url = property(lambda self: f"http://127.0.0.1:{self.port}/cb")

    def wait(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.calls) < count and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


@pytest.fixture
def listener(request):
    server = Listener(getattr(request, "param", 0))
    yield server
    server.stop()


@pytest.mark.parametrize("listener", [3], indirect=True)
def test_evolink_retries_a_failed_callback_at_1_2_and_4_seconds(api, emu, listener):
    emu.set_latency(0)
    resp = api.post("evolink", "/v1/images/generations",
                    json={"model": "gpt-image-2", "prompt": "x", "callback_url": listener.url})
    assert resp.status_code == 200
    listener.wait(4, timeout=12)
    times = [t for t, _, _ in listener.calls]
    assert len(times) == 4
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    for gap, documented in zip(gaps, (1.0, 2.0, 4.0), strict=True):
        assert documented - 0.2 < gap < documented + 1.0, gaps
    assert [d["status"] for d in emu.store.deliveries] == [500, 500, 500, 204]
    assert b'"status": "completed"' in listener.calls[-1][2]


def test_apiframe_signs_its_callback_with_the_key(api, emu, listener):
    emu.set_latency(0)
    resp = api.post("apiframe", "/v2/images/generate",
                    json={"model": "gpt-image-2", "prompt": "x", "webhookUrl": listener.url},
                    headers={"Idempotency-Key": "k-1"})
    assert resp.status_code == 202
    listener.wait(1, timeout=10)
    (_, headers, raw), = listener.calls
    key = KEYS["apiframe"]["X-API-Key"]
    secret = hashlib.sha256(key.encode()).hexdigest().encode()
    assert headers["x-webhook-signature"] == hmac.new(secret, raw, hashlib.sha256).hexdigest()
    assert headers["x-webhook-event"] == "completed" and b'"jobId"' in raw

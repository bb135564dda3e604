"""What the hostile-input tests are made of: small servers of their own on 127.0.0.1, and hostile files.

``FakeServer`` is a real HTTP server on a free loopback port answering from a
routing function; it records every request it receives, so a test can assert
that a listener standing for an internal service (a database port, a metadata
endpoint, an admin route) was never reached: ``hits == 0``.

``FakeProvider`` speaks just enough of EvoLink's and OpenAI's wire formats for
their real adapters (over real sockets) to create a job, poll it and fetch its
result: what it answers is the hostile part (a result link to a private address,
a redirect into loopback, a 401 body that echoes the key, a bomb as the image).
"""

from __future__ import annotations

import base64
import io
import json
import struct
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

Answer = tuple[int, dict[str, str], bytes]
Route = Callable[["Seen"], Answer]


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeServer:
    """A loopback HTTP server answering every request with ``route(seen)``."""

    route: Route = field(default=lambda seen: (200, {"Content-Type": "text/plain"}, b"INTERNAL-SECRET root:x:0:0"))
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                            self.rfile.read(length) if length else b"")
                owner.seen.append(seen)
                status, headers, body = owner.route(seen)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = do_HEAD = _any

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def hits(self) -> int:
        return len(self.seen)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def json_answer(body: Any, status: int = 200) -> Answer:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


def png(w: int = 64, h: int = 64, colour: tuple[int, int, int] = (200, 80, 40), mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h), colour if mode == "RGB" else (*colour, 0)).save(buf, "PNG")
    return buf.getvalue()


def png_of_size(width: int, height: int, *, colour_type: int = 0, bit_depth: int = 1) -> bytes:
    """A valid PNG of any size whose pixels are all zero: a 30000×30000 one is about 100 KB (a bomb)."""
    channels = {0: 1, 2: 3, 6: 4}[colour_type]
    row = b"\x00" + b"\x00" * ((width * channels * bit_depth + 7) // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header is rewritten to claim ``width``×``height``."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 20, 30)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    i = 2
    while i < len(data):
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC2):
            data[i + 5:i + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        i += 2 + length
    raise AssertionError("no frame header")


def webp_claiming(width: int, height: int) -> bytes:
    """A WebP whose VP8X canvas claims ``width``×``height`` (at most 16384 each)."""
    buf = io.BytesIO()
    Image.new("RGBA", (16, 16), (1, 2, 3, 4)).save(buf, "WEBP")
    data = bytearray(buf.getvalue())
    assert data[12:16] == b"VP8X"
    data[24:27] = (width - 1).to_bytes(3, "little")
    data[27:30] = (height - 1).to_bytes(3, "little")
    return bytes(data)


class FakeProvider(FakeServer):
    """EvoLink's create/poll/result and OpenAI's create, answering what the test scripts.

    ``result_url`` is what a finished EvoLink task names as its image (``{self}`` is
    replaced by this server's own address); ``files`` serves paths of this server;
    ``create`` overrides the answer to a job-creating POST.
    """

    def __init__(self) -> None:
        self.result_url = "{self}/files/out.png"
        self.files: dict[str, Answer] = {"/files/out.png": (200, {"Content-Type": "image/png"}, png())}
        self.create: Callable[[Seen], Answer] | None = None
        self.status: Callable[[Seen], Answer] | None = None  # the answer to EvoLink's status poll
        super().__init__(route=self._route)

    def _route(self, seen: Seen) -> Answer:
        if seen.method == "POST" and self.create is not None:
            return self.create(seen)
        if seen.method == "POST" and seen.path.endswith("/images/generations") and "/v1/" in seen.path:
            if seen.path.startswith("/openai/"):
                return json_answer({"created": 1, "data": [{"b64_json": base64.b64encode(png()).decode()}]})
            return json_answer({"id": "task-1", "status": "pending"})
        if seen.path.endswith("/v1/tasks/task-1") and self.status is not None:
            return self.status(seen)
        if seen.path.endswith("/v1/tasks/task-1"):
            url = self.result_url.replace("{self}", self.url)
            return json_answer({"id": "task-1", "status": "completed", "results": [url]})
        return self.files.get(seen.path.split("?")[0], (404, {"Content-Type": "text/plain"}, b"not here"))


def echo_key(seen: Seen) -> Answer:
    """A provider (or a proxy in front of it) that says which key it refused, and how it was sent."""
    key = seen.headers.get("authorization", "")
    return json_answer(
        {"error": {"message": f"Incorrect API key provided: {key.removeprefix('Bearer ')}. Header was "
                              f"'Authorization: {key}'", "type": "invalid_request_error", "code": "invalid_api_key"}},
        status=401,
    )


def hostile_job(store: Any, prompt: str, *, provider: str = "openai", status: str = "succeeded",
                error: Any = None, experiment_id: str | None = None, label: str | None = None) -> str:
    """One finished job with ``prompt`` (and an image, when it succeeded), through the store's own API."""
    from decimal import Decimal

    from core.history.views import Billing, Money, NewJob
    from core.jobs.claims import JobClaims
    from providers.registry import PROVIDERS
    from providers.types import ImageRequest

    model = PROVIDERS[provider].default_model
    request = ImageRequest(prompt=prompt, model=model, size="1:1", quality="low")
    _, (job_id,) = store.create_run(
        provider=provider, endpoint="live", request=request, experiment_id=experiment_id, label=label,
        jobs=[NewJob(prompt=prompt, n=1, quality="low", size="1:1",
                     estimate=Money(usd=Decimal("0.011"), amount=Decimal("0.011"), unit="USD"))],
    )
    images = [(store.files.put(png(96, 96, (len(prompt) % 255, 90, 40)), "png"), None)] if status == "succeeded" else []
    JobClaims(store.engine).finish(job_id, None, status=status, billing=Billing("estimated"), images=images,
                                   error=error)
    return job_id

"""A local HTTP server that speaks the four providers' wire protocols.

OpenAI, core.today, Apiframe and EvoLink each answer under their own prefix
(``http://127.0.0.1:PORT/openai`` ...), with realistic latency, real
(labelled SIMULATED) images, persisted jobs and injectable faults, so the app,
its tests and its benchmarks run offline::

    emu = Emulator(latency=0.5).start()
    provider = OpenAIProvider(api_key="sk-test", base_url=emu.url("openai") + "/v1")
    emu.inject("openai", "rate_limit", retry_after=2)
    ...
    emu.stop()

Any non-empty key works except keys starting with ``invalid`` (401). The server
never reaches the internet: input image URLs must be on loopback (``upload()``
turns local bytes into such a URL).
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from .app import build_app, check_fault
from .files import sniff_format
from .store import PROVIDERS, Store

__all__ = ["PROVIDERS", "Emulator"]


class Emulator:
    """The emulator server, run by uvicorn in a background thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: Path | None = None,
        latency: float = 3.0,
        apiframe_result_shape: str = "images",
        prerender: bool = False,
        jitter: float = 0.0,
    ) -> None:
        """``jitter``: each job's time is ``latency`` times a factor in [1 - jitter, 1 + jitter], fixed by its id."""
        if not 0.0 <= jitter < 1.0:
            raise ValueError("jitter must be at least 0 and below 1")
        if apiframe_result_shape not in ("images", "string"):
            raise ValueError("apiframe_result_shape must be 'images' or 'string'")
        self.host = host
        self.port = port
        if data_dir is None:
            # No directory given: jobs still persist, but only for this process's temp dir.
            data_dir = Path(tempfile.mkdtemp(prefix="image-studio-emulator-"))
        self.data_dir = Path(data_dir)
        self.store = Store(self.data_dir, latency, apiframe_result_shape, jitter=jitter)
        self.store.prerender = prerender
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    # --- lifecycle ---------------------------------------------------------------
    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("127.0.0.1", "0.0.0.0", "localhost", "") else self.host
        return f"http://{host}:{self.port}"

    def url(self, provider: str) -> str:
        if provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {', '.join(PROVIDERS)}")
        return f"{self.base_url}/{provider}"

    def start(self) -> Emulator:
        """Bind, serve in a background thread, return once listening (port 0 picks a free port)."""
        if self._thread is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto=IPPROTO_TCP, not 0: asyncio only sets TCP_NODELAY on sockets that say they are TCP, and
        # without it a response body waits for the delayed ACK of its headers (40 ms on loopback).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self.store.base_url = self.base_url
        config = uvicorn.Config(
            build_app(self.store),
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"emulator:{self.port}", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise RuntimeError(f"the emulator did not start on {self.base_url}")
            time.sleep(0.01)
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- control (direct on the shared state: no HTTP round trip) ----------------------
    def inject(self, provider: str, kind: str, op: str = "submit", count: int = 1, **kw: Any) -> None:
        """Queue a fault: the next ``count`` matching requests get it (see ``/_admin/faults``)."""
        self.store.add_fault(check_fault({"provider": provider, "kind": kind, "op": op, "count": count, **kw}))

    def stats(self) -> dict[str, Any]:
        return self.store.stats()

    def reset(self, *, settle: float = 10.0) -> None:
        """Forget faults, the log and every job.

        Answers still on their way (a slow fault whose client gave up) finish first, up to
        ``settle`` seconds: otherwise one would log itself, or make its job, after the reset,
        inside the next test's clean slate.
        """
        self.store.wait_idle(settle)
        self.store.reset()

    def set_latency(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        self.store.latency = float(seconds)

    @property
    def latency(self) -> float:
        return self.store.latency

    @property
    def jitter(self) -> float:
        return self.store.jitter

    def upload(self, data: bytes, mime: str) -> str:
        """Host image bytes on loopback; returns the URL to give URL-only providers."""
        if not mime.lower().startswith("image/"):
            raise ValueError(f"upload takes image bytes, not {mime!r}")
        ext = sniff_format(data)
        if ext is None:
            raise ValueError(f"the {mime} bytes are not a readable image")
        if not self.store.base_url:
            raise RuntimeError("start() the emulator before uploading: the URL needs its port")
        return self.store.upload_url(self.store.store_upload(data, ext))

"""The Starlette app: the four providers, ``/_files/`` (a CDN, no auth) and
``/_admin/`` (tests and benchmarks: health, faults, stats, reset, latency, uploads)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import clock
from providers import redact

from .apiframe import ApiframeAPI
from .common import DropConnection, ProviderAPI, drop_response, retry_headers
from .coretoday import CoreTodayAPI
from .evolink import EvoLinkAPI
from .files import FileService, sniff_format
from .openai_api import OpenAIAPI
from .store import FAULT_KINDS, FAULT_OPS, MIME_BY_EXT, PROVIDERS, Job, Store

__all__ = ["SERVICE", "VERSION", "build_app", "check_fault"]

log = logging.getLogger(__name__)

SERVICE = "image-studio-emulator"
VERSION = 1
MAX_UPLOAD_BYTES = 64 * 1024 * 1024


def check_fault(spec: dict[str, Any]) -> dict[str, Any]:
    """A fault description, checked and completed; raises ValueError naming the bad field."""
    provider = spec.get("provider")
    if provider not in (*PROVIDERS, "any"):
        raise ValueError(f"provider must be one of {', '.join((*PROVIDERS, 'any'))} (got {provider!r})")
    kind = spec.get("kind")
    if kind not in FAULT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)} (got {kind!r})")
    op = spec.get("op", "submit")
    if op not in FAULT_OPS:
        raise ValueError(f"op must be one of {', '.join(FAULT_OPS)} (got {op!r})")
    count = spec.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError("count must be a positive integer")
    fault = dict(spec) | {"provider": provider, "kind": kind, "op": op, "count": count}
    for name in ("retry_after", "delay"):
        value = fault.get(name)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool) or value < 0):
            raise ValueError(f"{name} must be a number of seconds >= 0")
    if fault.get("stage") not in (None, "input", "output"):
        raise ValueError("stage must be input or output")
    if fault.get("mode") not in (None, "502", "close"):
        raise ValueError("mode must be 502 or close")
    return fault


class _RequestLog:
    """Records every provider and file request (not admin ones) for ``stats()``, and counts
    those still being answered (``Emulator.reset`` lets them finish first)."""

    def __init__(self, app: ASGIApp, store: Store) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._logged(scope, receive, send)
        except ClientDisconnect:
            # The client gave up before its request was read (a slow fault outlasting its timeout):
            # there is no one to answer and nothing went wrong here, so no traceback in the log.
            log.info("emulator: %s %s: the client hung up before its request was read", scope.get("method"),
                     scope.get("path"))

    async def _logged(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_admin/"):
            await self.app(scope, receive, send)
            return
        received = clock.timestamp()  # logged as "at": a slow answer still sorts by when it arrived
        logged = False

        def note(status: int | None) -> None:
            nonlocal logged
            if logged:
                return
            logged = True
            state = scope.get("state") or {}
            prefix = scope["path"].strip("/").split("/", 1)[0]
            provider = state.get("emu_provider") or (prefix if prefix in PROVIDERS else "files")
            self.store.log_request(provider, scope["method"], scope["path"], status, at=received)

        status: int | None = None
        self.store.request_began()

        async def send_and_note(message: Message) -> None:
            # Log just before the answer's last part leaves: a client that reads the stats right
            # after its response must find its own request there. An answer cut off midway (a
            # dropped connection) never gets here and is logged without a status.
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                note(status)
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            note(None)  # no answer reached the client (a dropped connection, an error)
            self.store.request_ended()


class _QuietDrops(logging.Filter):
    """Emulated dropped connections are not server errors: keep them out of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DropConnection))


def build_app(store: Store) -> Starlette:
    redact.install_log_redaction()  # a key in a request never reaches the emulator's log either
    files = FileService(store)
    apis: list[ProviderAPI] = [cls(store, files) for cls in (OpenAIAPI, CoreTodayAPI, ApiframeAPI, EvoLinkAPI)]
    server_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in server_log.filters):
        server_log.addFilter(_QuietDrops())
    routes = _Admin(store, files).routes()
    for api in apis:
        routes.extend(api.routes())
    app = Starlette(routes=routes)
    app.add_middleware(_RequestLog, store=store)
    return app


class _Admin:
    """``/_admin/`` (tests and benchmarks drive the emulator through it) and ``/_files/`` (the CDN)."""

    def __init__(self, store: Store, files: FileService) -> None:
        self.store = store
        self.files = files

    def routes(self) -> list[Route]:
        return [
            Route("/_admin/health", self.health, methods=["GET"]),
            Route("/_admin/faults", self.faults, methods=["POST"]),
            Route("/_admin/stats", self.stats, methods=["GET"]),
            Route("/_admin/reset", self.reset, methods=["POST"]),
            Route("/_admin/latency", self.latency, methods=["POST"]),
            Route("/_admin/uploads", self.uploads, methods=["POST"]),
            Route("/_files/{name:path}", self.serve_file, methods=["GET", "HEAD"]),
        ]

    async def health(self, request: Request) -> Response:
        return JSONResponse({"service": SERVICE, "version": VERSION, "latency": self.store.latency})

    async def faults(self, request: Request) -> Response:
        try:
            spec = await request.json()
            if not isinstance(spec, dict):
                raise ValueError("the body must be a JSON object")
            fault = check_fault(spec)
        except ValueError as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        self.store.add_fault(fault)
        return JSONResponse({"ok": True, "faults": self.store.stats()["faults"]})

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.store.stats())

    async def reset(self, request: Request) -> Response:
        self.store.reset()
        return JSONResponse({"ok": True})

    async def latency(self, request: Request) -> Response:
        try:
            seconds = (await request.json())["seconds"]
            if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": 'send {"seconds": <number >= 0>}'}, status_code=400)
        self.store.latency = float(seconds)
        return JSONResponse({"ok": True, "latency": self.store.latency})

    async def uploads(self, request: Request) -> Response:
        mime = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not mime.startswith("image/"):
            return JSONResponse({"error": "send the image bytes with Content-Type image/*"}, status_code=400)
        data = await request.body()
        if not data or len(data) > MAX_UPLOAD_BYTES:
            return JSONResponse({"error": f"the body must be 1 byte to {MAX_UPLOAD_BYTES:,} bytes"}, status_code=400)
        ext = sniff_format(data)
        if ext is None:
            return JSONResponse({"error": f"not a readable image ({mime})"}, status_code=400)
        name = self.store.store_upload(data, ext)
        return JSONResponse({"url": self.store.upload_url(name)})

    async def serve_file(self, request: Request) -> Response:
        name = request.path_params["name"]
        found = self.files.job_for(name)
        if found is not None:
            job = found[0]
            request.state.emu_provider = job.provider
            answer = await _file_fault(self.store, job)
            if answer is not None:
                return answer
            if job.expired:
                return _gone()
        data = await self.files.read(name)
        if data is None:
            return PlainTextResponse("not found", status_code=404)
        mime = MIME_BY_EXT.get(name.rpartition(".")[2], "application/octet-stream")
        return Response(data, media_type=mime, headers={"Cache-Control": "public, max-age=86400"})


def _gone() -> Response:
    return PlainTextResponse("expired: this result URL is no longer available", status_code=404)


# Result-download faults answered at once, CDN-style (plain text, no provider error shape).
_FILE_FAULT_ANSWERS: dict[str, Callable[[dict[str, Any]], Response]] = {
    "rate_limit": lambda fault: PlainTextResponse(
        "rate limited", status_code=429, headers=retry_headers(fault.get("retry_after"))
    ),
    "server_error": lambda fault: PlainTextResponse("internal error", status_code=500),
    "malformed": lambda fault: Response(b"\x00this is not an image\x00", media_type="image/png"),
    "auth": lambda fault: PlainTextResponse("access denied", status_code=401),
    "quota": lambda fault: PlainTextResponse("payment required", status_code=402),
    "drop_after_create": drop_response,
    "model_not_found": lambda fault: PlainTextResponse("not found", status_code=404),
}


async def _file_fault(store: Store, job: Job) -> Response | None:
    """Faults on a result download (op "result"): CDN-style plain answers."""
    fault = store.take_fault(job.provider, "result")
    if fault is None:
        return None
    kind = fault["kind"]
    if kind == "slow":
        await asyncio.sleep(float(fault.get("delay") or 1.0))
        return None
    if kind == "expired_url":
        with store.lock:  # from now on every URL of this job is gone
            job.expired = True
            store.save(job)
        return _gone()
    answer = _FILE_FAULT_ANSWERS.get(kind)
    return answer(fault) if answer is not None else None  # job_failed / moderation cannot act on a finished file

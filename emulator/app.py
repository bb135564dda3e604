"""The Starlette app: the four providers, ``/_files/`` (a CDN, no auth) and
``/_admin/`` (tests and benchmarks: health, faults, stats, reset, latency, uploads)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import clock

from .apiframe import ApiframeAPI
from .common import DropConnection, FileService, ProviderAPI, drop_response, retry_headers, sniff_format
from .coretoday import CoreTodayAPI
from .evolink import EvoLinkAPI
from .openai_api import OpenAIAPI
from .store import FAULT_KINDS, FAULT_OPS, MIME_BY_EXT, PROVIDERS, Job, Store

__all__ = ["SERVICE", "VERSION", "build_app", "check_fault"]

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
    """Records every provider and file request (not admin ones) for ``stats()``."""

    def __init__(self, app: ASGIApp, store: Store) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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


class _QuietDrops(logging.Filter):
    """Emulated dropped connections are not server errors: keep them out of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DropConnection))


def build_app(store: Store) -> Starlette:
    files = FileService(store)
    apis: list[ProviderAPI] = [cls(store, files) for cls in (OpenAIAPI, CoreTodayAPI, ApiframeAPI, EvoLinkAPI)]
    server_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in server_log.filters):
        server_log.addFilter(_QuietDrops())

    async def health(request: Request) -> Response:
        return JSONResponse({"service": SERVICE, "version": VERSION, "latency": store.latency})

    async def faults(request: Request) -> Response:
        try:
            spec = await request.json()
            if not isinstance(spec, dict):
                raise ValueError("the body must be a JSON object")
            fault = check_fault(spec)
        except ValueError as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        store.add_fault(fault)
        return JSONResponse({"ok": True, "faults": store.stats()["faults"]})

    async def stats(request: Request) -> Response:
        return JSONResponse(store.stats())

    async def reset(request: Request) -> Response:
        store.reset()
        return JSONResponse({"ok": True})

    async def latency(request: Request) -> Response:
        try:
            seconds = (await request.json())["seconds"]
            if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": 'send {"seconds": <number >= 0>}'}, status_code=400)
        store.latency = float(seconds)
        return JSONResponse({"ok": True, "latency": store.latency})

    async def uploads(request: Request) -> Response:
        mime = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not mime.startswith("image/"):
            return JSONResponse({"error": "send the image bytes with Content-Type image/*"}, status_code=400)
        data = await request.body()
        if not data or len(data) > MAX_UPLOAD_BYTES:
            return JSONResponse({"error": f"the body must be 1 byte to {MAX_UPLOAD_BYTES:,} bytes"}, status_code=400)
        ext = sniff_format(data)
        if ext is None:
            return JSONResponse({"error": f"not a readable image ({mime})"}, status_code=400)
        name = store.store_upload(data, ext)
        return JSONResponse({"url": store.upload_url(name)})

    async def serve_file(request: Request) -> Response:
        name = request.path_params["name"]
        found = files.job_for(name)
        if found is not None:
            job = found[0]
            request.state.emu_provider = job.provider
            answer = await _file_fault(store, job)
            if answer is not None:
                return answer
            if job.expired:
                return PlainTextResponse("expired: this result URL is no longer available", status_code=404)
        data = await files.read(name)
        if data is None:
            return PlainTextResponse("not found", status_code=404)
        mime = MIME_BY_EXT.get(name.rpartition(".")[2], "application/octet-stream")
        return Response(data, media_type=mime, headers={"Cache-Control": "public, max-age=86400"})

    routes: list[Route] = [
        Route("/_admin/health", health, methods=["GET"]),
        Route("/_admin/faults", faults, methods=["POST"]),
        Route("/_admin/stats", stats, methods=["GET"]),
        Route("/_admin/reset", reset, methods=["POST"]),
        Route("/_admin/latency", latency, methods=["POST"]),
        Route("/_admin/uploads", uploads, methods=["POST"]),
        Route("/_files/{name:path}", serve_file, methods=["GET", "HEAD"]),
    ]
    for api in apis:
        routes.extend(api.routes())
    app = Starlette(routes=routes)
    app.add_middleware(_RequestLog, store=store)
    return app


async def _file_fault(store: Store, job: Job) -> Response | None:
    """Faults on a result download (op "result"): CDN-style plain answers."""
    fault = store.take_fault(job.provider, "result")
    if fault is None:
        return None
    kind = fault["kind"]
    if kind == "slow":
        await asyncio.sleep(float(fault.get("delay") or 1.0))
        return None
    if kind == "rate_limit":
        return PlainTextResponse("rate limited", status_code=429, headers=retry_headers(fault.get("retry_after")))
    if kind == "server_error":
        return PlainTextResponse("internal error", status_code=500)
    if kind == "malformed":
        return Response(b"\x00this is not an image\x00", media_type="image/png")
    if kind == "auth":
        return PlainTextResponse("access denied", status_code=401)
    if kind == "quota":
        return PlainTextResponse("payment required", status_code=402)
    if kind == "drop_after_create":
        return drop_response(fault)
    if kind == "expired_url":
        with store.lock:  # from now on every URL of this job is gone
            job.expired = True
            store.save(job)
        return PlainTextResponse("expired: this result URL is no longer available", status_code=404)
    if kind == "model_not_found":
        return PlainTextResponse("not found", status_code=404)
    return None  # job_failed / moderation cannot act on a finished file

"""Pieces shared by the four emulated providers: size rules, the request
pipeline (faults, then auth), input-image fetching (loopback only) and the
files the emulator serves under ``/_files/``."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import math
import secrets
import time
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from PIL import UnidentifiedImageError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

import clock

from . import images
from .store import JOB_FAULT_KINDS, QUEUE_FRACTION, Job, Store

log = logging.getLogger(__name__)

__all__ = [
    "GPT2_RATIOS",
    "MAX_EDGE",
    "MAX_PIXELS",
    "MIN_PIXELS",
    "RATIO_PIXELS",
    "DropConnection",
    "FileService",
    "InputError",
    "ProviderAPI",
    "Refusal",
    "gpt2_size_problem",
    "parse_wxh",
    "ratio_to_pixels",
]

# gpt-image-2 size rules (the openai package 3.57, image_generate_params.py `size`).
MIN_PIXELS = 655_360
MAX_PIXELS = 8_294_400
MAX_EDGE = 3840
MAX_RATIO = 3
RATIO_PIXELS = {"1:1": (1024, 1024), "3:2": (1536, 1024), "2:3": (1024, 1536)}
GPT2_RATIOS = (
    "1:1", "1:2", "2:1", "1:3", "3:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "9:21", "21:9",
)  # fmt: skip
# EvoLink's resolution tiers, read as a target pixel area (our stand-in: not published).
RESOLUTION_AREA = {"1K": 1024 * 1024, "2K": 2048 * 2048, "4K": 3840 * 2160}
ALLOWED_INPUT_FORMATS = ("png", "jpeg", "webp")


def parse_wxh(size: str) -> tuple[int, int] | None:
    w, sep, h = size.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit():
        return None
    return int(w), int(h)


def gpt2_size_problem(width: int, height: int) -> str | None:
    """Why ``width``x``height`` breaks the gpt-image-2 rules, or None when it is fine."""
    if width % 16 or height % 16:
        return "both edges must be multiples of 16"
    if max(width, height) > MAX_EDGE:
        return f"the longest edge must be at most {MAX_EDGE} px"
    if max(width, height) > MAX_RATIO * min(width, height):
        return "the aspect ratio must be between 1:3 and 3:1"
    if not MIN_PIXELS <= width * height <= MAX_PIXELS:
        return f"the image must have between {MIN_PIXELS:,} and {MAX_PIXELS:,} pixels"
    return None


def ratio_to_pixels(ratio: str, resolution: str | None = None) -> tuple[int, int]:
    """Pixels for an aspect ratio: the classic three map to OpenAI's sizes; other
    ratios (and any ratio with a 1K/2K/4K tier) get about the tier's pixel area,
    edges multiples of 16, within the gpt-image-2 limits."""
    if resolution is None and ratio in RATIO_PIXELS:
        return RATIO_PIXELS[ratio]
    a, b = (int(x) for x in ratio.split(":"))
    area = RESOLUTION_AREA[resolution or "1K"]
    w = math.sqrt(area * a / b)
    h = w * b / a
    scale = min(1.0, MAX_EDGE / max(w, h))
    w16 = max(16, int(w * scale / 16) * 16)  # round down: never above the tier area
    h16 = max(16, int(h * scale / 16) * 16)
    while max(w16, h16) > MAX_RATIO * min(w16, h16):  # rounding pushed it past 3:1
        if w16 > h16:
            w16 -= 16
        else:
            h16 -= 16
    return w16, h16  # every tier's area is far above MIN_PIXELS (tests check each ratio and tier)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


def sniff_format(data: bytes) -> str | None:
    try:
        fmt = (images.decode(data).format or "").lower()
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    return "jpeg" if fmt in ("jpg", "mpo") else fmt  # Pillow calls some camera JPEGs MPO


def new_token(n: int = 8) -> str:
    return secrets.token_hex(n)


class InputError(Exception):
    """A request the emulator refuses (bad input image URL, unreadable file...)."""

    def __init__(self, message: str, *, field: str = "input_images", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


class Refusal(Exception):
    """Carries a provider-shaped error answer out of validation code."""

    def __init__(self, response: Response) -> None:
        super().__init__("request refused")
        self.response = response


class DropConnection(Exception):
    """Raised after the response has started: uvicorn then closes the socket."""


class _DropResponse(Response):
    """Starts an answer and hangs up: the client sees a broken connection."""

    def __init__(self) -> None:
        super().__init__(b"", status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
        raise DropConnection("emulated dropped connection")


BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)


def drop_response(fault: dict[str, Any]) -> Response:
    """The "sent but no answer" case: a proxy's 502 page, or (mode=close) a cut connection."""
    if fault.get("mode") == "close":
        return _DropResponse()
    return Response(BAD_GATEWAY_HTML, status_code=502, media_type="text/html")


def malformed_response() -> Response:
    # Claims JSON but is cut short, like a proxy that truncated the body.
    return Response(b'{"status": "ok", "data": [{"b64_json": "iVBORw0K', media_type="application/json")


class FileService:
    """Files served under ``/_files/``: uploads, and job results rendered on first request."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def job_for(self, name: str) -> tuple[Job, int] | None:
        stem, _, _ = name.rpartition(".")
        job_id, _, idx = stem.rpartition("-")
        job = self.store.get(job_id)
        if job is None or not idx.isdigit() or job.sync:
            return None
        index = int(idx) - 1
        if not 0 <= index < job.params["n"] or name != self.store.result_name(job, index):
            return None
        return job, index

    async def read(self, name: str) -> bytes | None:
        """The bytes of a file, or None when there is no such file (or it is not ready)."""
        if "/" in name.strip("/") and not name.startswith("uploads/"):
            return None
        if name.startswith("uploads/"):
            path = self.store.uploads_dir / name.removeprefix("uploads/")
            if "/" in name.removeprefix("uploads/") or not path.is_file():
                return None
            return await run_in_threadpool(path.read_bytes)
        found = self.job_for(name)
        if found is None:
            return None
        job, index = found
        state, _, _ = self.store.observe(job)
        if state != "succeeded":
            return None
        path = self.store.files_dir / name
        if path.is_file():
            return await run_in_threadpool(path.read_bytes)
        return await run_in_threadpool(self._render_to_disk, job, index, path)

    def prerender(self, job: Job) -> None:
        """Render a job's results now, so they exist when it completes (as a real provider's do).

        Opt-in (``Emulator(prerender=True)``): by default results are rendered on their
        first download, which puts the emulator's rendering after "succeeded".
        """
        for index in range(job.params["n"]):
            path = self.store.files_dir / self.store.result_name(job, index)
            if not path.is_file():
                try:
                    self._render_to_disk(job, index, path)
                except (OSError, ValueError) as err:  # the first download renders it again, and reports
                    log.warning("emulator: could not prerender %s: %s", path.name, err)
                    return

    def _render_to_disk(self, job: Job, index: int, path: Any) -> bytes:
        data = render_job(self.store, job, index)
        tmp = path.with_suffix(f".{new_token(4)}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return data

    async def fetch(self, url: str, *, max_bytes: int) -> bytes:
        """An input image from a loopback URL (the emulator's own files are read from disk)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"input image URL {url!r} is not an http(s) URL")
        if not is_loopback(parts.hostname):
            raise InputError(
                f"input image URL {url} is not on this machine: the emulator never fetches from the "
                "internet. Upload the file first (POST /_admin/uploads, or Emulator.upload) and pass "
                "the 127.0.0.1 URL it returns."
            )
        try:
            port = parts.port
        except ValueError:
            raise InputError(f"input image URL {url!r} has an invalid port") from None
        own = self.store.base_url and urlsplit(self.store.base_url).port == port
        if own and parts.path.startswith("/_files/"):
            name = parts.path.removeprefix("/_files/")
            found = self.job_for(name)
            if found is not None and found[0].expired:
                raise InputError(f"input image URL {url} has expired")
            data = await self.read(name)
            if data is None:
                raise InputError(f"input image URL {url} answered 404")
        else:
            try:
                # No proxies from the environment and no redirects: the fetch must stay on loopback.
                async with httpx.AsyncClient(timeout=10, follow_redirects=False, trust_env=False) as client:
                    resp = await client.get(url)
            except httpx.HTTPError as e:
                raise InputError(f"could not fetch input image URL {url}: {e}") from e
            if resp.status_code != 200:
                raise InputError(f"input image URL {url} answered HTTP {resp.status_code}")
            data = resp.content
        if len(data) > max_bytes:
            raise InputError(f"input image {url} is {len(data):,} bytes; the limit is {max_bytes:,}")
        return data

    async def fetch_inputs(self, urls: list[Any], *, max_bytes: int, field: str = "input_images") -> list[str]:
        """Fetch, check and keep input images; returns their upload names."""
        names = []
        for url in urls:
            if not isinstance(url, str) or not url:
                raise InputError("input image URLs must be non-empty strings", field=field)
            try:
                data = await self.fetch(url, max_bytes=max_bytes)
            except InputError as e:
                e.field = field
                raise
            names.append(self.keep_image(data, label=url, field=field))
        return names

    def keep_image(self, data: bytes, *, label: str, field: str = "input_images") -> str:
        fmt = sniff_format(data)
        if fmt not in ALLOWED_INPUT_FORMATS:
            raise InputError(f"input image {label} is not a PNG, JPEG or WebP image", field=field)
        return self.store.store_upload(data, fmt)


def render_job(store: Store, job: Job, index: int) -> bytes:
    p = job.params
    inputs = [(store.uploads_dir / name).read_bytes() for name in job.inputs]
    return images.render(
        width=p["width"],
        height=p["height"],
        fmt=p["format"],
        prompt=p["prompt"],
        index=index,
        provider=job.provider,
        model=job.model,
        quality=p.get("quality", ""),
        compression=p.get("compression"),
        transparent=bool(p.get("transparent")),
        inputs=inputs,
    )


class ProviderAPI:
    """One emulated provider: its error shape, its auth header, its faults."""

    name: ClassVar[str]
    # kind -> (HTTP status, code, message, type) for faults answered at once
    FAULTS: ClassVar[dict[str, tuple[int, str, str, str]]] = {}
    # Failure reasons a job ends with, per fault kind: (code, message)
    FAILURES: ClassVar[dict[str, tuple[str, str]]] = {
        "job_failed": ("generation_failed", "The provider failed to generate the image"),
        "moderation": ("content_policy_violation", "Provider returned an error: content policy violation"),
    }

    def __init__(self, store: Store, files: FileService) -> None:
        self.store = store
        self.files = files

    # --- provider-specific -----------------------------------------------------
    def error(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        etype: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        raise NotImplementedError

    def api_key(self, request: Request) -> str | None:
        return bearer(request)

    def auth_error(self, key: str | None) -> Response:
        if not key:
            return self.error(401, "missing_api_key", "Missing API key", etype="authentication_error")
        return self.error(401, "invalid_api_key", "Invalid API key", etype="authentication_error")

    # --- the pipeline -------------------------------------------------------------
    def json(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return JSONResponse(body, status_code=status, headers=headers)

    def fault_error(self, fault: dict[str, Any]) -> Response:
        kind = fault["kind"]
        status, code, message, etype = self.FAULTS[kind]
        headers = None
        if kind == "rate_limit":
            headers = retry_headers(fault.get("retry_after"))
        return self.error(status, code, message, etype=etype, headers=headers)

    async def begin(self, request: Request, op: str) -> tuple[Response | None, dict[str, Any] | None]:
        """Apply a queued fault, then check the key.

        Returns (answer, None) to stop here, or (None, job_fault) to go on, where
        job_fault is a job-level fault the handler applies once a job exists.
        """
        fault = self.store.take_fault(self.name, op)
        if fault is not None:
            kind = fault["kind"]
            if kind == "slow":
                await asyncio.sleep(float(fault.get("delay") or 1.0))
                fault = None
            elif kind == "malformed":
                return malformed_response(), None
            elif kind not in JOB_FAULT_KINDS:
                return self.fault_error(fault), None
        key = self.api_key(request)
        if not key or key.startswith("invalid"):
            if fault is not None:
                self.store.give_back(fault)
            return self.auth_error(key), None
        return None, fault

    def failure(self, fault: dict[str, Any]) -> dict[str, Any]:
        """The error a job ends with for a job_failed / moderation fault."""
        code, message = self.FAILURES[fault["kind"]]
        err = {"code": fault.get("code") or code, "message": fault.get("message") or message}
        if fault["kind"] == "moderation":
            err["stage"] = fault.get("stage") or "output"
        return err

    def plan_fault(self, job: Job, fault: dict[str, Any] | None) -> None:
        """Mark a new job with a job-level fault (before it is saved)."""
        if fault is None:
            return
        kind = fault["kind"]
        if kind in ("job_failed", "moderation"):
            job.error = self.failure(fault)
            # An input-stage block shows as soon as the job leaves the queue.
            stage = job.error.get("stage")
            job.fail_fraction = QUEUE_FRACTION if stage == "input" else 1.0
        elif kind == "expired_url":
            job.expired = True

    def status_fault(self, job: Job, fault: dict[str, Any] | None) -> Response | None:
        """Apply a job-level fault that arrived on a status request."""
        if fault is None:
            return None
        kind = fault["kind"]
        if kind == "drop_after_create":
            return drop_response(fault)
        with self.store.lock:
            if kind == "expired_url":
                job.expired = True
            elif job.final_state is None and job.job_time > 0:
                # Fail it from now on (a finished job cannot fail any more).
                job.error = self.failure(fault)
                job.fail_fraction = min(1.0, max(0.0, (clock.timestamp() - job.created_at) / job.job_time))
            self.store.save(job)
        return None

    async def read_json(self, request: Request) -> Any:
        raw = await request.body()
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return _BAD_JSON

    def new_job(
        self,
        job_id: str,
        model: str,
        params: dict[str, Any],
        request: dict[str, Any],
        inputs: list[str],
        fault: dict[str, Any] | None,
        *,
        sync: bool = False,
        idempotency_key: str | None = None,
        body_sha: str | None = None,
    ) -> Job:
        job = Job(
            id=job_id,
            provider=self.name,
            model=model,
            params=params,
            request=request,
            created_at=clock.timestamp(),
            job_time=self.store.latency,
            inputs=inputs,
            sync=sync,
            idempotency_key=idempotency_key,
            body_sha=body_sha,
        )
        self.plan_fault(job, fault)
        self.store.add(job)
        return job

    # --- the asynchronous providers' create and poll --------------------------------
    def refuse(self, message: str, *, param: str | None = None, code: str = "invalid_parameters") -> Refusal:
        return Refusal(self.error(400, code, message, param=param, etype="invalid_request_error"))

    def pick(self, d: dict[str, Any], name: str, allowed: tuple[str, ...], default: str, where: str = "") -> str:
        value = d.get(name)
        if value is None:
            return default
        if value not in allowed:
            raise self.refuse(
                f"{where}{name} must be one of {', '.join(allowed)} (got {value!r})", param=f"{where}{name}"
            )
        return value

    def int_in(
        self, d: dict[str, Any], name: str, lo: int, hi: int, default: int | None, where: str = ""
    ) -> int | None:
        value = d.get(name)
        if value is None:
            return default
        if not is_int(value) or not lo <= value <= hi:
            what = f"exactly {lo}" if lo == hi else f"an integer from {lo} to {hi}"
            raise self.refuse(f"{where}{name} must be {what} (got {value!r})", param=f"{where}{name}")
        return value

    def only_keys(self, d: dict[str, Any], allowed: set[str] | frozenset[str], where: str = "") -> None:
        for key in d:
            if key not in allowed:
                raise self.refuse(
                    f"Unknown parameter {where}{key}; accepted: {', '.join(sorted(allowed))}", param=f"{where}{key}"
                )

    def url_list(self, value: Any, name: str, *, max_items: int = 16, single_ok: bool = False) -> list[str]:
        if value is None:
            return []
        if single_ok and isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(u, str) and u for u in value):
            kind = "a URL or a list of URLs" if single_ok else "a list of URLs"
            raise self.refuse(f"{name} must be {kind}", param=name)
        if len(value) > max_items:
            raise self.refuse(f"{name} takes at most {max_items} images (got {len(value)})", param=name)
        return value

    def job_missing(self, job_id: str) -> Response:
        return self.error(404, "not_found", f"Job {job_id} not found", etype="invalid_request_error")

    def describe(self, job: Job) -> dict[str, Any]:
        raise NotImplementedError

    def created(self, job: Job) -> Response:
        raise NotImplementedError

    async def submit(self, request: Request, build: Any) -> Response:
        """begin → ``build(request)`` (validates, fetches inputs, returns ``new_job`` kwargs) → job."""
        stop, fault = await self.begin(request, "submit")
        if stop is not None:
            return stop
        try:
            spec = await build(request)
            if isinstance(spec, Response):  # an idempotent replay: no new job
                if fault is not None:
                    self.store.give_back(fault)
                return spec
        except Refusal as r:
            if fault is not None:
                self.store.give_back(fault)
            return r.response
        except InputError as e:
            if fault is not None:
                self.store.give_back(fault)
            return self.error(e.status, "invalid_parameters", e.message, param=e.field, etype="invalid_request_error")
        job = self.new_job(fault=fault, **spec)
        if self.store.prerender and not job.sync:
            asyncio.get_running_loop().run_in_executor(None, self.files.prerender, job)
        if fault is not None and fault["kind"] == "drop_after_create":
            return drop_response(fault)
        return self.created(job)

    async def poll(self, request: Request) -> Response:
        job_id = request.path_params["id"]
        self.store.count_poll(job_id)
        stop, fault = await self.begin(request, "status")
        if stop is not None:
            return stop
        job = self.store.get(job_id)
        if job is None or job.provider != self.name:
            if fault is not None:
                self.store.give_back(fault)
            return self.job_missing(job_id)
        answer = self.status_fault(job, fault)
        if answer is not None:
            return answer
        return self.json(self.describe(job))

    def params_for(
        self,
        *,
        width: int,
        height: int,
        fmt: str,
        quality: str,
        n: int,
        prompt: str,
        compression: int | None = None,
        transparent: bool = False,
        **extra: Any,
    ) -> dict[str, Any]:
        return {
            "width": width,
            "height": height,
            "format": fmt,
            "compression": compression if fmt in ("jpeg", "webp") else None,
            "transparent": transparent,
            "quality": quality,
            "n": n,
            "prompt": prompt,
            "size": f"{width}x{height}",
            **extra,
        }


_BAD_JSON = object()


def is_bad_json(value: Any) -> bool:
    return value is _BAD_JSON


def bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def retry_headers(retry_after: Any) -> dict[str, str]:
    seconds = 1.0 if retry_after is None else float(retry_after)
    shown = str(int(seconds)) if seconds == int(seconds) else f"{seconds:g}"
    return {"Retry-After": shown}


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

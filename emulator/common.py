"""The request pipeline the four emulated providers share: faults first, then auth,
then the provider's own validation, the job, and its answer; plus the canned answers
(a proxy's 502, a dropped connection, a cut-off body) faults produce.

Size rules live in ``emulator.sizes`` and served files in ``emulator.files``; the names
the providers and tests always imported from here still are.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeGuard

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

import clock

from . import webhooks
from .files import FileService, InputError
from .sizes import (
    GPT2_RATIOS,
    MAX_EDGE,
    MAX_PIXELS,
    MIN_PIXELS,
    RATIO_PIXELS,
    gpt2_size_problem,
    parse_wxh,
    ratio_to_pixels,
)
from .store import JOB_FAULT_KINDS, QUEUE_FRACTION, Job, Store

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

# What a provider's ``build`` step hands ``submit``: ``new_job`` keyword arguments, or
# (an idempotent replay) the answer to send as it is.
Build = Callable[[Request], Awaitable[dict[str, Any] | Response]]


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


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
    def routes(self) -> list[Route]:
        """The provider's endpoints under its own prefix (``/openai/...``)."""
        raise NotImplementedError

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

    async def begin(
        self, request: Request, op: str, *, defer_slow: bool = False
    ) -> tuple[Response | None, dict[str, Any] | None]:
        """Apply a queued fault, then check the key.

        Returns (answer, None) to stop here, or (None, job_fault) to go on, where
        job_fault is a job-level fault the handler applies once a job exists.
        ``defer_slow`` hands a ``slow`` fault to the handler too (OpenAI applies it mid-stream).
        """
        fault = self.store.take_fault(self.name, op)
        if fault is not None:
            kind = fault["kind"]
            if kind == "slow":
                if not defer_slow:
                    await asyncio.sleep(float(fault.get("delay") or 1.0))
                    fault = None
            elif kind == "malformed":
                return malformed_response(), None
            elif kind not in JOB_FAULT_KINDS:
                return self.fault_error(fault), None
        key = self.api_key(request)
        if key:
            with self.store.lock:
                self.store.keys_seen[key] += 1
        if not key or key.startswith("invalid"):
            if fault is not None and fault["kind"] == "slow":
                await asyncio.sleep(float(fault.get("delay") or 1.0))  # slow, then refused: as without defer
            elif fault is not None:
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
        if not isinstance(value, str) or value not in allowed:
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

    def callback(self, job: Job, request: Request) -> webhooks.Plan | None:
        """How this provider calls back for ``job`` (None: it was not asked to)."""
        return None

    def _plan_callback(self, job: Job, request: Request) -> None:
        plan = self.callback(job, request)
        if plan is not None:
            webhooks.start(self.store, job, plan)

    async def submit(self, request: Request, build: Build) -> Response:
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
        self._plan_callback(job, request)
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


def is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)

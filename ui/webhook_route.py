"""HTTP endpoints on the app's ``st.App``: provider callbacks and a health check.

``ROUTES`` go into ``st.App(..., routes=...)`` in ``app.py``:

- ``POST /hooks/{provider}/{job_id}/{token}``: a provider's callback (``core.jobs.webhooks``). It
  only wakes the job, which is then confirmed by one status read; forged or replayed ones are
  refused with 403 / 409. The answer says nothing about the job beyond that.
- ``GET /healthz``: 200 when the database answers and the job runner is running, else 503.
"""

from __future__ import annotations

import functools
import logging

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core import services
from core.history.views import JobView
from core.jobs import webhooks

__all__ = ["MAX_BODY_BYTES", "ROUTES"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024  # a callback is a small JSON document


def _key_for(job: JobView) -> str | None:
    # The key the job's provider is made with (its signature key at Apiframe).
    return services.provider_factory(job.provider, job.endpoint).api_key


@functools.cache
def _receiver_for(store_id: int) -> webhooks.Receiver:
    del store_id  # one receiver per store (tests make several)
    return webhooks.Receiver(services.store(), _nudge, _key_for)


def _nudge(job_id: str) -> bool:
    runner = services.running_runner()
    return runner is not None and runner.nudge(job_id)


def _receiver() -> webhooks.Receiver:
    return _receiver_for(id(services.store()))


async def hook(request: Request) -> Response:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        return JSONResponse({"error": "too large"}, status_code=413)
    p = request.path_params
    verdict = await run_in_threadpool(_receiver().receive, p["provider"], p["job_id"], p["token"], raw,
                                      request.headers)
    if verdict.status >= 400:
        log.warning("callback refused (%s): %s", verdict.status, verdict.reason)
    return JSONResponse({"result": verdict.reason}, status_code=verdict.status)


def _health() -> tuple[bool, dict[str, str]]:
    facts: dict[str, str] = {}
    ok = True
    try:
        with services.store().engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        facts["database"] = "ok"
    except Exception as exc:  # any failure to answer is "not healthy", said without its details
        ok, facts["database"] = False, f"unreachable ({type(exc).__name__})"
    running = services.running_runner() is not None
    facts["runner"] = "running" if running else "stopped"
    return ok and running, facts


async def healthz(_request: Request) -> Response:
    ok, facts = await run_in_threadpool(_health)
    return JSONResponse({"ok": ok, **facts}, status_code=200 if ok else 503)


ROUTES = [
    Route("/hooks/{provider}/{job_id}/{token}", hook, methods=["POST"]),
    Route("/healthz", healthz, methods=["GET"]),
]

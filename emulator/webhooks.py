"""The emulator calls back as each provider documents, so the app's webhook path is tested offline.

When a create carries a callback address, a task waits for the job to end, then POSTs the
provider's payload there: EvoLink the task-query shape, 10 s timeout, 3 retries at 1, 2 and 4 s
(its gpt-image-2-beta page); Apiframe ``{event, jobId, status, ...}`` signed in
``X-Webhook-Signature`` (HMAC-SHA256 of the raw body keyed with the SHA-256 of the API key; the
encoding is not documented: hex of the digest-as-hex key here) with ``X-Webhook-Event``
(docs-v2.apiframe.ai/docs/webhooks); core.today the prediction as a status read shows it (its
payload and retries are not documented: one try). Every delivery is recorded in
``Store.deliveries`` for tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

import clock

from .store import Job, Store

__all__ = ["Plan", "apiframe_signature", "start"]

_TASKS: set[asyncio.Task[None]] = set()  # held so the loop does not drop a pending delivery


@dataclass(frozen=True)
class Plan:
    url: str
    body: Callable[[Job], dict[str, Any] | None]  # the payload once the job ended; None: event not asked for
    retries: tuple[float, ...] = ()  # seconds before each retry after a failed delivery
    timeout: float = 10.0
    headers: Callable[[bytes, dict[str, Any]], dict[str, str]] = field(default=lambda raw, body: {})


def apiframe_signature(api_key: str, raw: bytes) -> str:
    secret = hashlib.sha256(api_key.encode()).hexdigest().encode()
    return hmac.new(secret, raw, hashlib.sha256).hexdigest()


def start(store: Store, job: Job, plan: Plan) -> None:
    task = asyncio.get_running_loop().create_task(_deliver(store, job, plan))
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


async def _deliver(store: Store, job: Job, plan: Plan) -> None:
    await asyncio.sleep(max(0.0, job.created_at + job.job_time - clock.timestamp()))
    while store.observe(job)[0] not in ("succeeded", "failed", "canceled"):
        await asyncio.sleep(0.02)
    body = plan.body(job)
    if body is None:
        return
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **plan.headers(raw, body)}
    async with httpx.AsyncClient(timeout=plan.timeout) as client:
        for attempt, delay in enumerate((0.0, *plan.retries), start=1):
            await asyncio.sleep(delay)
            status: int | None = None
            try:
                status = (await client.post(plan.url, content=raw, headers=headers)).status_code
            except httpx.HTTPError:
                pass
            with store.lock:
                store.deliveries.append({"job": job.id, "provider": job.provider, "attempt": attempt,
                                         "status": status, "at": time.monotonic()})
            if status is not None and 200 <= status < 300:
                return

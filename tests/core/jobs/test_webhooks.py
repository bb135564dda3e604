"""Provider callbacks end to end: the real emulator calls back a real HTTP endpoint serving
``core.jobs.webhooks.Receiver``; the runner's job is woken and confirmed by one status read."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from core_fakes import wait_for
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from test_runner_on_emulator import emulator_factory, finished

from core.history.store import Store
from core.jobs import webhooks
from core.jobs.runner import JobRunner
from emulator import Emulator
from providers import registry
from providers.types import ImageRequest

FAST = {"scan_seconds": 0.05, "lease_seconds": 30.0, "retry_backoff": 0.1}
KEY = "emulator-key"  # emulator_factory's key: Apiframe's callbacks are signed with it


class Hooks:
    """A loopback server with the app's callback route in front of a Receiver."""

    def __init__(self) -> None:
        self.receiver: webhooks.Receiver | None = None
        self.answers: list[int] = []
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

        async def hook(request: Request) -> JSONResponse:
            assert self.receiver is not None
            p = request.path_params
            verdict = await run_in_threadpool(self.receiver.receive, p["provider"], p["job_id"], p["token"],
                                              await request.body(), request.headers)
            self.answers.append(verdict.status)
            return JSONResponse({"result": verdict.reason}, status_code=verdict.status)

        app = Starlette(routes=[Route("/hooks/{provider}/{job_id}/{token}", hook, methods=["POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hooks]:
    server = Hooks()
    monkeypatch.setenv("IMAGE_STUDIO_PUBLIC_URL", server.url)
    monkeypatch.setenv("IMAGE_STUDIO_SECRET_KEY", "a test secret")
    yield server
    server.stop()


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emulator]:
    emulator = Emulator(data_dir=tmp_path / "emu", latency=1.0).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def runner(emu: Emulator, sqlite_url: str, data_dir: Path, hooks: Hooks) -> Iterator[JobRunner]:
    r = JobRunner(Store(sqlite_url, data_dir), emulator_factory(lambda: emu), **FAST).start()
    hooks.receiver = webhooks.Receiver(r.store, r.nudge, lambda job: KEY)
    yield r
    r.stop()


def submit(runner: JobRunner, provider: str) -> str:
    model = registry.provider_class(provider).default_model
    request = ImageRequest(prompt="a red fox in snow", model=model, quality="low")
    return runner.submit(provider, request, endpoint="emulator").job_ids[0]


def polls(emu: Emulator, provider_job_id: str) -> int:
    job = emu.store.get(provider_job_id)
    assert job is not None
    return job.status_requests


@pytest.mark.parametrize("provider", ["coretoday", "apiframe", "evolink"])
def test_a_callback_finishes_the_job_with_one_confirming_read(runner: JobRunner, emu: Emulator, hooks: Hooks,
                                                             provider: str) -> None:
    started = time.monotonic()
    job_id = submit(runner, provider)
    (job,) = finished(runner.store, [job_id], timeout=12)
    took = time.monotonic() - started
    assert job.status == "succeeded" and job.images, job.error_message
    # Polling alone would wait at least POLL_FLOOR_SECONDS: the callback woke the job.
    assert took < webhooks.POLL_FLOOR_SECONDS, took
    assert polls(emu, job.provider_job_id) == 1  # the one status read that confirms the callback
    sent = emu.store.get(job.provider_job_id).request
    hook_field = {"coretoday": "webhook", "apiframe": "webhookUrl", "evolink": "callback_url"}[provider]
    assert sent[hook_field].startswith(f"{hooks.url}/hooks/{provider}/{job_id}/")
    assert [d["status"] for d in emu.store.deliveries if d["job"] == job.provider_job_id] == [202]


def test_forged_and_replayed_callbacks_are_refused(runner: JobRunner, emu: Emulator, hooks: Hooks) -> None:
    emu.set_latency(4.0)
    job_id = submit(runner, "evolink")
    job = wait_for(lambda: (j := runner.store.get_job(job_id)) and j.provider_job_id and j, timeout=10)
    body = json.dumps({"id": job.provider_job_id, "status": "completed"}).encode()
    good = f"{hooks.url}/hooks/evolink/{job_id}/{webhooks.token_for('evolink', job_id)}"
    with httpx.Client() as http:
        assert http.post(f"{hooks.url}/hooks/evolink/{job_id}/guessed-token", content=body).status_code == 403
        other = f"{hooks.url}/hooks/coretoday/{job_id}/{webhooks.token_for('coretoday', job_id)}"
        assert http.post(other, content=body).status_code == 404  # a token for another provider's route
        wrong_job = json.dumps({"id": "task-someone-else", "status": "completed"}).encode()
        assert http.post(good, content=wrong_job).status_code == 403
        first = http.post(good, content=body)
        assert first.status_code == 202
        assert http.post(good, content=body).status_code == 409  # the same callback again
    # The early callback changed nothing by itself: the confirming read found the job still running.
    assert not runner.store.get_job(job_id).done
    (done,) = finished(runner.store, [job_id], timeout=30)
    assert done.status == "succeeded"
    with httpx.Client() as http:  # a replay after the end is refused too
        assert http.post(good, content=body + b" ").status_code == 409


def test_an_apiframe_callback_without_its_signature_is_refused(runner: JobRunner, emu: Emulator,
                                                              hooks: Hooks) -> None:
    emu.set_latency(4.0)
    job_id = submit(runner, "apiframe")
    job = wait_for(lambda: (j := runner.store.get_job(job_id)) and j.provider_job_id and j, timeout=10)
    body = json.dumps({"event": "completed", "jobId": job.provider_job_id}).encode()
    url = f"{hooks.url}/hooks/apiframe/{job_id}/{webhooks.token_for('apiframe', job_id)}"
    with httpx.Client() as http:
        assert http.post(url, content=body).status_code == 403
        forged = webhooks.apiframe_signature_ok("another-key", body, "00")
        assert forged is False
        sig = emulator_signature("another-key", body)
        assert http.post(url, content=body, headers={"X-Webhook-Signature": sig}).status_code == 403
        sig = emulator_signature(KEY, body)
        assert http.post(url, content=body, headers={"X-Webhook-Signature": sig}).status_code == 202


def emulator_signature(key: str, raw: bytes) -> str:
    from emulator.webhooks import apiframe_signature

    return apiframe_signature(key, raw)


def test_no_public_address_means_no_callback_field(runner: JobRunner, emu: Emulator,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMAGE_STUDIO_PUBLIC_URL")
    job_id = submit(runner, "evolink")
    (job,) = finished(runner.store, [job_id], timeout=20)
    assert job.status == "succeeded"
    assert "callback_url" not in emu.store.get(job.provider_job_id).request
    assert emu.store.deliveries == []

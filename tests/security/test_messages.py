"""Issue 13, case 9: messages that said something untrue, and a log full of tracebacks.

- An expired result link said "Use check again", which downloads the same dead link.
- OpenAI's 500 on a create was reported as "lost contact while sending".
- The emulator logged ``ClientDisconnect`` tracebacks during a slow fault.

Through the real runner and adapters against the real emulator over loopback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from core.history import explain
from core.history.store import Store
from core.history.views import JobView
from core.jobs.runner import JobRunner
from emulator import Emulator
from providers import registry
from providers.types import ImageRequest
from tests.security.apptext import page_text
from tests.security.conftest import FAST

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emulator]:
    emulator = Emulator(data_dir=tmp_path / "emu", latency=0.2).start()
    yield emulator
    emulator.stop()


def run_on(emu: Emulator, provider: str) -> JobView:
    store = Store()  # the app's own store: the History page below reads it

    def factory(name: str, endpoint: str, api_key: str | None = None):
        return registry.create(name, api_key="emulator-key", base_url=emu.url(name), uploader=emu.upload)

    runner = JobRunner(store, factory, **FAST).start()
    try:
        model = registry.provider_class(provider).default_model
        (job_id,) = runner.submit(provider, ImageRequest(prompt="a red fox", model=model, quality="low"),
                                  endpoint="emulator").job_ids
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            job = store.get_job(job_id)
            if job is not None and job.done:
                return job
            time.sleep(0.05)
    finally:
        runner.stop()
    raise AssertionError("the job did not finish")


@pytest.mark.parametrize("provider", ["evolink", "coretoday"])
def test_an_expired_result_link_says_so_and_offers_no_check_again(emu: Emulator, provider):
    emu.inject(provider, "expired_url", op="result")
    job = run_on(emu, provider)
    assert job.status == "failed" and job.error_code == "result_expired"
    assert "check again" not in (job.error_message or "").lower()
    assert "expired" in (job.error_message or "") and "same dead link" in (job.error_message or "")
    why = explain.explain(job)
    assert why.title == "The image link expired" and not why.can_recheck
    assert "Run the job again" in (why.hint or "")
    at = AppTest.from_file(str(ROOT / "app_pages" / "history.py"), default_timeout=60)
    at.query_params["job"] = job.id
    at.run()
    assert not at.exception
    assert not [b for b in at.button if (b.key or "").endswith("_recheck")]
    assert "check again" not in page_text(at).lower()


def test_a_transient_download_failure_still_offers_check_again(emu: Emulator):
    emu.inject("evolink", "server_error", op="result", count=50)  # outlasts every retry
    job = run_on(emu, "evolink")
    assert job.status == "failed" and "check again" in (job.error_message or "")
    assert explain.explain(job).can_recheck


def test_openais_500_on_a_create_is_its_server_error_that_may_have_been_charged(emu: Emulator):
    emu.inject("openai", "server_error")
    job = run_on(emu, "openai")
    assert job.status == "unknown"
    message = job.error_message or ""
    assert "lost contact" not in message
    assert "answered the request that makes this image with a server error (HTTP 500)" in message
    assert "may have been made and charged" in message and "not sent again" in message
    assert job.billed is not None and job.billed.estimated  # counted against the budget, flagged
    posts = [r for r in emu.stats()["requests"] if r["provider"] == "openai" and r["method"] == "POST"]
    assert len(posts) == 1  # and never sent twice


def test_a_dropped_connection_on_a_create_still_says_contact_was_lost(emu: Emulator):
    emu.inject("openai", "drop_after_create", mode="close")
    job = run_on(emu, "openai")
    assert job.status == "unknown" and "lost contact" in (job.error_message or "")


@pytest.mark.parametrize(("provider", "path", "hung_up"), [
    # core.today's slow fault waits before the request is read: the client hangs up on an unread request.
    ("coretoday", "/v1/predictions", True),
    # OpenAI's is applied after the body is read (mid-stream for a streamed create): it answers no one.
    ("openai", "/v1/images/generations", False),
])
def test_the_emulator_logs_no_traceback_when_a_client_gives_up_during_a_slow_fault(
        emu: Emulator, caplog, provider: str, path: str, hung_up: bool):
    caplog.set_level(logging.INFO)
    emu.inject(provider, "slow", delay=0.8)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(emu.url(provider) + path, json={"model": "gpt-image-2", "prompt": "x", "input": {"prompt": "x"}},
                   headers={"Authorization": "Bearer sk-test"}, timeout=0.2)
    emu.reset(settle=5)  # waits for the slow answer to finish on the server
    assert "Traceback" not in caplog.text and "ClientDisconnect" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert ("hung up before its request was read" in caplog.text) is hung_up

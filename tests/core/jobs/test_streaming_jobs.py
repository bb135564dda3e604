"""A streamed OpenAI job through the runner and the real emulator: previews in memory only, the final
image stored as ever, a cut stream recorded as possibly charged and never resent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from core_fakes import wait_for
from test_runner_on_emulator import emulator_factory, finished

from core.history.store import Store
from core.jobs import previews
from core.jobs.runner import JobRunner
from emulator import Emulator
from providers.types import ImageRequest

FAST = {"scan_seconds": 0.05, "lease_seconds": 30.0, "retry_backoff": 0.1}


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emulator]:
    emulator = Emulator(data_dir=tmp_path / "emu", latency=1.5).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def runner(emu: Emulator, sqlite_url: str, data_dir: Path) -> Iterator[JobRunner]:
    r = JobRunner(Store(sqlite_url, data_dir), emulator_factory(lambda: emu), **FAST).start()
    yield r
    r.stop()


def request(**kw) -> ImageRequest:
    return ImageRequest(prompt="a lighthouse at dusk", model="gpt-image-2", size="1024x1024", quality="low",
                        partial_images=2, **kw)


def test_previews_live_in_memory_while_the_job_runs_and_are_gone_after(runner: JobRunner) -> None:
    job_id = runner.submit("openai", request(), endpoint="emulator").job_ids[0]
    preview = wait_for(lambda: previews.STORE.latest(job_id), timeout=10, interval=0.02)
    assert preview.count >= 1 and preview.data[:4] == b"\x89PNG"
    running = runner.store.get_jobs([job_id])[0]
    assert not running.done and running.images == ()  # a preview is never a result
    (job,) = finished(runner.store, [job_id])
    assert job.status == "succeeded" and len(job.images) == 1
    assert job.images[0].path.read_bytes() != preview.data
    assert previews.STORE.latest(job_id) is None
    assert job.billed is not None and not job.billed.estimated  # priced from the stream's usage


def test_a_cut_stream_is_unknown_with_its_fields_and_is_not_resent(runner: JobRunner, emu: Emulator) -> None:
    emu.inject("openai", "drop_after_create", mode="close")
    job_id = runner.submit("openai", request(), endpoint="emulator").job_ids[0]
    (job,) = finished(runner.store, [job_id])
    assert job.status == "unknown"
    assert job.error_code == "stream_cut" and job.error_sent is True
    assert "previews received: 1" in (job.error_message or "") and "charged" in (job.error_message or "")
    assert emu.stats()["creates"]["openai"] == 1
    assert previews.STORE.latest(job_id) is None


def test_the_store_is_bounded() -> None:
    from providers.types import PartialImage

    store = previews.PreviewStore(max_jobs=3)
    for i in range(5):
        store.put(f"j{i}", PartialImage(0, b"x", "png"))
    assert len(store) == 3 and store.latest("j0") is None and store.latest("j4") is not None
    second = store.put("j4", PartialImage(1, b"y", "png"))
    assert second.count == 2 and store.latest("j4") == second


def test_the_create_carries_who_asked_hashed(runner: JobRunner, emu: Emulator) -> None:
    from core.accounts.identity import LOCAL_USER_ID
    from providers.openai import safety_identifier

    job_id = runner.submit("openai", request(), endpoint="emulator").job_ids[0]
    (job,) = finished(runner.store, [job_id])
    assert job.status == "succeeded"
    sent = max(emu.store.jobs.values(), key=lambda j: j.created_at).request
    assert sent["safety_identifier"] == safety_identifier(LOCAL_USER_ID) != LOCAL_USER_ID

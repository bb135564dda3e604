"""The runner against the real emulator and adapters, including the SIGKILL crash test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from core_fakes import wait_for

from core import db
from core.history.store import Store
from core.jobs.runner import JobRunner
from emulator import Emulator
from providers import registry
from providers.types import ImageRequest

HERE = Path(__file__).resolve().parent
FAST = {"scan_seconds": 0.05, "lease_seconds": 30.0, "retry_backoff": 0.1}


def emulator_factory(get_emu: Callable[[], Emulator]):
    def factory(name: str, endpoint: str, api_key: str | None = None):
        emu = get_emu()
        return registry.create(name, api_key=api_key or "emulator-key", base_url=emu.url(name), uploader=emu.upload)

    return factory


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emulator]:
    emulator = Emulator(data_dir=tmp_path / "emu", latency=0.4).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def runner_for(emu: Emulator, sqlite_url: str, data_dir: Path) -> Iterator[Callable[..., JobRunner]]:
    made: list[JobRunner] = []

    def make(**kw) -> JobRunner:
        runner = JobRunner(Store(sqlite_url, data_dir), emulator_factory(lambda: emu), **{**FAST, **kw}).start()
        made.append(runner)
        return runner

    yield make
    for r in made:
        r.stop()


def finished(store: Store, job_ids, timeout: float = 20.0):
    return wait_for(lambda: (jobs := store.get_jobs(list(job_ids))) and all(j.done for j in jobs) and jobs, timeout)


def test_all_four_providers_end_to_end(emu: Emulator, runner_for) -> None:
    runner = runner_for()
    subs = {}
    for name in ("openai", "coretoday", "apiframe", "evolink"):
        cls = registry.provider_class(name)
        subs[name] = runner.submit(name, ImageRequest(prompt="a red fox in snow", model=cls.default_model, n=2,
                                                      quality="low"), endpoint="emulator")
    all_ids = [j for s in subs.values() for j in s.job_ids]
    jobs = finished(runner.store, all_ids)
    assert {j.status for j in jobs} == {"succeeded"}, [(j.provider, j.error_message) for j in jobs]
    assert sum(len(j.images) for j in jobs) == 8
    for j in jobs:
        assert j.endpoint == "emulator" and j.estimate is not None and j.billed is not None
        for img in j.images:
            assert img.path.exists() and img.thumb_path.exists() and img.width and img.height
    # core.today makes one image per call: two jobs; the others one job for both images.
    assert emu.stats()["creates"] == {"openai": 1, "coretoday": 2, "apiframe": 1, "evolink": 1}
    assert runner.store.spend("emulator").total > 0 and runner.store.spend("live").total == 0


def test_dropped_create_is_unknown_and_never_resent(emu: Emulator, runner_for) -> None:
    emu.inject("coretoday", "drop_after_create")
    runner = runner_for()
    sub = runner.submit("coretoday", ImageRequest(prompt="dropped", model="gpt-image-2", quality="low"),
                        endpoint="emulator")
    (job,) = finished(runner.store, sub.job_ids)
    assert job.status == "unknown" and job.billed.estimated
    runner.stop()
    runner_for()  # a restart does not resend it either
    time.sleep(0.5)
    assert emu.stats()["creates"]["coretoday"] == 1
    assert runner.store.get_job(job.id).status == "unknown"


def test_failed_job_at_evolink_gives_the_reservation_back(emu: Emulator, runner_for) -> None:
    emu.inject("evolink", "job_failed")
    runner = runner_for()
    sub = runner.submit("evolink", ImageRequest(prompt="fails", model=registry.provider_class("evolink").default_model,
                                                quality="low"), endpoint="emulator")
    (job,) = finished(runner.store, sub.job_ids)
    assert job.status == "failed" and job.billed.usd == 0
    assert runner.store.spend("emulator").total == 0


def test_cancel_at_the_provider(emu: Emulator, runner_for) -> None:
    emu.set_latency(5.0)
    runner = runner_for()
    sub = runner.submit("coretoday", ImageRequest(prompt="cancel me", model="gpt-image-2", quality="low"),
                        endpoint="emulator")
    wait_for(lambda: runner.store.get_job(sub.job_ids[0]).provider_job_id)
    assert runner.cancel(sub.job_ids[0]) == "requested"
    (job,) = finished(runner.store, sub.job_ids, timeout=5)
    assert job.status == "canceled"
    assert emu.stats()["jobs"][job.provider_job_id]["state"] == "canceled"


def crash_and_recover(db_url: str, data_dir: Path, emu_dir: Path, *, restart_emulator: bool) -> None:
    """Kill the app mid-job: on restart the job completes once, with one image and one create."""
    emu = Emulator(data_dir=emu_dir, latency=5.0).start()
    store = Store(db_url, data_dir)
    child = subprocess.Popen(
        [sys.executable, str(HERE.parent / "crash_child.py"), db_url, str(data_dir), emu.base_url, "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    runner: JobRunner | None = None
    try:
        job_id = child.stdout.readline().strip()
        assert job_id, child.stderr.read()
        wait_for(lambda: store.get_job(job_id).provider_job_id, timeout=15)
        job = store.get_job(job_id)
        assert job.status in ("submitted", "running") and emu.stats()["creates"]["coretoday"] == 1
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        assert store.get_job(job_id).claimed_by is not None  # the dead process's claim is still there

        if restart_emulator:
            emu.stop()
            emu = Emulator(data_dir=emu_dir, latency=5.0).start()
        current = emu
        started = time.monotonic()
        runner = JobRunner(store, emulator_factory(lambda: current), **FAST).start()
        (job,) = finished(store, [job_id], timeout=20)
        # A dead local process's claim is taken at once, not after its 30 s lease.
        assert time.monotonic() - started < 15
        assert job.status == "succeeded", (job.error_kind, job.error_message, job.error_detail)
        assert len(job.images) == 1 and job.images[0].path.exists()
        with db.read(store.engine) as conn:
            rows = conn.execute(sa.select(db.job_images).where(db.job_images.c.job_id == job_id)).all()
        assert len(rows) == 1
        assert len(list((data_dir / "images").rglob(f"{job.images[0].sha256}.*"))) == 1
        assert emu.stats()["creates"]["coretoday"] == 1
        assert job.attempts == 1
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if runner is not None:
            runner.stop()
        emu.stop()


@pytest.mark.slow
def test_sigkill_after_the_provider_accepted(db_url: str, data_dir: Path, tmp_path: Path) -> None:
    crash_and_recover(db_url, data_dir, tmp_path / "emu", restart_emulator=False)


@pytest.mark.slow
def test_sigkill_with_the_emulator_restarting_too(sqlite_url: str, data_dir: Path, tmp_path: Path) -> None:
    """The offline path: the emulator's jobs outlive its restart just as the app's do."""
    crash_and_recover(sqlite_url, data_dir, tmp_path / "emu", restart_emulator=True)


def _started_spread(emu: Emulator, count: int) -> float:
    """Seconds between the first and the last job the emulator was sent (its own created_at)."""
    created = sorted(job.created_at for job in emu.store.jobs.values())
    assert len(created) == count, created
    return created[-1] - created[0]


@pytest.mark.parametrize("configured, all_at_once", [(None, True), (6, False)])
def test_a_room_on_the_emulator_is_not_queued_behind_the_provider_limit(
    tmp_path: Path, sqlite_url: str, data_dir: Path, configured: int | None, all_at_once: bool
) -> None:
    """Issue 17: 24 core.today images (24 jobs) on the emulator go out at once with nothing configured,
    though core.today's own limit is 10; a limit that is configured still holds for them."""
    emu = Emulator(data_dir=tmp_path / "room-emu", latency=2.0).start()
    runner = JobRunner(Store(sqlite_url, data_dir), emulator_factory(lambda: emu), max_in_flight=configured,
                       **FAST).start()
    try:
        assert runner.in_flight_limit("coretoday") == (configured or 10)
        ids: list[str] = []
        for k in range(3):
            sub = runner.submit("coretoday", ImageRequest(prompt=f"room {k}", model="gpt-image-2", quality="low",
                                                          n=8), endpoint="emulator")
            ids.extend(sub.job_ids)
        jobs = finished(runner.store, ids, timeout=60.0)
        assert all(j.status == "succeeded" for j in jobs), [j.status for j in jobs]
        spread = _started_spread(emu, 24)
        if all_at_once:
            assert spread < 1.5, spread  # one wave: every job sent before the first 2-s job could end
        else:
            assert spread > 2 * 2.0, spread  # 4 waves of 6: the configured limit held
    finally:
        runner.stop()
        emu.stop()


def test_listeners_hear_each_job_once_its_outcome_is_stored(emu: Emulator, runner_for) -> None:
    # A page redraws a finished job the moment the runner says so (issue 17), so when it hears the id the
    # job's outcome must already be readable in the store.
    runner = runner_for()
    heard: list[tuple[str, str]] = []
    runner.add_listener(lambda job_id: heard.append((job_id, runner.store.get_job(job_id).status)))
    runner.add_listener(lambda job_id: 1 / 0)  # a failing listener is the listener's trouble, not the job's
    sub = runner.submit("coretoday", ImageRequest(prompt="a heron at dawn", model="gpt-image-2", n=2,
                                                  quality="low"), endpoint="emulator")
    jobs = finished(runner.store, sub.job_ids)
    assert {j.status for j in jobs} == {"succeeded"}
    wait_for(lambda: len(heard) >= 2, 10)
    assert sorted(heard) == sorted((j, "succeeded") for j in sub.job_ids)

"""Kill the real server (SIGKILL) while a job runs; started again, it finishes the job by itself.

The job is queued straight into the server's store (the test plays the part of a
page); the server's runner sends it to the built-in emulator. No browser is
opened after the restart: the server's start-up hook alone must resume the job.
"""

from __future__ import annotations

import signal
import time

import pytest

from core.history.store import Store
from core.history.views import NewJob
from providers.types import ImageRequest

pytestmark = pytest.mark.slow


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigkill_during_a_job_loses_nothing_and_charges_once(tmp_path):
    from tests.e2e.conftest import AppServer

    data = tmp_path / "app-data"
    data.mkdir()
    server = AppServer(data, env={"IMAGE_STUDIO_EMULATOR_LATENCY": "5"}).start()
    try:
        store = Store(data_dir=data)
        request = ImageRequest(prompt="A lighthouse at dawn", model="gpt-image-2", size="3:2", quality="low")
        _, (job_id,) = store.create_run(
            provider="coretoday", endpoint="emulator", request=request,
            jobs=[NewJob(prompt=request.prompt, n=1, quality="low", size="3:2", estimate=None)],
        )
        # The server's runner picks the job up and the provider accepts it (its id is stored).
        _wait(lambda: store.get_job(job_id).provider_job_id, 30, "the provider's job id")
        assert not store.get_job(job_id).done
        server.stop(signal.SIGKILL)

        server.start()  # README's command again, same data directory
        job = _wait(lambda: (j := store.get_job(job_id)).done and j, 60, "the job to finish after the restart")
        assert job.status == "succeeded", (job.status, job.error_message)
        assert len(job.images) == 1 and job.images[0].path.exists()
        # Exactly one job was created at the provider (the emulator keeps its jobs on disk).
        created = list((data / "emulator" / "jobs").glob("*.json"))
        assert len(created) == 1, created
        assert store.count_jobs() == 1
    finally:
        server.stop()

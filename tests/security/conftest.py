"""Fixtures for the hostile-input tests: loopback listeners of their own, a fake provider, a store, a runner."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core import db
from core.history.store import Store
from core.history.views import JobView
from core.jobs.runner import JobRunner
from providers import registry
from providers.base import Provider
from providers.types import ImageRequest
from tests.security.fakes import FakeProvider, FakeServer

FAST = {"scan_seconds": 0.05, "lease_seconds": 30.0, "retry_backoff": 0.01}


@pytest.fixture
def internal() -> Iterator[FakeServer]:
    """A listener standing for an internal service (a database port, an admin route): it must never be reached."""
    server = FakeServer()
    yield server
    server.close()


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    server = FakeProvider()
    yield server
    server.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'security.db'}"
    yield Store(url, tmp_path / "files")
    db.dispose_engines(url)


def fake_factory(fake: FakeProvider, key: str = "sk-proj-FAKE0123456789abcdefXYZ") -> Callable[..., Provider]:
    """The runner's provider factory: the real adapters, pointed at the fake provider."""

    def factory(name: str, endpoint: str, api_key: str | None = None) -> Provider:
        return registry.provider_class(name)(api_key or key, f"{fake.url}/{name}/v1", retry_sleep=lambda _s: None)

    return factory


@pytest.fixture
def run_job(store: Store, fake: FakeProvider) -> Iterator[Callable[..., JobView]]:
    """Submit one request through a real runner to the fake provider and return the finished job."""
    runners: list[JobRunner] = []

    def run(provider: str, request: ImageRequest, *, key: str | None = None, timeout: float = 20.0) -> JobView:
        factory = fake_factory(fake, key) if key else fake_factory(fake)
        runner = JobRunner(store, factory, **FAST).start()
        runners.append(runner)
        (job_id,) = runner.submit(provider, request, endpoint="live").job_ids
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = store.get_job(job_id)
            if job is not None and job.done:
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not finish: {store.get_job(job_id)}")

    yield run
    for runner in runners:
        runner.stop()

"""An in-memory provider (a real ``Provider`` subclass) and pricing for fast runner tests.

``FakeWorld`` plays the provider's server: it keeps jobs, counts job-creating
requests and can be told to fail in the ways real providers do.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from PIL import Image

from providers.base import Provider
from providers.errors import InvalidRequest
from providers.types import ImageRequest, JobStatus, ModelCaps, OutputImage


def png_bytes(seed: str, size: tuple[int, int] = (64, 48)) -> bytes:
    digest = hashlib.sha256(seed.encode()).digest()
    img = Image.new("RGB", size, (digest[0], digest[1], digest[2]))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


class FakeWorld:
    def __init__(self, job_time: float = 0.3) -> None:
        self.lock = threading.Lock()
        self.job_time = job_time
        self.jobs: dict[str, dict[str, Any]] = {}
        self.creates = 0
        self.idempotency_keys: list[str | None] = []
        self.api_keys: list[str | None] = []
        self.keys_sent: list[str | None] = []  # the key on each create and status call
        self.submit_errors: list[Exception] = []
        self.status_errors: list[Exception] = []
        self.result_errors: list[Exception] = []
        self.cancel_errors: list[Exception] = []
        self.canceled: list[str] = []
        self.fail_with: Exception | None = None  # jobs finish failed with this error
        self.billed: dict[str, Any] | None = None  # what status reports as billed
        self.active = 0
        self.max_active = 0
        self.submit_hook: Callable[[], None] | None = None

    def _pop(self, errors: list[Exception]) -> Exception | None:
        with self.lock:
            return errors.pop(0) if errors else None


class FakeProvider(Provider):
    name: ClassVar[str] = "fake"
    label: ClassVar[str] = "Fake"
    key_env: ClassVar[str] = "FAKE_API_KEY"
    base_url_env: ClassVar[str] = "FAKE_BASE_URL"
    default_base_url: ClassVar[str] = "http://fake.invalid"
    default_model: ClassVar[str] = "m1"
    MODELS: ClassVar[dict[str, ModelCaps]] = {
        "m1": ModelCaps(provider="fake", model="m1", label="Fake One", can_cancel=True, expected_seconds=0.3,
                        max_images_per_call=1, max_n=10),
        "m2": ModelCaps(provider="fake", model="m2", label="Fake Two", can_cancel=True, expected_seconds=None,
                        max_images_per_call=1, max_n=10),
    }

    def __init__(self, world: FakeWorld, api_key: str | None = "fake-key") -> None:
        super().__init__(api_key=api_key)
        self.world = world
        world.api_keys.append(api_key)

    def submit(self, request: ImageRequest, *, idempotency_key: str | None = None) -> JobStatus:
        w = self.world
        w.keys_sent.append(self.api_key)
        if w.submit_hook is not None:
            w.submit_hook()
        with w.lock:
            w.creates += 1
            w.idempotency_keys.append(idempotency_key)
        err = w._pop(w.submit_errors)
        if err is not None:
            raise err
        with w.lock:
            if self.idempotent_create and idempotency_key:
                for job_id, job in w.jobs.items():
                    if job["key"] == idempotency_key:
                        return JobStatus(job_id=job_id, state="queued", progress=0)
            job_id = f"fj-{len(w.jobs) + 1}"
            w.jobs[job_id] = {"created": time.monotonic(), "n": request.n, "key": idempotency_key,
                              "state": None, "prompt": request.prompt, "counted": True}
            w.active += 1
            w.max_active = max(w.max_active, w.active)
        return JobStatus(job_id=job_id, state="queued", progress=0)

    def _done(self, job: dict[str, Any]) -> None:
        if job.get("counted"):
            job["counted"] = False
            self.world.active -= 1

    def status(self, job_id: str) -> JobStatus:
        w = self.world
        w.keys_sent.append(self.api_key)
        err = w._pop(w.status_errors)
        if err is not None:
            raise err
        with w.lock:
            job = w.jobs.get(job_id)
            if job is None:
                raise InvalidRequest("no such job", field="job_id", value=job_id)
            if job["state"] == "canceled":
                self._done(job)
                return JobStatus(job_id=job_id, state="canceled")
            elapsed = time.monotonic() - job["created"]
            if elapsed < w.job_time:
                state = "queued" if elapsed < w.job_time * 0.1 else "running"
                return JobStatus(job_id=job_id, state=state, progress=round(100 * elapsed / w.job_time, 1))
            self._done(job)
            if w.fail_with is not None:
                return JobStatus(job_id=job_id, state="failed", error=w.fail_with, billed=w.billed)
            return JobStatus(job_id=job_id, state="succeeded", progress=100,
                             result_urls=tuple(f"fake://{job_id}/{i}" for i in range(job["n"])), billed=w.billed)

    def result(self, status: JobStatus) -> list[OutputImage]:
        w = self.world
        err = w._pop(w.result_errors)
        if err is not None:
            raise err
        if status.images:
            return list(status.images)
        return [OutputImage(png_bytes(url), "png", source_url=url) for url in status.result_urls]

    def cancel(self, job_id: str) -> None:
        w = self.world
        err = w._pop(w.cancel_errors)
        if err is not None:
            raise err
        with w.lock:
            w.canceled.append(job_id)
            w.jobs[job_id]["state"] = "canceled"


class FakeIdempotent(FakeProvider):
    name: ClassVar[str] = "fakeidem"
    idempotent_create: ClassVar[bool] = True


class FakeNoCancel(FakeProvider):
    name: ClassVar[str] = "fakenocancel"
    MODELS: ClassVar[dict[str, ModelCaps]] = {
        "m1": ModelCaps(provider="fakenocancel", model="m1", label="Fake One", can_cancel=False,
                        expected_seconds=0.3, max_images_per_call=1),
    }


class FakeSync(FakeProvider):
    """Like OpenAI: one blocking call returns the images inline, no job id."""

    name: ClassVar[str] = "fakesync"
    synchronous: ClassVar[bool] = True
    MODELS: ClassVar[dict[str, ModelCaps]] = {
        "m1": ModelCaps(provider="fakesync", model="m1", label="Fake Sync", can_cancel=False,
                        expected_seconds=0.2, max_images_per_call=10),
    }

    def submit(self, request: ImageRequest, *, idempotency_key: str | None = None) -> JobStatus:
        w = self.world
        w.keys_sent.append(self.api_key)
        if w.submit_hook is not None:
            w.submit_hook()
        with w.lock:
            w.creates += 1
            w.idempotency_keys.append(idempotency_key)
        err = w._pop(w.submit_errors)
        if err is not None:
            raise err
        time.sleep(w.job_time)
        images = tuple(OutputImage(png_bytes(f"sync-{w.creates}-{i}"), "png") for i in range(request.n))
        return JobStatus(job_id=None, state="succeeded", images=images, billed=w.billed)


PROVIDERS: dict[str, type[FakeProvider]] = {
    cls.name: cls for cls in (FakeProvider, FakeIdempotent, FakeNoCancel, FakeSync)
}


def factory_for(world: FakeWorld, calls: list[tuple[str, str, str | None]] | None = None):
    def factory(name: str, endpoint: str, api_key: str | None = None) -> Provider:
        if calls is not None:
            calls.append((name, endpoint, api_key))
        return PROVIDERS[name](world, api_key=api_key or "fake-key")

    return factory


@dataclass(frozen=True)
class FakeCost:
    amount: Decimal
    unit: str
    usd: Decimal | None
    confirmed: bool = True


@dataclass(frozen=True)
class FakeEstimate:
    total: FakeCost
    per_image: FakeCost
    images: int


class FakePricing:
    """A flat price per image; ``billed`` prices ``{"usd": ...}`` reports."""

    def __init__(self, per_image: Decimal | None = Decimal("0.07")) -> None:
        self.per_image = per_image

    def estimate(self, provider: str, request: ImageRequest, caps: ModelCaps | None = None) -> FakeEstimate:
        if self.per_image is None:
            cost = FakeCost(Decimal(10) * request.n, "credits", None, False)
            return FakeEstimate(cost, cost, request.n)
        total = self.per_image * request.n
        return FakeEstimate(FakeCost(total, "USD", total), FakeCost(self.per_image, "USD", self.per_image), request.n)

    def billed(self, provider: str, request: ImageRequest, status: JobStatus) -> FakeCost | None:
        if not status.billed or "usd" not in status.billed:
            return None
        usd = Decimal(str(status.billed["usd"]))
        return FakeCost(usd, "USD", usd)


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)

"""The contract every provider adapter implements.

A provider is one file: its wire format and its capabilities as data
(``MODELS``), nothing else. Pages never call a provider directly; the job runner
does, through these four methods.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import httpx

from .types import ImageRequest, JobStatus, ModelCaps, OutputImage, PreviewSink

__all__ = ["Provider", "Uploader"]

# Turns a local image into a URL a URL-only provider can fetch (the emulator hosts
# uploads on loopback; with a real provider there is none and local files are refused).
Uploader = Callable[[bytes, str], str]


class Provider(ABC):
    name: ClassVar[str]  # registry key: openai / coretoday / apiframe / evolink
    label: ClassVar[str]  # shown to people
    key_env: ClassVar[str]  # e.g. OPENAI_API_KEY
    base_url_env: ClassVar[str]  # e.g. OPENAI_BASE_URL
    default_base_url: ClassVar[str]
    key_help: ClassVar[str] = ""  # where a person gets a key
    MODELS: ClassVar[dict[str, ModelCaps]]
    default_model: ClassVar[str]
    # True where the create request honours an idempotency key (safe to resend).
    idempotent_create: ClassVar[bool] = False
    # False where the provider's docs say a job it reports as failed is not charged (credits refunded).
    charges_failed_jobs: ClassVar[bool] = True
    synchronous: ClassVar[bool] = False
    # True where a create can carry ``ImageRequest.callback_url`` (the provider calls back when done).
    accepts_callback: ClassVar[bool] = False

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        uploader: Uploader | None = None,
        timeout: float | None = None,
    ) -> None:
        self.api_key = api_key if api_key is not None else os.environ.get(self.key_env) or None
        self.base_url = (base_url or os.environ.get(self.base_url_env) or self.default_base_url).rstrip("/")
        self.transport = transport
        self.uploader = uploader
        self.timeout = timeout

    # --- the job lifecycle -------------------------------------------------
    @abstractmethod
    def submit(self, request: ImageRequest, *, idempotency_key: str | None = None) -> JobStatus:
        """Send the one job-creating request. Never retried unless ``idempotent_create``."""

    def submit_streaming(
        self, request: ImageRequest, *, idempotency_key: str | None = None, on_preview: PreviewSink
    ) -> JobStatus:
        """``submit``, handing each streamed preview to ``on_preview`` as it arrives (where the
        provider streams and the request asks for previews; otherwise exactly ``submit``)."""
        return self.submit(request, idempotency_key=idempotency_key)

    @abstractmethod
    def status(self, job_id: str) -> JobStatus:
        """Ask for a job's state (a GET: retried on transient failures)."""

    @abstractmethod
    def result(self, status: JobStatus) -> list[OutputImage]:
        """The finished images: inline ones, or downloaded from ``result_urls`` at once."""

    def cancel(self, job_id: str) -> None:
        from .errors import InvalidRequest

        raise InvalidRequest(f"{self.label} cannot cancel a job", field="cancel", provider=self.name)

    # --- conveniences --------------------------------------------------------
    @classmethod
    def caps(cls, model: str | None = None) -> ModelCaps:
        from .errors import InvalidRequest

        model = model or cls.default_model
        try:
            return cls.MODELS[model]
        except KeyError:
            raise InvalidRequest(field="model", value=model, allowed=list(cls.MODELS), provider=cls.name) from None

    @property
    def has_key(self) -> bool:
        return bool(self.api_key)

    def close(self) -> None:  # noqa: B027 - a no-op default; adapters holding a client override it
        """Release the HTTP client (adapters override when they hold one)."""

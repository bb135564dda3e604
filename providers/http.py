"""``HttpProvider``: the shared half of the four adapters, on top of ``HttpClient``.

It holds what the adapters have in common: key and base-URL resolution,
``validate``, the blocking ``generate`` and result downloads. The HTTP plumbing
lives beside it: ``providers.http_client`` (connection pool, retry policy, key
scoping) and ``providers.http_errors`` (what a failed answer means). Their public
names are importable from here too, where the adapters and tests always found them.
"""

from __future__ import annotations

import base64
import functools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

from . import imagegate, polling, redact, validation
from .base import Provider, Uploader
from .errors import AuthError, InvalidRequest, JobCanceled, JobFailed, ModelUnavailable, ProviderError
from .http_client import USER_AGENT, HttpClient, image_format, is_loopback_host, strip_suffix
from .http_errors import ErrorInfo, generic_error, parse_retry_after
from .types import ImageRequest, InputImage, JobStatus, ModelCaps, OutputImage

__all__ = [
    "USER_AGENT",
    "CreateCall",
    "ErrorInfo",
    "HttpClient",
    "HttpProvider",
    "generic_error",
    "image_format",
    "is_loopback_host",
    "parse_retry_after",
    "strip_suffix",
]


@dataclass(frozen=True)
class CreateCall:
    """The one job-creating request, as data: ``submit`` sends it, "Copy as code" prints it.

    ``files`` are ``(field, (filename, bytes, mime))``; built with ``display=True``
    the bytes are empty and local images that a URL-only provider would need
    uploaded appear as placeholder URLs (nothing is uploaded or fetched).
    """

    path: str
    json: dict[str, Any] | None = None
    data: dict[str, str] | None = None
    files: tuple[tuple[str, tuple[str, bytes, str]], ...] = ()
    headers: dict[str, str] = field(default_factory=dict)


PLACEHOLDER_URL = "https://example.com/{name}"


class HttpProvider(Provider):
    """The shared half of every adapter: the client, keys, validation and ``generate``."""

    default_read_timeout: ClassVar[float] = 30.0
    key_header: ClassVar[str] = "Authorization"  # "Authorization" sends "Bearer <key>"
    version_suffix: ClassVar[str] = ""  # stripped from a base URL so paths never double it
    key_help: ClassVar[str] = ""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        uploader: Uploader | None = None,
        timeout: float | None = None,
        retry_sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 4,
    ) -> None:
        super().__init__(api_key, base_url, transport=transport, uploader=uploader, timeout=timeout)
        redact.remember(self.api_key)  # whatever a provider echoes back, this key never gets stored or shown
        if self.version_suffix:
            self.base_url = strip_suffix(self.base_url, self.version_suffix)
        if self.key_header == "Authorization":
            auth = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        else:
            auth = {self.key_header: self.api_key} if self.api_key else {}
        self.http = HttpClient(
            provider=self.name,
            label=self.label,
            base_url=self.base_url,
            auth_headers=auth,
            key_env=self.key_env,
            transport=transport,
            read_timeout=timeout or self.default_read_timeout,
            max_attempts=max_attempts,
            sleep=retry_sleep,
            error_hook=self._error_hook,
        )
        self._seen_seconds: dict[str, float] = {}

    # --- hooks for adapters -----------------------------------------------------
    def _error_hook(self, info: ErrorInfo) -> ProviderError | None:
        """Provider-specific error answers; None falls back to ``generic_error``."""
        return None

    # --- shared behaviour -------------------------------------------------------
    @classmethod
    def caps(cls, model: str | None = None) -> ModelCaps:
        # Accept the wire id too ("openai/gpt-image-2" on core.today).
        if model and model not in cls.MODELS:
            for caps in cls.MODELS.values():
                if caps.model == model:
                    return caps
        return super().caps(model)

    def require_key(self) -> None:
        if not self.api_key:
            raise AuthError(
                f"No {self.label} API key. Add {self.key_env} to .streamlit/secrets.toml or the environment, "
                f"or type it in Settings.{(' ' + self.key_help) if self.key_help else ''}",
                provider=self.name,
            )

    def create_call(
        self, request: ImageRequest, *, idempotency_key: str | None = None, display: bool = False
    ) -> CreateCall:
        """The job-creating request for ``request`` (adapters implement it)."""
        raise NotImplementedError

    def send_create(self, request: ImageRequest, *, idempotency_key: str | None = None) -> Any:
        """Build the create call and send it once (never resent unless ``idempotent_create``)."""
        self.require_key()
        caps = self.caps(request.model)
        call = self.create_call(request, idempotency_key=idempotency_key)
        return self.create(
            caps, call.path, json=call.json, data=call.data, files=list(call.files) or None,
            headers=call.headers or None, idempotent=self.idempotent_create,
        )

    def create(self, caps: ModelCaps, path: str, **kw: Any) -> Any:
        """The job-creating POST; a "model not found" answer names the model and its replacement."""
        try:
            return self.http.create(path, **kw)
        except ModelUnavailable as exc:
            replacement = caps.replacement or (self.default_model if self.default_model != caps.model else None)
            use = f" Switch to {replacement}." if replacement else ""
            raise ModelUnavailable(
                f"{self.label} does not offer {caps.label} ({caps.model}) any more.{use}",
                model=caps.model,
                replacement=replacement,
                provider=self.name,
                status_code=exc.status_code,
                code=exc.code,
                detail=exc.detail,
                sent=True,
            ) from exc

    def get_job(self, path: str, job_id: str) -> Any:
        """A status GET; a 404 means the provider no longer knows the job."""
        try:
            return self.http.get_json(path)
        except InvalidRequest as exc:
            if exc.status_code != 404:
                raise
            raise JobFailed(
                f"{self.label} does not know job {job_id} (it may have expired or belong to another key).",
                code="job_not_found",
                provider=self.name,
                status_code=404,
                detail=exc.detail,
                sent=True,
            ) from exc

    def expected_seconds(self, request: ImageRequest) -> float | None:
        """How long a job for ``request`` should take: what this instance has seen, else the caps' figure."""
        caps = self.caps(request.model)
        return self._seen_seconds.get(caps.model) or caps.expected_seconds

    def record_duration(self, request: ImageRequest, seconds: float) -> None:
        """Remember how long a job took (moving average), to poll the next one well."""
        model = self.caps(request.model).model
        before = self._seen_seconds.get(model)
        self._seen_seconds[model] = seconds if before is None else 0.7 * before + 0.3 * seconds

    def validate(self, request: ImageRequest) -> None:
        validation.validate(request, self.caps(request.model), can_upload=self.uploader is not None,
                            allowed_origins=self.http.policy.allowed)

    def image_urls(self, images: tuple[InputImage, ...], *, display: bool = False) -> list[str]:
        """URLs for a URL-only provider: local files go through the uploader (a placeholder when displaying)."""
        urls = []
        for image in images:
            if image.url is not None:
                urls.append(image.url)
            elif display:
                urls.append(PLACEHOLDER_URL.format(name=image.name))
            elif self.uploader is None:
                raise InvalidRequest(validation.url_only_message(self.label), field="images", provider=self.name)
            else:
                assert image.data is not None
                urls.append(self.uploader(image.data, image.mime or "image/png"))
        return urls

    def result(self, status: JobStatus) -> list[OutputImage]:
        if status.state != "succeeded":
            raise status.error or JobFailed(
                f"{self.label} job {status.job_id} has not succeeded ({status.state}).",
                provider=self.name,
                sent=True,
            )
        if status.images:
            for image in status.images:
                self._take(image.data)
            return list(status.images)
        if not status.result_urls:
            raise JobFailed(
                f"{self.label} reported success but sent no image.",
                code="no_output",
                provider=self.name,
                detail=json.dumps(status.raw)[:2000],
                sent=True,
            )
        out = []
        for url in status.result_urls:
            try:
                data, content_type = self.fetch(url)
            except InvalidRequest as err:  # a link the URL policy refuses, an image over the gate's limit
                raise self._not_taken(err) from err
            self._take(data)
            out.append(OutputImage(data=data, format=image_format(data, content_type), source_url=url))
        return out

    def _take(self, data: bytes) -> None:
        """A finished image through the image gate, sized from its header before anything decodes it;
        bytes that are no image at all are not kept as one."""
        if validation.sniff_format(data) is None:
            raise JobFailed(
                f"{self.label} finished the job, but what it sent back is not an image "
                f"({len(data):,} bytes of something else); nothing was kept.",
                code="not_an_image",
                provider=self.name,
                sent=True,
            )
        try:
            imagegate.check(data, f"The image {self.label} sent")
        except InvalidRequest as err:
            raise self._not_taken(err) from err

    def _not_taken(self, err: InvalidRequest) -> JobFailed:
        return JobFailed(
            f"{self.label} finished the job, but its image was not taken in: {err}",
            code="result_too_large" if isinstance(err, imagegate.ImageTooLarge) else "url_refused",
            provider=self.name,
            status_code=err.status_code,
            sent=True,
        )

    def fetch(self, url: str) -> tuple[bytes, str | None]:
        """An image from a link: ``data:`` inline, else downloaded under the URL policy and the image gate."""
        if url.startswith("data:"):
            head, _, payload = url.partition(",")
            data = base64.b64decode(payload)
            imagegate.check(data, "The inline image")
            return data, head[5:].split(";")[0] or None
        return self.http.download(url)

    def generate(self, request: ImageRequest, *, deadline_seconds: float = 600) -> list[OutputImage]:
        """Validate, submit, wait and download: the blocking path (scripts, tests)."""
        self.validate(request)
        caps = self.caps(request.model)
        started = time.monotonic()
        if request.n > caps.max_images_per_call:
            requests = [request.with_(n=1)] * request.n  # one image per call: n calls
        else:
            requests = [request]
        # Submit all first so the provider works on them in parallel, then wait for each.
        submitted = [self.submit(r, idempotency_key=str(uuid.uuid4())) for r in requests]
        images: list[OutputImage] = []
        for status in submitted:
            if not status.done:
                assert status.job_id is not None
                status = polling.wait(
                    functools.partial(self.status, status.job_id),
                    expected_seconds=status.estimated_seconds or self.expected_seconds(request),
                    deadline_seconds=deadline_seconds,
                    started_at=started,
                )
                if status.state == "succeeded":
                    self.record_duration(request, time.monotonic() - started)
            if status.state == "canceled":
                raise status.error or JobCanceled(f"The {self.label} job was canceled.", provider=self.name)
            images.extend(self.result(status))
        return images

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> HttpProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""The HTTP plumbing every adapter shares, and the base class that uses it.

``HttpClient`` wraps one ``httpx.Client`` per provider instance (thread-safe, so
one instance can sit in ``st.cache_resource``). Its rules:

- A job-creating request is sent once. It is resent only when the provider
  honours an idempotency key (``idempotent=True``, Apiframe), because a resent
  create would otherwise make, and bill, a second job.
- GETs and DELETEs (status polls, result downloads, cancels) are retried on
  connection errors, 408, 429 and 5xx with exponential backoff and jitter,
  honouring ``Retry-After`` (capped).
- Every failure becomes a typed error from ``providers.errors`` with ``sent``
  telling whether the request may have reached the server.
- The API key goes only to the provider's own origin. Result URLs on other hosts
  are fetched without it (redirects are followed by hand so a key never follows
  one), and plain ``http://`` downloads are refused unless the host is loopback.

``HttpProvider`` holds what the four adapters have in common: key and base-URL
resolution, ``validate``, the blocking ``generate`` and result downloads.
"""

from __future__ import annotations

import base64
import email.utils
import ipaddress
import json
import math
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, ClassVar

import httpx
import tenacity

from . import polling, validation
from .base import Provider, Uploader
from .errors import (
    AuthError,
    InvalidRequest,
    JobCanceled,
    JobFailed,
    ModelUnavailable,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
)
from .types import ImageRequest, InputImage, JobStatus, ModelCaps, OutputImage

__all__ = [
    "USER_AGENT",
    "ErrorInfo",
    "HttpClient",
    "HttpProvider",
    "image_format",
    "is_loopback_host",
    "parse_retry_after",
    "strip_suffix",
]

USER_AGENT = "image-studio/0.1 (+httpx)"

# Results are images; anything far larger than OpenAI's own 50 MB input limit is not one.
MAX_DOWNLOAD_BYTES = 200 * 1024 * 1024
MAX_REDIRECTS = 5
RETRY_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))
QUOTA_CODES = frozenset(
    {
        "insufficient_quota",
        "credit_balance_exhausted",
        "organization_spend_limit_exceeded",
        "project_spend_limit_exceeded",
        "organization_usage_limit_exceeded",
        "insufficient_credits",
        "insufficient_balance",
        "insufficient_user_quota",
    }
)
# Transport errors raised before any byte of the request could have left this machine.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
    httpx.ProxyError,
)


def strip_suffix(base_url: str, suffix: str) -> str:
    """``https://api.openai.com/v1`` -> ``https://api.openai.com`` so paths never double ``/v1``."""
    base = base_url.rstrip("/")
    return base[: -len(suffix)] if base.endswith(suffix) else base


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``Retry-After`` (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        # The server's HTTP-date is real wall time: compare it with the real clock, not the app's.
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def image_format(data: bytes, content_type: str | None = None) -> str:
    """png / jpeg / webp / gif by magic bytes, falling back to the Content-Type."""
    sniffed = validation.sniff_format(data)
    if sniffed is not None:
        return sniffed
    if content_type and content_type.startswith("image/"):
        return content_type.split("/", 1)[1].split(";")[0].strip().replace("jpg", "jpeg")
    return "unknown"


class ErrorInfo:
    """What an error answer said, whatever the provider's body shape."""

    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        self.text = response.text[:4000]
        self.body: Any = None
        try:
            self.body = response.json()
        except ValueError:
            pass
        err: Any = self.body.get("error") if isinstance(self.body, dict) else None
        src: dict[str, Any] = err if isinstance(err, dict) else (self.body if isinstance(self.body, dict) else {})
        message = src.get("message") or (err if isinstance(err, str) else None)
        if message is None and isinstance(self.body, dict):
            message = self.body.get("message") or self.body.get("detail") or self.body.get("title")
        self.message: str = str(message) if message else (self.text.strip()[:300] or f"HTTP {self.status}")
        self.code: str | None = _str_or_none(src.get("code"))
        self.type: str | None = _str_or_none(src.get("type"))
        self.param: str | None = _str_or_none(src.get("param"))
        self.error: dict[str, Any] = src
        self.retry_after = parse_retry_after(response.headers)

    @property
    def is_quota(self) -> bool:
        return bool({self.code, self.type} & QUOTA_CODES)


def _str_or_none(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


ErrorHook = Callable[[ErrorInfo], ProviderError | None]


class _Backoff(tenacity.wait.wait_base):
    """Retry-After when the server gave one (capped), else exponential backoff with jitter."""

    def __init__(self, initial: float, maximum: float, retry_after_cap: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self.retry_after_cap = retry_after_cap

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return min(exc.retry_after, self.retry_after_cap)
        base = min(self.initial * 2 ** (retry_state.attempt_number - 1), self.maximum)
        return base * random.uniform(0.75, 1.0)  # jitter keeps parallel jobs from polling in lockstep


def _retryable(exc: BaseException) -> bool:
    # QuotaExceeded is a 429 too, but waiting does not bring credits back.
    return isinstance(exc, (RateLimited, ProviderUnavailable))


class HttpClient:
    """One provider's connection pool, retry policy and error mapping."""

    def __init__(
        self,
        *,
        provider: str,
        label: str,
        base_url: str,
        auth_headers: Mapping[str, str] | None = None,
        key_env: str = "",
        transport: httpx.BaseTransport | None = None,
        read_timeout: float = 30.0,
        max_attempts: int = 4,
        backoff_initial: float = 0.5,
        backoff_max: float = 8.0,
        retry_after_cap: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        error_hook: ErrorHook | None = None,
    ) -> None:
        self.provider = provider
        self.label = label
        self.base_url = httpx.URL(base_url.rstrip("/") + "/")
        self.auth_headers = dict(auth_headers or {})
        self.key_env = key_env
        self.max_attempts = max_attempts
        self.sleep = sleep
        self.error_hook = error_hook
        self._wait = _Backoff(backoff_initial, backoff_max, retry_after_cap)
        self.client = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            headers={"User-Agent": USER_AGENT},
            timeout=httpx.Timeout(connect=5.0, read=read_timeout, write=60.0, pool=10.0),
            follow_redirects=False,  # redirects are followed by hand: see _send
        )

    # --- public helpers -------------------------------------------------------
    def create(
        self,
        path: str,
        *,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        files: list[tuple[str, tuple[str, bytes, str]]] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = False,
    ) -> Any:
        """POST the job-creating request; resent only if ``idempotent`` (same key, same job)."""
        kw = {"json": json, "data": data, "files": files, "headers": headers}
        return self._call("POST", path, retry=idempotent, kw=kw).json_body

    def get_json(self, path: str) -> Any:
        return self._call("GET", path, retry=True, kw={}).json_body

    def delete(self, path: str) -> Any:
        return self._call("DELETE", path, retry=True, kw={}, expect_json=False).json_body

    def download(self, url: str) -> tuple[bytes, str | None]:
        """Fetch a result or input image: bytes and Content-Type. Retried like a GET,
        also when the bytes are not an image (a truncated or garbled answer)."""
        result = self._call("GET", url, retry=True, kw={}, expect_json=False, download=True)
        return result.content, result.content_type

    def close(self) -> None:
        self.client.close()

    # --- internals --------------------------------------------------------------
    def _call(
        self,
        method: str,
        url: str,
        *,
        retry: bool,
        kw: dict[str, Any],
        expect_json: bool = True,
        download: bool = False,
    ) -> _Answer:
        def once() -> _Answer:
            return self._send(method, url, kw, expect_json=expect_json, download=download)

        if not retry:
            return once()
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception(_retryable),
            sleep=self.sleep,
            reraise=True,
        )
        return retrying(once)

    def _merge(self, url: str) -> httpx.URL:
        target = httpx.URL(url)
        if target.is_absolute_url:
            return target
        return httpx.URL(str(self.base_url) + url.lstrip("/"))

    def _headers_for(self, url: httpx.URL) -> dict[str, str]:
        # litellm's idea: the key goes only to the provider's own origin.
        if (url.scheme, url.host, url.port) == (self.base_url.scheme, self.base_url.host, self.base_url.port):
            return dict(self.auth_headers)
        return {}

    def _send(self, method: str, url: str, kw: dict[str, Any], *, expect_json: bool, download: bool) -> _Answer:
        target = self._merge(url)
        for _hop in range(MAX_REDIRECTS + 1):
            if download:
                self._check_download_url(target)
            headers = self._headers_for(target)
            headers.update(kw.get("headers") or {})
            body_kw = {k: kw[k] for k in ("json", "data", "files") if kw.get(k) is not None}
            try:
                request = self.client.build_request(method, target, headers=headers, **body_kw)
                response = self.client.send(request, stream=download)
                try:
                    if response.is_redirect and method in ("GET", "DELETE"):
                        target = target.join(response.headers["location"])
                        continue
                    if download and response.is_success:
                        return self._read_download(response, target)
                    response.read()
                finally:
                    response.close()
            except httpx.TransportError as exc:
                raise self._transport_error(exc, method, target) from exc
            if not response.is_success:
                raise self._status_error(response, download=download)
            return _Answer.from_response(response, expect_json=expect_json, provider=self.provider, label=self.label)
        raise ProviderUnavailable(
            f"{self.label} redirected the request too many times.",
            provider=self.provider,
            sent=True,
        )

    def _check_download_url(self, url: httpx.URL) -> None:
        if url.scheme == "https" or (url.scheme == "http" and is_loopback_host(url.host)):
            return
        raise InvalidRequest(
            f"{self.label} gave an image link this app will not open ({url.scheme}://{url.host}): "
            "only https links, or plain http on this computer, are downloaded.",
            field="url",
            value=str(url),
            allowed="https URLs (or http on 127.0.0.1 / localhost)",
            provider=self.provider,
        )

    def _read_download(self, response: httpx.Response, url: httpx.URL) -> _Answer:
        chunks: list[bytes] = []
        total = 0
        for chunk in response.iter_bytes():
            total += len(chunk)
            if total > MAX_DOWNLOAD_BYTES:
                raise ProviderUnavailable(
                    f"The file at {url.host} is larger than {MAX_DOWNLOAD_BYTES // 2**20} MB; it is not an image.",
                    provider=self.provider,
                    sent=True,
                )
            chunks.append(chunk)
        data = b"".join(chunks)
        if image_format(data) == "unknown":
            raise ProviderUnavailable(
                f"The file at {url.host} is not an image (it may have been cut short). Try again.",
                provider=self.provider,
                code="malformed",
                detail=data[:200].decode("utf-8", "replace"),
                sent=True,
            )
        return _Answer(None, response.headers.get("content-type"), data)

    def _transport_error(self, exc: httpx.TransportError, method: str, url: httpx.URL) -> ProviderError:
        sent = not isinstance(exc, _NOT_SENT)
        where = f"{self.label} ({url.host})"
        if isinstance(exc, httpx.TimeoutException):
            if sent:
                msg = f"{where} did not answer in time."
                if method == "POST":
                    msg += " The job may still have been created: check the provider's dashboard before retrying."
            else:
                msg = f"Could not reach {where} in time. Check the network and the base URL."
            return ProviderTimeout(msg, provider=self.provider, detail=repr(exc), sent=sent)
        if sent:
            msg = f"The connection to {where} broke before an answer arrived."
            if method == "POST":
                msg += " The job may still have been created: check the provider's dashboard before retrying."
        else:
            msg = f"Could not connect to {where}. Check the network and the base URL."
        return ProviderUnavailable(msg, provider=self.provider, detail=repr(exc), sent=sent)

    def _status_error(self, response: httpx.Response, *, download: bool) -> ProviderError:
        info = ErrorInfo(response)
        if download and info.status in (401, 403, 404, 410):
            return JobFailed(
                f"The image link from {self.label} has expired or is gone (HTTP {info.status}). "
                "Run the job again to get a new image.",
                code="result_expired",
                provider=self.provider,
                status_code=info.status,
                detail=info.text,
                sent=True,
            )
        if self.error_hook is not None and not download:
            mapped = self.error_hook(info)
            if mapped is not None:
                mapped.sent = True
                mapped.status_code = mapped.status_code or info.status
                mapped.detail = mapped.detail or info.text
                return mapped
        return generic_error(info, provider=self.provider, label=self.label, key_env=self.key_env)


class _Answer:
    def __init__(self, json_body: Any, content_type: str | None, content: bytes) -> None:
        self.json_body = json_body
        self.content_type = content_type
        self.content = content

    @classmethod
    def from_response(cls, response: httpx.Response, *, expect_json: bool, provider: str, label: str) -> _Answer:
        body: Any = None
        if response.content:
            try:
                body = response.json()
            except ValueError as exc:
                if expect_json:
                    raise ProviderUnavailable(
                        f"{label} sent an answer this app cannot read (not JSON). Try again later.",
                        provider=provider,
                        status_code=response.status_code,
                        code="malformed",
                        detail=response.text[:2000],
                        sent=True,
                    ) from exc
        elif expect_json:
            raise ProviderUnavailable(
                f"{label} sent an empty answer. Try again later.",
                provider=provider,
                status_code=response.status_code,
                code="malformed",
                sent=True,
            )
        return cls(body, response.headers.get("content-type"), response.content)


def generic_error(info: ErrorInfo, *, provider: str, label: str, key_env: str) -> ProviderError:
    """The status-code mapping shared by every provider (adapters refine it with a hook)."""
    common: dict[str, Any] = {
        "provider": provider,
        "status_code": info.status,
        "code": info.code or info.type,
        "detail": info.text,
        "sent": True,
    }
    said = f" {label} said: {info.message}"
    status = info.status
    if status in (401, 403):
        return AuthError(
            f"{label} refused the API key (HTTP {status}). Add {key_env} to .streamlit/secrets.toml "
            "or the environment, or type it in Settings.",
            **common,
        )
    if status == 402 or info.is_quota:
        return QuotaExceeded(
            f"Your {label} account is out of credits or over its spending limit. "
            f"Top it up on the provider's website, then try again.{said}",
            **common,
        )
    if status == 429:
        wait = f" Wait about {math.ceil(info.retry_after)} s and try again." if info.retry_after else ""
        return RateLimited(
            f"{label} is limiting how fast requests can be sent.{wait or ' Wait a moment and try again.'}",
            retry_after=info.retry_after,
            **common,
        )
    if status == 408:
        return ProviderTimeout(f"{label} timed out handling the request. Try again.", **common)
    if status >= 500:
        return ProviderUnavailable(f"{label} is having trouble (HTTP {status}). Try again in a minute.{said}", **common)
    if info.code == "model_not_found":
        return ModelUnavailable(f"{label} does not offer this model any more.{said}", model="", **common)
    field = info.param or "request"
    return InvalidRequest(f"{label} rejected the request.{said}", field=field, **common)


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
        validation.validate(request, self.caps(request.model), can_upload=self.uploader is not None)

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
            data, content_type = self.fetch(url)
            out.append(OutputImage(data=data, format=image_format(data, content_type), source_url=url))
        return out

    def fetch(self, url: str) -> tuple[bytes, str | None]:
        if url.startswith("data:"):
            head, _, payload = url.partition(",")
            return base64.b64decode(payload), head[5:].split(";")[0] or None
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
                job_id = status.job_id
                status = polling.wait(
                    lambda job_id=job_id: self.status(job_id),
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

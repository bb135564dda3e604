"""``HttpClient``: one provider's connection pool and retry policy.

One ``httpx.Client`` per provider instance (thread-safe, so one instance can sit in
``st.cache_resource``). Its rules:

- A job-creating request is sent once. It is resent only when the provider
  honours an idempotency key (``idempotent=True``, Apiframe), because a resent
  create would otherwise make, and bill, a second job.
- GETs and DELETEs (status polls, result downloads, cancels) are retried on
  connection errors, 408, 429 and 5xx with exponential backoff and jitter,
  honouring ``Retry-After`` (capped).
- Every failure becomes a typed error (``providers.http_errors``) with ``sent``
  telling whether the request may have reached the server.
- The API key goes only to the provider's own origin. Result URLs on other hosts
  are fetched without it (redirects are followed by hand so a key never follows
  one).
- Every hop of every request passes the URL policy (``providers.urlpolicy``): https
  to public addresses only, the provider's own base URL (its default, the operator's
  ``*_BASE_URL``, or the emulator) excepted; the sockets connect only to checked
  addresses. A download's answer is kept only when it is an image within the image
  gate (``providers.imagegate``); of anything else only its status and type are kept.
"""

from __future__ import annotations

import ipaddress
import random
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
import tenacity

from . import imagegate, validation
from .errors import InvalidRequest, ProviderUnavailable, RateLimited
from .http_errors import ErrorHook, answer_facts, status_error, transport_error
from .sse import SseEvent, SseReader, SseTooLarge
from .urlpolicy import MAX_REDIRECTS, UrlPolicy, UrlRefused

__all__ = ["USER_AGENT", "HttpClient", "image_format", "is_loopback_host", "strip_suffix"]

USER_AGENT = "image-studio/0.1 (+httpx)"

# Results are images; anything far larger than OpenAI's own 50 MB input limit is not one.
MAX_DOWNLOAD_BYTES = 200 * 1024 * 1024

Files = list[tuple[str, tuple[str, bytes, str]]]


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


def image_format(data: bytes, content_type: str | None = None) -> str:
    """png / jpeg / webp / gif by magic bytes, falling back to the Content-Type."""
    sniffed = validation.sniff_format(data)
    if sniffed is not None:
        return sniffed
    if content_type and content_type.startswith("image/"):
        return content_type.split("/", 1)[1].split(";")[0].strip().replace("jpg", "jpeg")
    return "unknown"


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
        base = min(self.initial * 2.0 ** (retry_state.attempt_number - 1), self.maximum)
        return base * random.uniform(0.75, 1.0)  # jitter keeps parallel jobs from polling in lockstep


def _retryable(exc: BaseException) -> bool:
    # QuotaExceeded is a 429 too, but waiting does not bring credits back; a redirect loop stays one.
    return isinstance(exc, (RateLimited, ProviderUnavailable)) and exc.code != "too_many_redirects"


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
                        detail=f"{answer_facts(response)}: {response.text[:2000]}",
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
        url_policy: UrlPolicy | None = None,
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
        self.policy = url_policy or UrlPolicy.for_base_urls(base_url)
        if transport is None:
            transport = self.policy.transport()  # sockets connect only to addresses the policy allows
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
        files: Files | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = False,
    ) -> Any:
        """POST the job-creating request; resent only if ``idempotent`` (same key, same job)."""
        kw = {"json": json, "data": data, "files": files, "headers": headers}
        return self._call("POST", path, retry=idempotent, kw=kw).json_body

    def create_stream(
        self,
        path: str,
        *,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        files: Files | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[SseEvent]:
        """POST the job-creating request and yield its server-sent events as they arrive. Never resent.

        An error answer raises as ``create`` would; a connection that breaks or times out
        mid-stream raises its typed error with ``sent=True`` (the job may have been made and
        charged). An answer that is not an event stream (a relay ignoring ``stream``) comes
        back as one event holding the whole body.
        """
        target = self._merge(path)
        self._check_url(target)
        sent_headers = self._headers_for(target) | {"Accept": "text/event-stream"} | dict(headers or {})
        body_kw: dict[str, Any] = {k: v for k, v in (("json", json), ("data", data), ("files", files)) if v is not None}
        try:
            request = self.client.build_request("POST", target, headers=sent_headers, **body_kw)
            response = self.client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise transport_error(exc, "POST", target, provider=self.provider, label=self.label) from exc
        except UrlRefused as exc:
            raise self._refused(target, exc.reason) from exc
        try:
            yield from self._stream_events(response)
        except httpx.TransportError as exc:
            raise transport_error(exc, "POST", target, provider=self.provider, label=self.label) from exc
        except SseTooLarge as exc:
            raise ProviderUnavailable(
                f"{self.label} streamed an event too large to be an image; the stream was abandoned.",
                provider=self.provider, code="malformed", detail=str(exc), sent=True,
            ) from exc
        finally:
            response.close()

    def _stream_events(self, response: httpx.Response) -> Iterator[SseEvent]:
        if not response.is_success:
            response.read()
            raise status_error(response, download=False, provider=self.provider, label=self.label,
                               key_env=self.key_env, hook=self.error_hook)
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            response.read()
            yield SseEvent(data=response.text)
            return
        reader = SseReader()
        for chunk in response.iter_bytes():
            yield from reader.feed(chunk)
        yield from reader.close()

    def get_json(self, path: str) -> Any:
        return self._call("GET", path, retry=True, kw={}).json_body

    def delete(self, path: str) -> Any:
        return self._call("DELETE", path, retry=True, kw={}, expect_json=False).json_body

    def download(self, url: str) -> tuple[bytes, str | None]:
        """Fetch a result or input image: bytes and Content-Type. Retried like a GET,
        also when the bytes are not an image (a truncated or garbled answer)."""
        target = httpx.URL(url)
        if target.scheme and target.scheme not in ("http", "https"):  # file:, ftp:, javascript: ...
            raise self._refused(target, "the link must start with https:// and name a server")
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
            self._check_url(target)  # every hop: a redirect may point anywhere
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
                    if not download:  # a failed download's body is never read: see download_error
                        response.read()
                finally:
                    response.close()
            except httpx.TransportError as exc:
                raise transport_error(exc, method, target, provider=self.provider, label=self.label) from exc
            except UrlRefused as exc:  # the socket layer's own check (the name resolved differently)
                raise self._refused(target, exc.reason) from exc
            if not response.is_success:
                raise status_error(
                    response,
                    download=download,
                    provider=self.provider,
                    label=self.label,
                    key_env=self.key_env,
                    hook=self.error_hook,
                )
            return _Answer.from_response(response, expect_json=expect_json, provider=self.provider, label=self.label)
        raise ProviderUnavailable(
            f"{self.label} redirected the request more than {MAX_REDIRECTS} times; it was not followed further.",
            provider=self.provider,
            code="too_many_redirects",
            sent=True,
        )

    def _check_url(self, url: httpx.URL) -> None:
        try:
            self.policy.check(str(url))
        except UrlRefused as refused:
            raise self._refused(url, refused.reason) from refused

    def _refused(self, url: httpx.URL, reason: str) -> InvalidRequest:
        return InvalidRequest(
            f"{self.label} gave a link this app will not open ({url.host}): {reason}.",
            field="url",
            value=f"{url.scheme}://{url.host}",
            allowed="https links to public addresses",
            provider=self.provider,
            code="url_refused",
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
        if validation.sniff_format(data) is None:
            # Only the answer's status and type are kept: its body may be anything the link reached.
            raise ProviderUnavailable(
                f"The file at {url.host} is not an image (it may have been cut short). Try again.",
                provider=self.provider,
                code="malformed",
                detail=f"{answer_facts(response)}, {len(data):,} bytes, not an image",
                sent=True,
            )
        imagegate.check(data, f"The image at {url.host}", field="url")  # sized from its header, never decoded
        return _Answer(None, response.headers.get("content-type"), data)

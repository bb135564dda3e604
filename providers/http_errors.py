"""What a failed HTTP exchange means, as a typed error from ``providers.errors``.

The status-code mapping every provider shares (adapters refine it with a hook),
what a transport failure says about whether the request left this machine
(``sent``), and ``Retry-After`` parsing. No I/O here: ``providers.http_client``
sends, this module only reads what came back.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC
from typing import Any

import httpx

from .errors import (
    AuthError,
    InvalidRequest,
    JobFailed,
    ModelUnavailable,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
)

__all__ = [
    "QUOTA_CODES",
    "ErrorHook",
    "ErrorInfo",
    "answer_facts",
    "download_error",
    "generic_error",
    "parse_retry_after",
    "status_error",
    "transport_error",
]

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
_MAY_HAVE_CREATED = " The job may still have been created: check the provider's dashboard before retrying."


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


def transport_error(
    exc: httpx.TransportError, method: str, url: httpx.URL, *, provider: str, label: str
) -> ProviderError:
    """A connection that failed or broke: ``sent`` says whether the request may have arrived."""
    sent = not isinstance(exc, _NOT_SENT)
    where = f"{label} ({url.host})"
    if isinstance(exc, httpx.TimeoutException):
        if sent:
            msg = f"{where} did not answer in time." + (_MAY_HAVE_CREATED if method == "POST" else "")
        else:
            msg = f"Could not reach {where} in time. Check the network and the base URL."
        return ProviderTimeout(msg, provider=provider, detail=repr(exc), sent=sent)
    if sent:
        msg = f"The connection to {where} broke before an answer arrived." + (
            _MAY_HAVE_CREATED if method == "POST" else ""
        )
    else:
        msg = f"Could not connect to {where}. Check the network and the base URL."
    return ProviderUnavailable(msg, provider=provider, detail=repr(exc), sent=sent)


def status_error(
    response: httpx.Response,
    *,
    download: bool,
    provider: str,
    label: str,
    key_env: str,
    hook: ErrorHook | None = None,
) -> ProviderError:
    """A non-2xx answer: an expired result link, the adapter's own reading (``hook``), else the shared one."""
    if download:
        return download_error(response, provider=provider, label=label)
    info = ErrorInfo(response)
    if hook is not None:
        mapped = hook(info)
        if mapped is not None:
            mapped.sent = True
            mapped.status_code = mapped.status_code or info.status
            mapped.detail = mapped.detail or info.text
            return mapped
    return generic_error(info, provider=provider, label=label, key_env=key_env)


def answer_facts(response: httpx.Response) -> str:
    """What may be kept of an answer that is not the image asked for: its status and type, never its body."""
    ctype = (response.headers.get("content-type") or "no content type").split(";")[0].strip()
    return f"HTTP {response.status_code}, {ctype}"


def download_error(response: httpx.Response, *, provider: str, label: str) -> ProviderError:
    """A failed image download. Its body is never read or kept: an image link can point anywhere,
    and what answers there (an internal service, an error page) is not the app's to store or show."""
    status = response.status_code
    common: dict[str, Any] = {"provider": provider, "status_code": status, "detail": answer_facts(response),
                              "sent": True}
    if status in (401, 403, 404, 410):
        return JobFailed(
            f"The image link from {label} has expired or is gone (HTTP {status}). "
            "Run the job again to get a new image.",
            code="result_expired",
            **common,
        )
    if status == 429:
        retry_after = parse_retry_after(response.headers)
        return RateLimited(f"{label}'s file server is limiting downloads (HTTP 429).", retry_after=retry_after,
                           **common)
    if status >= 500 or status == 408:
        return ProviderUnavailable(f"{label}'s file server is having trouble (HTTP {status}). Try again in a minute.",
                                   **common)
    return JobFailed(f"{label}'s file server refused the image download (HTTP {status}).",
                     code="download_refused", **common)


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

"""Typed errors raised by the provider layer.

Every error carries a message a non-engineer can act on (``str(err)``) and keeps
the provider's own words in ``detail`` for the detail view. Always raise them
``from`` the underlying cause.

    ProviderError(message, provider, status_code, code, detail)
    ├── AuthError                  401/403, or no key configured
    ├── InvalidRequest             field, value, allowed  (raised by validate() before any network call)
    ├── ModelUnavailable           model retired / model_not_found; names the replacement
    ├── ModerationBlocked          stage ("input" | "output" | None), billed (True | False | None)
    ├── QuotaExceeded              out of credits / spend limit (402, 429 insufficient_quota): never retried
    ├── RateLimited                retry_after seconds (may be None): retried on polls, never on creates
    ├── ProviderUnavailable        5xx, connection failure, malformed answer
    │   └── ProviderTimeout        no answer in time, or a job past its deadline
    ├── JobFailed                  the provider accepted the job and then reported failure (code, message)
    └── JobCanceled                the job was canceled
"""

from __future__ import annotations

from .redact import redact

__all__ = [
    "AuthError",
    "InvalidRequest",
    "JobCanceled",
    "JobFailed",
    "ModelUnavailable",
    "ModerationBlocked",
    "ProviderError",
    "ProviderTimeout",
    "ProviderUnavailable",
    "QuotaExceeded",
    "RateLimited",
]


class ProviderError(Exception):
    """Base of every provider-layer error.

    ``kind`` is a short stable name stored in the history (``error_kind``).
    ``sent`` is True when the failed request may have reached the server (a read
    timeout, a dropped connection, a 5xx answer): the job runner never resends a
    job-creating request in that case unless the provider honours idempotency.
    """

    kind = "provider_error"

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = None,
        code: str | None = None,
        detail: str | None = None,
        sent: bool = False,
    ) -> None:
        message = redact(message) or ""
        super().__init__(message)
        self.sent = sent
        self.message = message
        self.provider = provider
        self.status_code = status_code
        self.code = code
        self.detail = detail

    # The message and the provider's own text are redacted whenever they are set: an answer that
    # echoes the key (a 401 body, a proxy's error page) never leaves the provider layer with it.
    @property
    def message(self) -> str:
        return self._message

    @message.setter
    def message(self, value: str) -> None:
        self._message = redact(value) or ""

    @property
    def detail(self) -> str | None:
        return self._detail

    @detail.setter
    def detail(self, value: str | None) -> None:
        self._detail = redact(value)

    def __str__(self) -> str:
        return self.message


class AuthError(ProviderError):
    kind = "auth"


class InvalidRequest(ProviderError):
    """A parameter the provider does not accept.

    ``field`` names the parameter, ``value`` what was given and ``allowed`` what
    would be accepted (a list of values or a human sentence).
    """

    kind = "invalid_request"

    def __init__(
        self,
        message: str | None = None,
        *,
        field: str,
        value: object = None,
        allowed: object = None,
        **kw: object,
    ) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        if message is None:
            message = f"{field}: {value!r} is not accepted"
            if allowed is not None:
                shown = ", ".join(map(str, allowed)) if isinstance(allowed, (list, tuple)) else allowed
                message += f"; use {shown}"
        super().__init__(message, **kw)  # type: ignore[arg-type]


class ModelUnavailable(ProviderError):
    kind = "model_unavailable"

    def __init__(self, message: str, *, model: str, replacement: str | None = None, **kw: object) -> None:
        self.model = model
        self.replacement = replacement
        super().__init__(message, **kw)  # type: ignore[arg-type]


class ModerationBlocked(ProviderError):
    kind = "moderation"

    def __init__(
        self,
        message: str,
        *,
        stage: str | None = None,
        billed: bool | None = None,
        **kw: object,
    ) -> None:
        self.stage = stage
        self.billed = billed
        super().__init__(message, **kw)  # type: ignore[arg-type]


class QuotaExceeded(ProviderError):
    kind = "quota"


class RateLimited(ProviderError):
    kind = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)  # type: ignore[arg-type]


class ProviderUnavailable(ProviderError):
    kind = "unavailable"


class ProviderTimeout(ProviderUnavailable):
    kind = "timeout"


class JobFailed(ProviderError):
    kind = "job_failed"

    def __init__(self, message: str, *, code: str | None = None, **kw: object) -> None:
        super().__init__(message, code=code, **kw)  # type: ignore[arg-type]


class JobCanceled(ProviderError):
    kind = "canceled"

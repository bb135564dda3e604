"""The one redaction rule: secrets out of every text the app stores, logs, exports or draws.

``redact(text)`` replaces, with ``[redacted]``:

- every key this process has been configured with or has used: the provider keys in
  the environment (``*_API_KEY``, ``*_TOKEN``, ``*_SECRET``...), and each key handed to
  a provider (``remember`` is called by ``HttpProvider`` for its key, so a key typed in
  Settings for one session is covered once a job has used it; pages register the
  session's keys before drawing);
- anything shaped like a secret whoever it belongs to: ``Bearer <token>``, the four
  providers' key shapes (``sk-...``, ``cdt_...``, ``afk_...``) and ``api_key=...`` /
  ``Authorization: ...`` / ``X-API-Key: ...`` pairs.

It is applied where text crosses into keeping or showing: every ``ProviderError``'s
message and detail (so a 401 body that echoes the key never leaves the provider
layer with it), the job's error fields and ledger report at the store boundary
(``core.jobs.claims``), log records (``install_log_redaction``), CSV and HTML
exports, recipes embedded in images, and provider text drawn on a page.

Short values are never taken for keys (``MIN_SECRET_LENGTH``): the emulator accepts
any key, and the word ``emulator`` must survive in messages.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "MARK",
    "MIN_SECRET_LENGTH",
    "SECRET_SHAPE",
    "install_log_redaction",
    "redact",
    "redact_value",
    "remember",
    "secrets_now",
]

MARK = "[redacted]"
MIN_SECRET_LENGTH = 12
# Environment names that hold secrets (the four providers' keys and anything named like one).
_SECRET_ENV = re.compile(r"(?:_API_KEY|_APIKEY|_TOKEN|_SECRET|_SECRET_KEY|_PASSWORD|_ACCESS_KEY)$")
# Key shapes, and the header / parameter spellings a key travels in.
SECRET_SHAPE = re.compile(
    r"\b(?:sk-[A-Za-z0-9_-]{16,}|cdt_[A-Za-z0-9_-]{12,}|afk_[A-Za-z0-9_-]{12,}|ek-[A-Za-z0-9_-]{16,})"
    r"|(?i:\bBearer\s+)[^\s\"',;<>]{4,}"
)
_PAIR = re.compile(
    r"(?i)(\b(?:x-api-key|api[_-]?key|apikey|access[_-]?token|authorization|password|secret)\b"
    r"[\"']?\s*[:=]\s*[\"']?)(?!\[redacted\])((?:Bearer\s+)?[^\s\"',;&<>}]{4,})"
)

_lock = threading.Lock()
_remembered: set[str] = set()


def remember(secret: str | None) -> None:
    """Treat ``secret`` as a key from now on (process-wide); short values are ignored."""
    if secret is None:
        return
    value = secret.strip()
    if len(value) >= MIN_SECRET_LENGTH:
        with _lock:
            _remembered.add(value)


def secrets_now(extra: Iterable[str | None] = ()) -> list[str]:
    """Every secret value known right now, longest first (so a key inside a longer one goes whole)."""
    found = {v.strip() for v in extra if v and len(v.strip()) >= MIN_SECRET_LENGTH}
    with _lock:
        found |= _remembered
    for name, value in os.environ.items():
        if _SECRET_ENV.search(name.upper()) and value and len(value.strip()) >= MIN_SECRET_LENGTH:
            found.add(value.strip())
    return sorted(found, key=len, reverse=True)


def redact(text: str | None, extra: Iterable[str | None] = ()) -> str | None:
    """``text`` with every known secret and every secret-shaped token replaced by ``[redacted]``."""
    if not text:
        return text
    out = text
    for secret in secrets_now(extra):
        if secret in out:
            out = out.replace(secret, MARK)
    out = _PAIR.sub(lambda m: m.group(1) + MARK, out)
    return SECRET_SHAPE.sub(MARK, out)


def redact_value(value: Any, extra: Iterable[str | None] = ()) -> Any:
    """A JSON-like value with every string in it redacted, however deep (a provider's raw report)."""
    secrets = tuple(extra)
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, Mapping):
        return {k: redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v, secrets) for v in value]
    return value


# --- logs ----------------------------------------------------------------------------------
_installed = False


def install_log_redaction() -> None:
    """Redact every log record this process makes, whatever logger or handler it goes to.

    A record factory rather than a filter: filters sit on one logger or handler, and a
    record propagating from a child logger skips its parents' filters. The message is
    formatted and redacted once, and a traceback's text is redacted too.
    """
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: leave it for logging to report
            return record
        record.msg, record.args = redact(message) or "", ()
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)

"""Where settings and secrets come from.

Keys are looked up in this order: the session (typed in Settings), then
``.streamlit/secrets.toml``, then the environment. ``st.secrets.get`` raises when
no secrets file exists at all, so every read goes through :func:`get_secret`.
Nothing here ever logs or returns a key anywhere but to its caller.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal

__all__ = [
    "KeySource",
    "budget_from_env",
    "data_dir",
    "database_url",
    "emulator_jitter",
    "emulator_latency",
    "get_secret",
    "key_source",
    "public_url",
    "streamlit_secrets",
]

KeySource = Literal["session", "secrets", "environment", "none"]


# When no secrets file exists, Streamlit's ``st.secrets`` looks for one again on every read, under a
# lock, and raises: measured at a third of the script's time with 20 sessions (issue 17), since every
# text drawn is redacted against the configured keys. So "no file" is remembered for a few seconds
# (a secrets.toml added later is seen within that time); a loaded file is Streamlit's own cache.
_ABSENT_FOR_S = 5.0
_absent: tuple[object, float] | None = None  # (the st.secrets object that had no file, until when)
_absent_lock = threading.Lock()


def streamlit_secrets() -> Mapping[str, object]:
    """``st.secrets`` as a mapping, or an empty one when there is no secrets file (or no Streamlit)."""
    global _absent
    try:
        import streamlit as st
    except ImportError:
        return {}
    secrets = st.secrets
    absent = _absent
    # Held by identity: AppTest puts its own Secrets object in place for a run.
    if absent is not None and absent[0] is secrets and time.monotonic() < absent[1]:
        return {}
    try:
        secrets.keys()  # touching the mapping loads the file; with no file at all this raises
        return secrets
    except (FileNotFoundError, KeyError, ValueError):
        pass
    except Exception as exc:  # StreamlitSecretNotFoundError / toml parse errors
        if not type(exc).__name__.startswith("StreamlitSecret"):
            raise
    with _absent_lock:
        _absent = (secrets, time.monotonic() + _ABSENT_FOR_S)
    return {}


def get_secret(name: str, session: Mapping[str, object] | None = None) -> tuple[str | None, KeySource]:
    """Return ``(value, source)`` for a secret such as ``OPENAI_API_KEY``."""
    if session:
        value = session.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip(), "session"
    value = streamlit_secrets().get(name)
    if isinstance(value, str) and value.strip():
        return value.strip(), "secrets"
    value = os.environ.get(name)
    if value and value.strip():
        return value.strip(), "environment"
    return None, "none"


def key_source(name: str, session: Mapping[str, object] | None = None) -> KeySource:
    return get_secret(name, session)[1]


_resolved: dict[tuple[str, str], Path] = {}


def data_dir() -> Path:
    raw = os.environ.get("IMAGE_STUDIO_DATA_DIR", "./data")
    # Resolving walks every part of the path (measured at 5% of a script run with 20 sessions): once per
    # setting and working directory. The folder is still made again if it went away.
    key = (raw, os.getcwd())
    path = _resolved.get(key)
    if path is None:
        path = _resolved[key] = Path(raw).expanduser().resolve()
    if not path.is_dir():  # a stat; mkdir on an existing folder raises and catches inside pathlib
        path.mkdir(parents=True, exist_ok=True)
    return path


def public_url() -> str | None:
    """``IMAGE_STUDIO_PUBLIC_URL``: where providers can reach this app (for callbacks), without a
    trailing slash; None when unset or not an http(s) address."""
    raw = os.environ.get("IMAGE_STUDIO_PUBLIC_URL", "").strip().rstrip("/")
    return raw if raw.startswith(("https://", "http://")) else None


def database_url() -> str:
    url = os.environ.get("IMAGE_STUDIO_DATABASE_URL", "").strip()
    return url or f"sqlite:///{data_dir() / 'core.db'}"


def emulator_latency(default: float = 3.0) -> float:
    raw = os.environ.get("IMAGE_STUDIO_EMULATOR_LATENCY", "")
    try:
        return max(0.0, float(raw)) if raw.strip() else default
    except ValueError:
        return default


def emulator_jitter(default: float = 0.0) -> float:
    """``IMAGE_STUDIO_EMULATOR_JITTER``: the emulator's job times spread by this fraction either way (0 to 0.95)."""
    raw = os.environ.get("IMAGE_STUDIO_EMULATOR_JITTER", "")
    try:
        return min(0.95, max(0.0, float(raw))) if raw.strip() else default
    except ValueError:
        return default


def budget_from_env() -> tuple[Decimal | None, Decimal | None]:
    """(daily, total) caps in USD from the environment; None where unset or invalid."""

    def read(name: str) -> Decimal | None:
        raw = os.environ.get(name, "").strip()
        if not raw:
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            return None
        return value if value >= 0 else None

    return read("IMAGE_STUDIO_BUDGET_USD_DAILY"), read("IMAGE_STUDIO_BUDGET_USD_TOTAL")

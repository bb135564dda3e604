"""Where settings and secrets come from.

Keys are looked up in this order: the session (typed in Settings), then
``.streamlit/secrets.toml``, then the environment. ``st.secrets.get`` raises when
no secrets file exists at all, so every read goes through :func:`get_secret`.
Nothing here ever logs or returns a key anywhere but to its caller.
"""

from __future__ import annotations

import os
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
]

KeySource = Literal["session", "secrets", "environment", "none"]


def _streamlit_secrets() -> Mapping[str, object]:
    try:
        import streamlit as st

        secrets = st.secrets
        # Touching the mapping loads the file; with no file at all this raises.
        secrets.keys()
        return secrets
    except (FileNotFoundError, ImportError, KeyError, ValueError):
        return {}
    except Exception as exc:  # StreamlitSecretNotFoundError / toml parse errors
        if type(exc).__name__.startswith("StreamlitSecret"):
            return {}
        raise


def get_secret(name: str, session: Mapping[str, object] | None = None) -> tuple[str | None, KeySource]:
    """Return ``(value, source)`` for a secret such as ``OPENAI_API_KEY``."""
    if session:
        value = session.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip(), "session"
    value = _streamlit_secrets().get(name)
    if isinstance(value, str) and value.strip():
        return value.strip(), "secrets"
    value = os.environ.get(name)
    if value and value.strip():
        return value.strip(), "environment"
    return None, "none"


def key_source(name: str, session: Mapping[str, object] | None = None) -> KeySource:
    return get_secret(name, session)[1]


def data_dir() -> Path:
    path = Path(os.environ.get("IMAGE_STUDIO_DATA_DIR", "./data")).expanduser().resolve()
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

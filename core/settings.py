"""App-wide settings that outlive a session: defaults and credit values.

Kept as a small JSON file in the data directory (written atomically), so every
session and the job runner price things the same way. Budget caps live in the
database instead, because they take part in the reservation transaction.
Keys are never stored here.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from core import config

__all__ = ["AppSettings", "load", "save"]

_lock = threading.Lock()


@dataclass
class AppSettings:
    default_provider: str = "openai"
    default_quality: str = "medium"
    default_size: str = "1:1"
    # Credit values a provider does not publish (Apiframe): USD per credit, as text for exactness.
    usd_per_credit: dict[str, str] = field(default_factory=dict)

    def credit_overrides(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for provider, text in self.usd_per_credit.items():
            try:
                value = Decimal(text)
            except (InvalidOperation, TypeError):
                continue
            if value > 0:
                out[provider] = value
        env = os.environ.get("IMAGE_STUDIO_APIFRAME_USD_PER_CREDIT", "").strip()
        if env and "apiframe" not in out:
            try:
                out["apiframe"] = Decimal(env)
            except InvalidOperation:
                pass
        return out


def _path() -> Path:
    return config.data_dir() / "settings.json"


def load() -> AppSettings:
    path = _path()
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return AppSettings()
    except (OSError, ValueError):
        # A damaged file must not take the app down; defaults are safe.
        return AppSettings()
    known = {k: v for k, v in raw.items() if k in AppSettings.__dataclass_fields__}
    return AppSettings(**known)


def save(settings: AppSettings) -> None:
    path = _path()
    with _lock:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".settings-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(asdict(settings), fh, indent=2, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

"""The one clock: every calendar decision in Image Studio asks this module what time it is.

Retirement of models, daily budgets, "made 3 min ago", report stamps, the emulator's
``created`` fields: all of them read :func:`now` (or one of its views) and nothing else.
Timers that only measure a wait (polling, timeouts) keep using ``time.monotonic()``.

The app runs on the real clock. A test pins a day with :func:`pin` (in-process) or,
for a child process such as ``streamlit run app.py``, with the environment variable
``IMAGE_STUDIO_CLOCK``: an ISO instant (``2026-12-01T12:00:00Z``), optionally anchored
to the epoch second it stands for (``2026-12-01T12:00:00Z@1764590400``). The clock then
reads that instant at the anchor (or at process start) and runs at real speed from
there, so durations stay true, a restarted process continues the same timeline, and
the date no longer depends on the machine's calendar.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

__all__ = [
    "ENV",
    "environment_value",
    "local_now",
    "local_today",
    "now",
    "parse_instant",
    "pin",
    "pinned",
    "timestamp",
    "today",
]

ENV = "IMAGE_STUDIO_CLOCK"

Source = Callable[[], datetime]


def parse_instant(text: str) -> datetime:
    """An ISO date or instant as an aware UTC datetime (a bare date means noon UTC)."""
    raw = text.strip()
    if len(raw) == 10:  # YYYY-MM-DD
        return datetime.fromisoformat(raw).replace(hour=12, tzinfo=UTC)
    value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _real() -> datetime:
    return datetime.now(UTC)


def _flowing_from(start: datetime) -> Source:
    """A clock that reads ``start`` now and advances with the monotonic timer."""
    origin = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - origin)


def _from_environment() -> Source:
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return _real
    instant, _, anchor = raw.partition("@")
    start = parse_instant(instant)
    if not anchor:
        return _flowing_from(start)
    # Anchored: the offset from the real clock is fixed, so every process agrees.
    offset = start.timestamp() - float(anchor)
    return lambda: datetime.fromtimestamp(time.time() + offset, UTC)


def environment_value() -> str:
    """``IMAGE_STUDIO_CLOCK`` for a child process that should share this process's timeline."""
    return f"{now().isoformat()}@{time.time():.6f}"


_lock = threading.Lock()
_source: Source = _from_environment()


def now() -> datetime:
    """The current instant, timezone-aware, in UTC."""
    return _source()


def today() -> date:
    """Today's date in UTC: providers announce shutdowns as UTC days."""
    return now().date()


def local_now() -> datetime:
    """The current instant in the machine's local timezone (budgets reset at local midnight)."""
    return now().astimezone()


def local_today() -> date:
    return local_now().date()


def timestamp() -> float:
    """Seconds since the epoch, for wire formats that carry one (``created``)."""
    return now().timestamp()


def pinned() -> bool:
    return _source is not _real


@contextlib.contextmanager
def pin(at: datetime | date | str, *, frozen: bool = False) -> Iterator[None]:
    """Within the block the clock reads ``at`` (then runs on, unless ``frozen``).

    Restores the previous clock on exit, so pins nest.
    """
    global _source
    if isinstance(at, str):
        at = parse_instant(at)
    elif not isinstance(at, datetime):
        at = datetime(at.year, at.month, at.day, 12, tzinfo=UTC)
    elif at.tzinfo is None:
        raise ValueError("pin() needs an aware datetime (or a date)")
    start = at
    source: Source = (lambda: start) if frozen else _flowing_from(start)
    with _lock:
        previous, _source = _source, source
    try:
        yield
    finally:
        with _lock:
            _source = previous

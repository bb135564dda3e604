"""Small pure pieces: exact money, runner identities, day boundaries."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal

from core import db
from core.jobs import claims
from core.spend import budget
from core.spend.money import format_usd, nanos_to_usd, parse_decimal, usd_to_nanos


def test_money_is_exact() -> None:
    assert usd_to_nanos(Decimal("0.07")) == 70_000_000
    assert usd_to_nanos("0.0000000011", round_up=True) == 2  # a reservation never rounds down
    assert usd_to_nanos("0.0000000011") == 1
    assert nanos_to_usd(70_000_000) == Decimal("0.07") and nanos_to_usd(None) is None
    assert sum(usd_to_nanos(Decimal("0.1")) for _ in range(10)) == usd_to_nanos(1)
    assert parse_decimal("42.5") == Decimal("42.5") and parse_decimal("x") is None and parse_decimal(None) is None


def test_format_usd() -> None:
    # The whole rule is table-tested in tests/core/spend/test_money.py.
    assert format_usd(Decimal("0.07")) == "$0.0700"
    assert format_usd(Decimal("0.0053")) == "$0.0053"
    assert format_usd(Decimal("1.5")) == "$1.50"
    assert format_usd(Decimal("12345.678")) == "$12,345.68"
    assert format_usd(Decimal(0)) == "$0.00"
    assert format_usd(None) == "—"


def test_owner_ids_say_when_their_process_is_gone() -> None:
    me = claims.make_owner_id()
    host, pid, start, token = me.split("|")
    assert host == socket.gethostname() and int(pid) == os.getpid() and start and len(token) == 8
    assert not claims.owner_is_dead(me)
    assert not claims.owner_is_dead("another-host|1|1|x")  # other hosts: only the lease tells
    assert not claims.owner_is_dead("garbage")

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        child = f"{host}|{proc.pid}|{claims.process_start(proc.pid)}|t"
        assert not claims.owner_is_dead(child)
        os.kill(proc.pid, signal.SIGKILL)
        time.sleep(0.2)
        assert claims.owner_is_dead(child)  # killed, not yet reaped: a zombie is dead
    finally:
        proc.wait()
    assert claims.owner_is_dead(child)
    # Same pid, different start time: the pid was reused by a newer process.
    assert claims.owner_is_dead(f"{host}|{os.getpid()}|1|t")


def test_day_start_is_local_midnight_in_utc() -> None:
    now = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)
    start = budget.day_start(now)
    assert start.tzinfo is not None and start <= now
    local = start.astimezone()
    assert (local.hour, local.minute, local.second) == (0, 0, 0)
    assert (now - start).total_seconds() < 86400
    assert db.as_utc(datetime(2026, 1, 1)) == datetime(2026, 1, 1, tzinfo=UTC)

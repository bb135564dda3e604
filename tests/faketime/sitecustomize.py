"""Loaded only by the shifted-calendar run in ``scripts/test`` (through PYTHONPATH), never by the app.

That run moves the machine's calendar with Debian's ``faketime`` and excludes the monotonic
clock (``FAKETIME_DONT_FAKE_MONOTONIC=1``): faking it makes every timed lock wait hang
(wolfcw/libfaketime#390). With the monotonic clock excluded, libfaketime 0.9.10 mis-converts
``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)``, which Python 3.11's ``time.sleep`` uses,
and the sleep fails with EINVAL (wolfcw/libfaketime#426). So here ``time.sleep`` waits in
``select()``, whose timeout is relative. Child processes started by the tests load this too.
"""

import os
import select
import time

if os.environ.get("FAKETIME"):

    def _sleep(seconds: float) -> None:
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        select.select([], [], [], seconds)

    time.sleep = _sleep

"""The benchmark harness runs end to end in quick mode and produces numbers.

No timing is asserted here (speed figures live in bench/ only): only that every
benchmark ran, printed its rows, and that those rows hold finite numbers, with a
baseline where the measurement has one. It starts real servers and headless
Chromium, so it is a browser test, and slow.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.run_all import NAMES

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ISSUE_17 = {"done_to_screen", "interactive", "sessions", "history_scale"}


def _finite(x: object) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def test_run_all_quick_produces_every_figure(tmp_path: Path) -> None:
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Chromium is not installed (run README's test command)")
    out = tmp_path / "rows.jsonl"
    # The benchmarks relate the emulator's clock to the browser's: the real clock, never the suite's pinned one.
    env = {k: v for k, v in os.environ.items() if k != "IMAGE_STUDIO_CLOCK"}
    done = subprocess.run([sys.executable, "-m", "bench.run_all", "--quick", "--json", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode in (0, 1), done.stdout[-4000:] + done.stderr[-4000:]  # 2: a benchmark crashed
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["benchmark"] for r in rows} == set(NAMES)
    for r in rows:
        if r["kind"] == "check":
            assert _finite(r["figure"]) and _finite(r["target"]), r
        else:
            assert _finite(r["app"]), r
            assert r["baseline"] is None or _finite(r["baseline"]), r
            assert r["load"]["nproc"] >= 1 and len(r["load"]["loadavg_before"]) == 3, r
    goals = [r for r in rows if r["kind"] == "versus" and r["met"] is not None]
    assert {r["benchmark"] for r in goals} == ISSUE_17
    with_baseline = {r["benchmark"] for r in rows if r["kind"] == "versus" and r["baseline"] is not None}
    assert with_baseline == ISSUE_17
    assert "Issue 17's goals" in done.stdout and "QUICK RUN" in done.stdout

"""Run every benchmark, each in its own process, and print a summary.

    python -m bench.run_all [--skip NAME ...]

Each benchmark prints its own table (figure, target, ratio, PASS/FAIL); the
summary lists them with their commands. Exits 1 when any failed. A benchmark
runs in a fresh process so one's caches, threads and environment cannot help
or hinder the next.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench.common import ROOT

BENCHMARKS = [
    ("see_finished", "time to see a finished job"),
    ("fanout", "batch fan-out"),
    ("page_redraw", "page redraw with 10,000 jobs"),
    ("image_prep", "image preparation"),
    ("app_memory", "app memory after 200 images"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip", nargs="*", default=[], choices=[name for name, _ in BENCHMARKS])
    args = parser.parse_args(argv)
    rows = []
    for name, what in BENCHMARKS:
        if name in args.skip:
            continue
        command = [sys.executable, "-m", f"bench.{name}"]
        print(f"\n### python -m bench.{name}  ({what})", flush=True)
        began = time.monotonic()
        code = subprocess.run(command, cwd=ROOT, check=False).returncode
        rows.append((name, what, code, time.monotonic() - began))
    print("\n== Summary ==")
    for name, what, code, seconds in rows:
        print(f"{'PASS' if code == 0 else 'FAIL'}  python -m bench.{name:<13} {what} ({seconds:.0f} s)")
    return 0 if all(code == 0 for _, _, code, _ in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())

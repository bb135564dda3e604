"""Run every benchmark, each in its own process, and print a summary with issue 17's goals.

    python -m bench.run_all [--quick] [--skip NAME ...] [--only NAME ...] [--json FILE]

Each benchmark prints its own table; the summary then lists every figure again:
the first five against their targets (PASS/FAIL), the four of what a person
waits for (issue 17) beside their same-run baseline, the ratio, the goal and
whether this run meets it, with the machine's load while each ran. ``--quick``
runs each with tiny sizes (a smoke run: its figures are not the benchmark's).
``--json`` writes every row to FILE (one JSON object per line).

Exits 0 when every check passes and every goal is met, 1 when any is not, 2
when a benchmark produced no figures at all (it crashed). A benchmark runs in a
fresh process so one's caches, threads and environment cannot help or hinder
the next.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, fmt

BENCHMARKS = [
    ("see_finished", "time to see a finished job (store)", ["--lengths", "1", "--jobs", "1", "--warm-up", "2"]),
    ("fanout", "batch fan-out", ["--images", "2", "--length", "0.5", "--repeat", "1"]),
    ("page_redraw", "page redraw with 10,000 jobs", ["--jobs", "300", "--runs", "2"]),
    ("image_prep", "image preparation", ["--runs", "1"]),
    ("app_memory", "app memory after 200 images", ["--words", "2", "--per-prompt", "2"]),
    ("done_to_screen", "provider done -> image on screen", ["--quick"]),
    ("interactive", "first paint, quality change on screen", ["--quick"]),
    ("sessions", "20 sessions at once vs one alone", ["--quick"]),
    ("history_scale", "rerun time at 1k / 10k / 50k jobs", ["--quick"]),
]
NAMES = [name for name, _, _ in BENCHMARKS]


def run_one(name: str, quick_args: list[str], quick: bool, results: Path) -> tuple[int, float, list[dict[str, Any]]]:
    command = [sys.executable, "-m", f"bench.{name}", *(quick_args if quick else [])]
    print(f"\n### {' '.join(['python', '-m', f'bench.{name}', *(quick_args if quick else [])])}", flush=True)
    began = time.monotonic()
    env = {**os.environ, "BENCH_RESULTS": str(results)}
    code = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
    rows = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    return code, time.monotonic() - began, rows


def _verdict(row: dict[str, Any]) -> str:
    if row["kind"] == "check":
        return "PASS" if row["ok"] else "FAIL"
    return {None: "", True: "met", False: "NOT MET"}[row["met"]]


def print_summary(done: list[tuple[str, str, int, float, list[dict[str, Any]]]], quick: bool) -> None:
    print("\n== Summary: every figure ==")
    if quick:
        print("QUICK RUN: tiny sizes, a smoke test of the harness; these figures and verdicts judge nothing")
    for name, what, code, seconds, rows in done:
        state = "no figures (crashed)" if not rows else ("all met" if code == 0 else "some not met")
        print(f"\n-- python -m bench.{name}: {what} ({seconds:.0f} s, {state})")
        for r in rows:
            if r["kind"] == "check":
                print(f"   {_verdict(r):<7} {r['name']}: {fmt(r['figure'], r['unit'])} (target <= "
                      f"{fmt(r['target'], r['unit'])})")
            else:
                base = "-" if r["baseline"] is None else fmt(r["baseline"], r["unit"])
                ratio = "" if r["ratio"] is None else f", {r['ratio']:.2f}x"
                goal = f"  goal: {r['goal']}" if r["goal"] else ""
                print(f"   {_verdict(r):<7} {r['name']}: app {fmt(r['app'], r['unit'])}, baseline {base}{ratio}{goal}")
        load = next((r["load"] for r in rows if r.get("load")), None)
        if load:
            print(f"   machine: {load['nproc']} CPUs, load average {load['loadavg_before'][0]:.2f} -> "
                  f"{load['loadavg_after'][0]:.2f}, CPUs {load['busy']:.0%} busy")
    goals = [r for _, _, _, _, rows in done for r in rows if r["kind"] == "versus" and r["met"] is not None]
    print("\n== Issue 17's goals ==")
    for r in goals:
        print(f"   {_verdict(r):<7} {r['name']} ({r['goal']})")
    met = sum(bool(r["met"]) for r in goals)
    print(f"   {met} of {len(goals)} met")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run, not the figures")
    parser.add_argument("--skip", nargs="*", default=[], choices=NAMES)
    parser.add_argument("--only", nargs="*", default=[], choices=NAMES)
    parser.add_argument("--json", type=Path, help="write every row here, one JSON object per line")
    args = parser.parse_args(argv)
    done = []
    with tempfile.TemporaryDirectory(prefix="image-studio-bench-results-") as tmp:
        for name, what, quick_args in BENCHMARKS:
            if name in args.skip or (args.only and name not in args.only):
                continue
            code, seconds, rows = run_one(name, quick_args, args.quick, Path(tmp) / f"{name}.jsonl")
            done.append((name, what, code, seconds, rows))
    print_summary(done, args.quick)
    if args.json:
        with args.json.open("w") as fh:
            for name, _, code, _, rows in done:
                for r in rows:
                    fh.write(json.dumps({"benchmark": name, "exit": code, **r}) + "\n")
    if any(not rows for *_, rows in done):
        return 2
    return 0 if all(code == 0 for _, _, code, _, _ in done) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark 9: Studio and History rerun time, and the store's SQL behind them, at 1k / 10k / 50k jobs.

Each size runs in a fresh process (no cache, no warm page from a smaller size)
with its own store of finished jobs (``tests.seeding.bulk_seed``). The pages
run through ``streamlit.testing.v1.AppTest`` on ``app.py`` (navigation, sidebar,
page), a prompt typed on Studio, the gallery's first page on History. A rerun's
time is the script (``at.run()``) **plus an explicit ``gc.collect(2)``** after it
when the app's config asks Streamlit's server for one (``runner.postScriptGC``,
on by default, read from ``.streamlit/config.toml``), which AppTest skips. It
holds the interpreter (every session's next run, the job runner's threads)
although the page's last element has already gone to the browser. Printed apart
as well. With ``postScriptGC = false`` (issue 17) Python's own generational
collector still runs inside the script, as it does in the server.

Every SQL statement the process sends during a measured rerun is timed through
SQLAlchemy's cursor events (``before_cursor_execute`` / ``after_cursor_execute``):
statements per rerun, their total time, and the statements costing most.

The goal (issue 17): a rerun at the largest size at most 1.3x the smallest (flat
in history size); the smallest size is the baseline.

    python -m bench.history_scale [--sizes 1000,10000,50000] [--runs 9] [--profile] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import ROOT, LoadMeter, Versus, free_port, median, versus_report

FLAT_GOAL = 1.3


class SqlTimer:
    """Times every statement any SQLAlchemy engine in this process executes while ``active``."""

    def __init__(self) -> None:
        self.active = False
        self.count = 0
        self.seconds = 0.0
        self.by_statement: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])

    def install(self) -> None:
        import sqlalchemy as sa

        def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            conn.info.setdefault("bench_began", []).append(time.perf_counter())

        def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            took = time.perf_counter() - conn.info["bench_began"].pop()
            if self.active:
                self.count += 1
                self.seconds += took
                key = re.sub(r"\s+", " ", statement)[:110]
                self.by_statement[key][0] += 1
                self.by_statement[key][1] += took

        sa.event.listen(sa.engine.Engine, "before_cursor_execute", before)
        sa.event.listen(sa.engine.Engine, "after_cursor_execute", after)

    @contextmanager
    def measuring(self) -> Iterator[SqlTimer]:
        self.count, self.seconds, self.active = 0, 0.0, True
        try:
            yield self
        finally:
            self.active = False


def post_script_gc() -> bool:
    """Whether the app's Streamlit config has the server collect after every script run (its default)."""
    import tomllib

    from bench.common import ROOT

    try:
        config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return True
    return bool(config.get("runner", {}).get("postScriptGC", True))


GC_TAG = " + GC" if post_script_gc() else " (no post-run GC, as configured)"


def timed_reruns(at: Any, runs: int, sql: SqlTimer) -> dict[str, Any]:
    """Per rerun: script seconds, gc.collect(2) seconds, SQL statements and seconds; medians and top SQL."""
    script, collect, statements, sql_s = [], [], [], []
    collects = post_script_gc()
    sql.by_statement.clear()
    for _ in range(runs):
        with sql.measuring():
            began = time.perf_counter()
            at.run()
            ran = time.perf_counter()
        if collects:
            gc.collect(2)
        collect.append(time.perf_counter() - ran)
        script.append(ran - began)
        statements.append(sql.count)
        sql_s.append(sql.seconds)
        if at.exception:
            raise RuntimeError([e.value for e in at.exception])
    top = sorted(sql.by_statement.items(), key=lambda kv: -kv[1][1])[:3]
    return {
        "script": median(script), "gc": median(collect),
        "total": median([a + b for a, b in zip(script, collect, strict=True)]),
        "statements": median(statements), "sql": median(sql_s),
        "top": [{"sql": k, "per_run": v[0] / runs, "ms_per_run": v[1] / runs * 1000} for k, v in top],
        "runs": [round(a + b, 4) for a, b in zip(script, collect, strict=True)],
    }


def one_size(jobs: int, runs: int, profile: bool) -> dict[str, Any]:
    """Seed ``jobs`` into a fresh data dir, then time Studio and History reruns (this process only)."""
    import logging

    from streamlit.testing.v1 import AppTest

    from core.history.store import Store
    from tests.seeding import bulk_seed
    from ui import studio_state as ss

    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(logging.ERROR)
    store = Store()
    began = time.perf_counter()
    bulk_seed(store, jobs)
    seeded = time.perf_counter() - began
    gc.collect()
    sql = SqlTimer()
    sql.install()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.text_area(key=ss.PROMPT).set_value("A lighthouse on a cliff at dawn, watercolour").run()
    out: dict[str, Any] = {"jobs": store.count_jobs(), "seeded": seeded}
    out["studio"] = timed_reruns(at, runs, sql)
    if profile:
        out["studio_profile"] = profiled(at)
    at.switch_page("app_pages/history.py").run()
    out["history"] = timed_reruns(at, runs, sql)
    if profile:
        out["history_profile"] = profiled(at)
    return out


class Sampler:
    """A small sampling profiler (what py-spy does, in-process): every ``step`` seconds, the stacks of every
    other thread (AppTest runs the script in its own thread, where cProfile does not see it).

    Per project function (file:line of its ``def``): the share of the script thread's samples with it
    anywhere on the stack (cumulative) and innermost among project frames (self, with the library code
    it called: Streamlit's, Pillow's, SQLAlchemy's).
    """

    def __init__(self, step: float = 0.001) -> None:
        import threading

        self.step = step
        self.samples = 0
        self.cumulative: dict[str, int] = defaultdict(int)
        self.own: dict[str, int] = defaultdict(int)
        self.lines: dict[str, int] = defaultdict(int)  # the innermost project line being run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import threading

        me, main = threading.get_ident(), threading.main_thread().ident
        while not self._stop.wait(self.step):
            for ident, frame in sys._current_frames().items():
                if ident in (me, main):
                    continue
                seen: list[str] = []
                line = ""
                f: Any = frame
                while f is not None:
                    path = f.f_code.co_filename
                    if path.startswith(str(ROOT)) and "/bench/" not in path and "/tests/" not in path:
                        where = f"{Path(path).relative_to(ROOT)}:{f.f_code.co_firstlineno} {f.f_code.co_name}"
                        line = line or f"{Path(path).relative_to(ROOT)}:{f.f_lineno}"
                        if where not in seen:
                            seen.append(where)
                    f = f.f_back
                if seen and seen[-1].startswith("app.py:"):  # the script thread: app.py at its root
                    self.samples += 1
                    self.lines[line] += 1
                    self.own[seen[0]] += 1
                    for where in seen:
                        self.cumulative[where] += 1

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def top(self, n: int = 12) -> list[str]:
        total = max(1, self.samples)
        rows = sorted(self.cumulative.items(), key=lambda kv: -kv[1])[:n]
        lines = sorted(self.lines.items(), key=lambda kv: -kv[1])[:6]
        return ([f"{c / total:4.0%} cumulative, {self.own.get(w, 0) / total:4.0%} self+libs  {w}" for w, c in rows]
                + [f"{c / total:4.0%} at the line  {w}" for w, c in lines])


def profiled(at: Any, runs: int = 20) -> list[str]:
    """Sampled stacks of the script thread over ``runs`` reruns: the project's costliest functions.

    The post-run gc.collect(2) is not in these samples (it runs on the main thread); its time is measured
    on its own beside them.
    """
    with Sampler() as sampler:
        for _ in range(runs):
            at.run()
    return [f"{sampler.samples} samples of the script thread"] + sampler.top()


def child(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="image-studio-bench-scale-"))
    (tmp / "data").mkdir()
    os.environ["IMAGE_STUDIO_DATA_DIR"] = str(tmp / "data")
    os.environ["IMAGE_STUDIO_EMULATOR_PORT"] = str(free_port())
    for name in ("IMAGE_STUDIO_DATABASE_URL", "IMAGE_STUDIO_CLOCK"):
        os.environ.pop(name, None)
    for name in [n for n in os.environ if n.endswith(("_API_KEY", "_BASE_URL"))]:
        os.environ.pop(name)
    try:
        result = one_size(args.one, args.runs, args.profile)
    finally:
        from core import services

        services.shutdown()
        services.stop_emulator()
        shutil.rmtree(tmp, ignore_errors=True)
    print("RESULT " + json.dumps(result))
    return 0


def run_size(jobs: int, runs: int, profile: bool) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.history_scale", "--one", str(jobs), "--runs", str(runs)]
    done = subprocess.run(command + (["--profile"] if profile else []), cwd=ROOT, capture_output=True, text=True,
                          check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if done.returncode or line is None:
        raise RuntimeError(f"the {jobs:,}-job run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return result


def page_rows(page: str, results: list[dict[str, Any]]) -> list[Versus]:
    small, big = results[0], results[-1]
    n_small, n_big = f"{small['jobs']:,}", f"{big['jobs']:,}"
    rows = []
    for r in results[1:]:
        judged = r is big
        rows.append(Versus(
            f"{page} rerun{GC_TAG}, {r['jobs']:,} vs {n_small} jobs", r[page]["total"], small[page]["total"], "ms",
            f"<= 1.3x at {n_small}" if judged else "",
            r[page]["total"] <= FLAT_GOAL * small[page]["total"] if judged else None,
            f"script {r[page]['script'] * 1000:.0f} + GC {r[page]['gc'] * 1000:.0f} ms",
        ))
    rows.append(Versus(f"{page} rerun, script only (AppTest), {n_big} vs {n_small}", big[page]["script"],
                       small[page]["script"], "ms"))
    rows.append(Versus(f"{page} SQL per rerun, {n_big} vs {n_small}", big[page]["sql"], small[page]["sql"], "ms",
                       note=f"{big[page]['statements']:.0f} statements"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,50000", help="jobs in the store (default 1000,10000,50000)")
    parser.add_argument("--runs", type=int, default=9, help="reruns per page and size (median)")
    parser.add_argument("--profile", action="store_true", help="sample the largest size's script thread")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 200 and 800 jobs, 2 reruns")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child process: one size
    args = parser.parse_args(argv)
    if args.one is not None:
        return child(args)
    if args.quick:
        args.sizes, args.runs = "200,800", 2
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    with LoadMeter() as meter:
        results = [run_size(n, args.runs, args.profile and n == sizes[-1]) for n in sizes]
    rows = page_rows("studio", results) + page_rows("history", results)
    notes = []
    for r in results:
        notes.append(f"{r['jobs']:,} jobs (seeded in {r['seeded']:.1f} s): " + "; ".join(
            f"{page} script {r[page]['script'] * 1000:.0f} + GC {r[page]['gc'] * 1000:.0f} ms, "
            f"{r[page]['statements']:.0f} SQL statements {r[page]['sql'] * 1000:.0f} ms"
            for page in ("studio", "history")))
    big = results[-1]
    for page in ("studio", "history"):
        for t in big[page]["top"]:
            notes.append(f"{page} at {big['jobs']:,}: {t['ms_per_run']:.1f} ms/rerun in {t['per_run']:.0f}x "
                         f"{t['sql']}")
        for line in big.get(f"{page}_profile", []):
            notes.append(f"profile {page} {line}")
    notes.append("rerun = AppTest's at.run() (script) + an explicit gc.collect(2) after it when the app's "
                 f"config has runner.postScriptGC (now: {post_script_gc()}; what Streamlit's server does after "
                 "every run; AppTest skips it); each size in a fresh process")
    return versus_report("history_scale", "Rerun time and SQL by history size (AppTest + explicit post-run GC)",
                         rows, meter.load, notes)


if __name__ == "__main__":
    raise SystemExit(main())

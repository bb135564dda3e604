"""What the benchmarks share: a lab (emulator + store + runner in a temp dir) and the result tables.

The first five benchmarks print one table each: the figure, its target, the
ratio figure/target (at most 1 passes) and PASS/FAIL, and exit 1 when a check
fails. Comparisons (the fixed 2-second loop, sequential calls) are printed
beside the figures as ratios measured in the same run: these machines are
noisy, so a figure from another run would not be comparable.

The benchmarks of what a person waits for (issue 17: done_to_screen,
interactive, sessions, history_scale) print :class:`Versus` rows instead: the
app's figure beside its baseline from the same run, their ratio, the goal and
whether it is met, with the machine's load while they ran (:class:`LoadMeter`).
With ``BENCH_RESULTS=<file>`` in the environment each row is also appended to
that file as one JSON line (``python -m bench.run_all`` collects them).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Check:
    """One figure against its target; lower is better for every figure here."""

    name: str
    figure: float
    target: float
    unit: str = ""
    note: str = ""

    @property
    def ratio(self) -> float:
        if not self.target:
            return 0.0 if self.figure <= 0 else float("inf")
        return self.figure / self.target

    @property
    def ok(self) -> bool:
        return self.figure <= self.target


def fmt(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value * 1000:.0f} ms"  # figures are kept in seconds, shown in ms
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "MB":
        return f"{value:.0f} MB"
    if unit == "req/s":
        return f"{value:.2f} req/s"
    if unit == "n":
        return f"{value:g}"
    return f"{value:g} {unit}".strip()


def report(title: str, checks: Sequence[Check], notes: Iterable[str] = ()) -> int:
    """Print the table (and notes); 0 when every check passes, else 1."""
    name_w = max([len("check"), *(len(c.name) for c in checks)])
    print(f"\n== {title} ==")
    print(f"{'check':<{name_w}}  {'figure':>14}  {'target':>14}  {'ratio':>6}  result")
    for c in checks:
        line = (
            f"{c.name:<{name_w}}  {fmt(c.figure, c.unit):>14}  {'<= ' + fmt(c.target, c.unit):>14}  "
            f"{c.ratio:>6.2f}  {'PASS' if c.ok else 'FAIL'}"
        )
        print(line + (f"  ({c.note})" if c.note else ""))
    for note in notes:
        print(f"  {note}")
    failed = [c.name for c in checks if not c.ok]
    print(f"-> {'PASS' if not failed else 'FAIL: ' + ', '.join(failed)}")
    sys.stdout.flush()
    out = os.environ.get("BENCH_RESULTS")
    if out:
        with open(out, "a") as fh:
            for c in checks:
                fh.write(json.dumps({"kind": "check", "title": title, "name": c.name, "figure": c.figure,
                                     "target": c.target, "unit": c.unit, "ok": c.ok, "note": c.note}) + "\n")
    return 0 if not failed else 1


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p95(values: Sequence[float]) -> float:
    """The 95th percentile (linear between the nearest ranks; the largest value below 20 samples is near it)."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return float(values[0])
    return statistics.quantiles(values, n=20, method="inclusive")[18]


# --------------------------------------------------------------------------- load


def nproc() -> int:
    """CPUs this process may run on (what ``nproc`` prints)."""
    return len(os.sched_getaffinity(0))


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


@dataclass(frozen=True)
class Load:
    """The machine's load around one measurement: it is shared, so every figure says what it ran beside."""

    nproc: int
    before: tuple[float, float, float]  # os.getloadavg() when it began
    after: tuple[float, float, float]  # and when it ended
    busy: float  # fraction of all CPUs' time spent busy in between (/proc/stat), any process
    seconds: float

    def text(self) -> str:
        return (f"{self.nproc} CPUs; load average (1 min) {self.before[0]:.2f} before, {self.after[0]:.2f} after; "
                f"CPUs {self.busy:.0%} busy over the {self.seconds:.0f} s it ran")

    def as_dict(self) -> dict[str, Any]:
        return {"nproc": self.nproc, "loadavg_before": list(self.before), "loadavg_after": list(self.after),
                "busy": self.busy, "seconds": self.seconds}


class LoadMeter:
    """``with LoadMeter() as meter: ...`` then ``meter.load``: the load before, after and in between."""

    def __enter__(self) -> LoadMeter:
        self._began = time.monotonic()
        self._before = os.getloadavg()
        self._ticks = _cpu_ticks()
        return self

    def __exit__(self, *exc: object) -> None:
        busy, total = _cpu_ticks()
        d_total = max(1, total - self._ticks[1])
        self.load = Load(nproc(), self._before, os.getloadavg(), (busy - self._ticks[0]) / d_total,
                         time.monotonic() - self._began)


# --------------------------------------------------------------------------- what a person waits for


@dataclass(frozen=True)
class Versus:
    """What a person waits for in the app beside the same thing on its baseline, measured in the same run.

    ``ratio`` is app / baseline (above 1: the app is slower). ``goal`` says issue 17's goal in words;
    ``met`` is whether this run meets it (None: a row printed for context, with no goal of its own).
    """

    name: str
    app: float
    baseline: float | None
    unit: str
    goal: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or not self.baseline or math.isnan(self.baseline):
            return None
        return self.app / self.baseline


def versus_report(bench: str, title: str, rows: Sequence[Versus], load: Load, notes: Iterable[str] = ()) -> int:
    """Print the rows (app, baseline, ratio, goal, met) and the load; 0 when every goal is met, else 1.

    With ``BENCH_RESULTS`` set, each row is appended there as one JSON line for ``bench.run_all``.
    """
    name_w = max([len("measurement"), *(len(r.name) for r in rows)])
    print(f"\n== {title} ==")
    print(f"{'measurement':<{name_w}}  {'app':>10}  {'baseline':>10}  {'ratio':>7}  goal")
    for r in rows:
        base = fmt(r.baseline, r.unit) if r.baseline is not None else "-"
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        verdict = "" if r.met is None else ("met" if r.met else "NOT MET")
        goal = f"{verdict}: {r.goal}" if r.goal else verdict
        print(f"{r.name:<{name_w}}  {fmt(r.app, r.unit):>10}  {base:>10}  {ratio:>7}  {goal}"
              + (f"  ({r.note})" if r.note else ""))
    print(f"  machine: {load.text()}")
    for note in notes:
        print(f"  {note}")
    sys.stdout.flush()
    out = os.environ.get("BENCH_RESULTS")
    if out:
        with open(out, "a") as fh:
            for r in rows:
                fh.write(json.dumps({"kind": "versus", "bench": bench, "name": r.name, "app": r.app,
                                     "baseline": r.baseline, "unit": r.unit, "ratio": r.ratio, "goal": r.goal,
                                     "met": r.met, "note": r.note, "load": load.as_dict()}) + "\n")
    return 0 if all(r.met is not False for r in rows) else 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(done: Callable[[], bool], timeout: float, step: float = 0.05, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)


class RemoteEmulator:
    """The emulator in its own process, spoken to over loopback HTTP like a provider.

    A real provider renders on its own machines; run in the benchmark's process,
    the emulator's request handling and image rendering would compete with the
    app for the interpreter and count as the app's time. ``prerender``: results
    are rendered while the job runs, so they exist when it completes, as at a
    real provider (``BENCH_LAZY_RENDER=1`` keeps the emulator's render-on-first-download).
    """

    def __init__(self, data_dir: Path, latency: float, prerender: bool = True) -> None:
        import httpx

        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = data_dir / "emulator.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emulator", "--port", str(self.port), "--latency", str(latency),
             "--data-dir", str(data_dir), *(["--prerender"] if prerender else [])],
            cwd=ROOT, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
        )
        self.http = httpx.Client(base_url=self.base_url, timeout=30)

        def up() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the emulator exited: {self.log.read_text()}")
            try:
                return self.http.get("/_admin/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, 30, step=0.1, what="the emulator")

    def url(self, provider: str) -> str:
        return f"{self.base_url}/{provider}"

    def upload(self, data: bytes, mime: str) -> str:
        answer = self.http.post("/_admin/uploads", content=data, headers={"Content-Type": mime})
        answer.raise_for_status()
        return str(answer.json()["url"])

    def stats(self) -> dict[str, Any]:
        answer = self.http.get("/_admin/stats")
        answer.raise_for_status()
        stats: dict[str, Any] = answer.json()
        return stats

    def requests(self) -> int:
        """Requests the emulator has logged (provider calls and file downloads; admin calls are not counted)."""
        return len(self.stats()["requests"])

    def set_latency(self, seconds: float) -> None:
        self.http.post("/_admin/latency", json={"seconds": seconds}).raise_for_status()

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


class Lab:
    """An emulator (own process, free loopback port), a fresh store and (optionally) a job runner.

    Everything lives in a temp dir. The runner's providers point at this
    emulator. ``max_in_flight`` None keeps the product's default, which is what
    the benchmarks measure unless they say otherwise.
    """

    def __init__(self, *, latency: float = 2.0, runner: bool = True, max_in_flight: Any = None,
                 wrap: Callable[[Any], Any] | None = None) -> None:
        from core.history.store import Store
        from core.jobs.runner import JobRunner
        from providers.catalogue import load_catalogue

        self.dir = Path(tempfile.mkdtemp(prefix="image-studio-bench-"))
        self.emu = RemoteEmulator(self.dir / "emulator-data", latency,
                                  prerender=not os.environ.get("BENCH_LAZY_RENDER"))
        self.store = Store(url=f"sqlite:///{self.dir / 'core.db'}", data_dir=self.dir / "app-data")
        self.catalogue = load_catalogue()
        self._wrap = wrap
        self.runner = None
        if runner:
            self.runner = JobRunner(
                self.store, self.provider_factory, pricing=self.catalogue, max_in_flight=max_in_flight
            ).start()

    def provider_factory(self, name: str, endpoint: str = "emulator", api_key: str | None = None) -> Any:
        from providers import registry

        provider = registry.create(name, api_key="bench-key", base_url=self.emu.url(name), uploader=self.emu.upload)
        return self._wrap(provider) if self._wrap else provider

    def wait_done(self, job_ids: Sequence[str], timeout: float) -> list[Any]:
        """The jobs' views once every one has finished (succeeded, failed...)."""
        views: list[Any] = []

        def done() -> bool:
            nonlocal views
            views = self.store.get_jobs(list(job_ids))
            return len(views) == len(job_ids) and all(v.done for v in views)

        wait_until(done, timeout, step=0.05, what=f"{len(job_ids)} jobs")
        return views

    def close(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        self.emu.stop()
        from core import db

        db.dispose_engines(self.store.url)
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def process_memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak so far) of process ``pid``, in MB (Linux /proc)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out

"""Benchmark 8: a room. 20 sessions at once, each a batch of 4 on core.today, against one session alone.

The real app (``streamlit run app.py``, its built-in emulator, 3-s jobs) and one
headless Chromium with a browser context per session (each its own Streamlit
session, as 20 people's browsers are). core.today makes one image per call, so
a batch of 4 is 4 jobs. A session's wait runs from its click on Generate to the
animation frame after its fourth result image has loaded (``bench/browser.py``'s
observer, in page time turned into ours): what the person sees.

First, one session alone (after a warm-up batch, so the runner has learned
core.today's time): its wait is the baseline. Then 19 more sessions open, every
one types its own prompt and sets 4 images, and all 20 press Generate one after
another as fast as the browser clicks. The run is bounded (``--deadline``); a
session that has not seen its 4 images by then counts as not served.

Also: jobs lost (any of the 80 not ``succeeded`` in the app's store at the end),
the app process's VmRSS per extra session (after the room's batches, against after
the lone session's) and its peak (VmHWM over the whole run), and the CPU the
browser took from the same two cores.

    python -m bench.sessions [--sessions 20] [--batch 4] [--latency 3] [--deadline 150] [--quick]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.browser import Server, browser_cpu_seconds, chromium, idle, images_per_prompt, marks, new_page, page_offset
from bench.common import LoadMeter, Versus, median, nproc, versus_report

WAIT_GOAL, RSS_PER_SESSION_GOAL, PEAK_GOAL = 1.5, 5.0, 400.0


def prompt_for(k: int) -> str:
    return f"Session {k} of the room benchmark: a paper boat on a pond, ink and wash"


def open_session(browser: Any, url: str, prompt: str, batch: int) -> Any:
    """A new browser context on the Studio, its prompt typed and ``batch`` images set, Generate ready."""
    page = new_page(browser)
    page.goto(url)
    page.get_by_role("heading", name="Studio").wait_for(timeout=60_000)
    images_per_prompt(page, batch)
    idle(page)
    set_prompt(page, prompt, batch)
    return page


def set_prompt(page: Any, prompt: str, batch: int) -> None:
    """A new prompt for the next batch (the emulator draws the same picture for the same prompt)."""
    box = page.locator('textarea[aria-label="Prompt"]')
    box.fill(prompt)
    box.press("Control+Enter")
    idle(page)
    generate_button(page, batch).wait_for(timeout=30_000)


def generate_button(page: Any, batch: int) -> Any:
    return page.get_by_role("button", name=re.compile(rf"^Generate {batch} images"))


def press(page: Any, batch: int, prompt: str) -> float:
    page.evaluate("([n, text]) => __bench.arm(n, text)", [batch, prompt])
    clicked = time.time()
    generate_button(page, batch).click()
    return clicked


def click_again_unsent(pages: list[Any], batch: int, wait_s: float = 10) -> int:
    """Click Generate again on pages that show no card of their batch ``wait_s`` after the click, as a
    person would (twice at most); returns how many clicks were repeated (waits count from the first)."""
    repeated = 0
    for _ in range(2):
        deadline = time.monotonic() + wait_s
        unsent = pages
        while unsent and time.monotonic() < deadline:
            time.sleep(0.5)
            unsent = [p for p in unsent if not p.evaluate("__bench.sent() || __bench.dom !== null")]
        for page in unsent:
            generate_button(page, batch).click()
        repeated += len(unsent)
        if not unsent:
            break
    return repeated


def seen_at(page: Any) -> float | None:
    """When the page had all its new images on screen (epoch seconds), None if not yet."""
    painted = page.evaluate("__bench.painted")
    if painted is None:
        return None
    return page_offset(page, rounds=3).to_epoch(painted)


def alone(page: Any, batch: int, timeout_s: float, r: int) -> float:
    prompt = f"Alone {r}: a paper boat on a pond, ink and wash"
    set_prompt(page, prompt, batch)
    clicked = press(page, batch, prompt)
    page.wait_for_function("__bench.painted !== null", timeout=timeout_s * 1000)
    wait = page_offset(page).to_epoch(marks(page)["painted"]) - clicked
    idle(page)
    return wait


class MemorySampler:
    """Samples the server's VmRSS every ``step`` seconds in a thread (VmHWM gives the true peak)."""

    def __init__(self, server: Server, step: float = 0.5) -> None:
        self.server, self.step = server, step
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.step):
            self.samples.append(self.server.memory_mb()["VmRSS"])

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@dataclass
class Room:
    alone: list[float]
    waits: list[float | None]  # per session; None: not served by the deadline
    lost: int
    jobs: int
    rss: dict[str, float]
    peak: float
    browser_cpu: float
    app_cpu: float
    seconds: float
    clicks_span: float
    repeated: int  # clicks on Generate that sent nothing and were made again


def lost_jobs(data_dir: Path, sessions: int) -> tuple[int, int]:
    """(jobs of the room's sessions not succeeded, jobs of the room's sessions) in the app's store."""
    from core import db
    from core.history.store import Store

    store = Store(url=f"sqlite:///{data_dir / 'core.db'}", data_dir=data_dir)
    try:
        prompts = {prompt_for(k) for k in range(sessions)}
        jobs = [j for j in store.list_jobs(limit=100_000) if j.prompt in prompts]
        return sum(j.status != "succeeded" for j in jobs), len(jobs)
    finally:
        db.dispose_engines(store.url)


def wait_room(pages: list[Any], clicks: list[float], deadline: float) -> list[float | None]:
    waits: list[float | None] = [None] * len(pages)
    while time.monotonic() < deadline and any(w is None for w in waits):
        for k, page in enumerate(pages):
            if waits[k] is None:
                at = seen_at(page)
                if at is not None:
                    waits[k] = at - clicks[k]
        time.sleep(0.25)
    return waits


def run(browser: Any, server: Server, args: argparse.Namespace) -> Room:
    timeout = args.latency * 10 + 60
    first = open_session(browser, server.url, "warm-up", args.batch)
    alone(first, args.batch, timeout, 0)  # warm-up: history, so the runner knows core.today's time
    lone = [alone(first, args.batch, timeout, r) for r in range(1, args.alone + 1)]
    rss = {"alone": server.memory_mb()["VmRSS"]}
    set_prompt(first, prompt_for(0), args.batch)
    pages = [first] + [open_session(browser, server.url, prompt_for(k), args.batch) for k in range(1, args.sessions)]
    rss["open"] = server.memory_mb()["VmRSS"]
    cpu0, app0, began = browser_cpu_seconds([server.pid]), server.cpu_seconds(), time.monotonic()
    with MemorySampler(server) as sampler:
        clicks = [press(page, args.batch, prompt_for(k)) for k, page in enumerate(pages)]
        deadline = time.monotonic() + args.deadline
        repeated = click_again_unsent(pages, args.batch)
        waits = wait_room(pages, clicks, deadline)
        for page in pages:  # the panels' last full reruns, before memory is read
            idle(page, timeout_s=30)
    rss["room"] = server.memory_mb()["VmRSS"]
    lost, jobs = lost_jobs(server.data_dir, args.sessions)
    return Room(lone, waits, lost, jobs, rss, max([server.memory_mb()["VmHWM"], *sampler.samples]),
                browser_cpu_seconds([server.pid]) - cpu0, server.cpu_seconds() - app0, time.monotonic() - began,
                clicks[-1] - clicks[0], repeated)


def rows_for(room: Room, args: argparse.Namespace) -> list[Versus]:
    one = median(room.alone)
    served = [w for w in room.waits if w is not None]
    unserved = len(room.waits) - len(served)
    # A session not served by the deadline waited at least that long.
    waits = served + [args.deadline] * unserved
    per_session = (room.rss["room"] - room.rss["alone"]) / max(1, args.sessions - 1)
    tag = f"{args.sessions} sessions x {args.batch}"
    return [
        Versus(f"{tag}: median session's wait", median(waits), one, "s", "<= 1.5x one session alone",
               median(waits) <= WAIT_GOAL * one, f"{unserved} not served in {args.deadline:g} s" if unserved else ""),
        Versus(f"{tag}: slowest session's wait", max(waits), one, "s", "every session <= 1.5x one alone",
               max(waits) <= WAIT_GOAL * one),
        Versus(f"{tag}: jobs lost", room.lost + (args.sessions * args.batch - room.jobs), 0, "n", "0",
               room.lost == 0 and room.jobs == args.sessions * args.batch, f"{room.jobs} jobs in the store"),
        Versus(f"{tag}: app RSS per extra session", per_session, None, "MB", "<= 5 MB",
               per_session <= RSS_PER_SESSION_GOAL,
               f"{room.rss['alone']:.0f} MB after one session's batch, {room.rss['room']:.0f} MB after all"),
        Versus(f"{tag}: app peak RSS", room.peak, None, "MB", "< 400 MB", room.peak < PEAK_GOAL),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--batch", type=int, default=4, help="images per session (core.today: one job each)")
    parser.add_argument("--latency", type=float, default=3.0, help="the emulator's job time (default 3 s)")
    parser.add_argument("--alone", type=int, default=2, help="batches of the lone session (median)")
    parser.add_argument("--deadline", type=float, default=150, help="seconds the room may take (default 150)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 sessions x 2, 1-s jobs")
    args = parser.parse_args(argv)
    if args.quick:
        args.sessions, args.batch, args.latency, args.alone, args.deadline = 2, 2, 1.0, 1, 60
    tmp = Path(tempfile.mkdtemp(prefix="image-studio-bench-sessions-"))
    try:
        (tmp / "app").mkdir()
        (tmp / "app" / "settings.json").write_text(json.dumps({"default_provider": "coretoday"}))
        with LoadMeter() as meter, chromium() as browser, \
                Server("app.py", tmp / "app", latency=args.latency) as server:
            room = run(browser, server, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    notes = [
        f"one session alone: {', '.join(f'{w:.2f}' for w in room.alone)} s; the room's sessions: "
        + ", ".join("-" if w is None else f"{w:.1f}" for w in room.waits) + " s (in click order)",
        f"the {args.sessions} clicks took {room.clicks_span:.1f} s ({room.repeated} sent nothing and were made "
        f"again 10-20 s later; the wait counts from the first); app RSS {room.rss['open']:.0f} MB with every "
        f"session open and idle",
        f"CPU while the room ran ({room.seconds:.0f} s): app process {room.app_cpu:.1f} s, browser "
        f"{room.browser_cpu:.1f} s, of {room.seconds * nproc():.0f} CPU-seconds",
        f"core.today, {args.latency:g}-s jobs on the app's built-in emulator (inside the app process); "
        "the product's default in-flight limits",
    ]
    return versus_report("sessions", f"{args.sessions} sessions at once against one alone (headless Chromium)",
                         rows_for(room, args), meter.load, notes)


if __name__ == "__main__":
    raise SystemExit(main())

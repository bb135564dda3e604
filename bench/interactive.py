"""Benchmark 7: first paint -> prompt box enabled, and a quality change -> the cost on screen.

Both in headless Chromium, each beside a bare Streamlit page served the same way
(``streamlit run`` with the same flags and config), alternated load by load and
click by click in the same run:

- **First paint -> prompt box enabled.** A fresh browser context (cold cache, new
  session) opens the page; in page time, from the browser's ``first-paint``
  entry to the first moment ``textarea[aria-label="Prompt"]`` is in the DOM,
  enabled and not stale. The app's Studio (with ``--history`` finished jobs
  seeded, 1,000 by default: a person who has used it) against
  ``bench/bare/hello.py`` (``st.write('hello')`` and one text area).
- **Quality change -> cost on screen.** On the open page, from the pointerdown
  on another quality to the first moment the "Estimated total" metric shows a
  different value. The Studio (a prompt typed) against ``bench/bare/quality.py``
  (a segmented control and one metric).

    python -m bench.interactive [--loads 7] [--changes 10] [--history 1000] [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.browser import Server, chromium, idle, marks, new_page
from bench.common import LoadMeter, Versus, median, versus_report

PAINT_GOAL, QUALITY_GOAL = 1.5, 2.0  # issue 17: at most 1.5x the bare page, 2x the bare control


def seed(data_dir: Path, jobs: int) -> None:
    if jobs <= 0:
        return
    from core import db
    from core.history.store import Store
    from tests.seeding import bulk_seed

    store = Store(url=f"sqlite:///{data_dir / 'core.db'}", data_dir=data_dir)
    bulk_seed(store, jobs)
    db.dispose_engines(store.url)


def first_paint_to_enabled(browser: Any, url: str) -> tuple[float, float]:
    """(first paint -> prompt enabled, navigation start -> prompt enabled), seconds, in a fresh context."""
    page = new_page(browser)
    try:
        page.goto(url)
        page.wait_for_function("__bench.enabledAt !== null", timeout=60_000)
        m = marks(page)
        idle(page)  # let the run finish before the context goes, so the server is quiet for the next load
    finally:
        page.context.close()
    return (m["enabledAt"] - m["firstPaint"]) / 1000, (m["enabledAt"] - m["navStart"]) / 1000


def quality_change(page: Any, quality: str) -> float:
    """Seconds from the pointerdown on ``quality`` to the "Estimated total" metric showing a new value."""
    before = page.evaluate("__bench.watchMetric('Estimated total')")
    if before is None:
        raise RuntimeError("no 'Estimated total' metric on the page")
    page.get_by_role("radiogroup", name="Quality").get_by_role("radio", name=quality, exact=True).click()
    page.wait_for_function("__bench.textAt !== null", timeout=30_000)
    m = marks(page)
    idle(page)
    return float(m["textAt"] - m["clickedAt"]) / 1000


def open_page(browser: Any, url: str, prompt: bool) -> Any:
    page = new_page(browser)
    page.goto(url)
    page.locator('[data-testid="stMetric"]').filter(has_text="Estimated total").wait_for(timeout=60_000)
    if prompt:
        box = page.locator('textarea[aria-label="Prompt"]')
        box.fill("A lighthouse on a cliff at dawn, watercolour")
        box.press("Control+Enter")
    idle(page)
    return page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loads", type=int, default=7, help="page loads per side (default 7)")
    parser.add_argument("--changes", type=int, default=10, help="quality changes per side (default 10)")
    parser.add_argument("--history", type=int, default=1000, help="finished jobs seeded into the app (default 1000)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 loads, 2 changes, 50 jobs")
    args = parser.parse_args(argv)
    if args.quick:
        args.loads, args.changes, args.history = 2, 2, 50
    tmp = Path(tempfile.mkdtemp(prefix="image-studio-bench-interactive-"))
    app_paint: list[tuple[float, float]] = []
    bare_paint: list[tuple[float, float]] = []
    app_q: list[float] = []
    bare_q: list[float] = []
    try:
        (tmp / "app").mkdir()
        seed(tmp / "app", args.history)
        with LoadMeter() as meter, chromium() as browser, \
                Server("app.py", tmp / "app") as app, Server("bench/bare/hello.py", tmp / "hello") as hello:
            first_paint_to_enabled(browser, app.url)  # each server's first session imports its modules
            first_paint_to_enabled(browser, hello.url)
            for _ in range(args.loads):
                app_paint.append(first_paint_to_enabled(browser, app.url))
                bare_paint.append(first_paint_to_enabled(browser, hello.url))
            hello.stop()
            with Server("bench/bare/quality.py", tmp / "quality") as bare:
                app_page, bare_page = open_page(browser, app.url, True), open_page(browser, bare.url, False)
                for k in range(args.changes + 1):
                    quality = ("High", "Low")[k % 2]
                    a, b = quality_change(app_page, quality), quality_change(bare_page, quality)
                    if k:  # the first change of each page warms its widgets' code paths
                        app_q.append(a)
                        bare_q.append(b)
                    time.sleep(0.2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    fp_app, fp_bare = median([x[0] for x in app_paint]), median([x[0] for x in bare_paint])
    q_app, q_bare = median(app_q), median(bare_q)
    rows = [
        Versus("first paint -> prompt box enabled: median", fp_app, fp_bare, "s", "<= 1.5x the bare page",
               fp_app <= PAINT_GOAL * fp_bare, f"{len(app_paint)} + {len(bare_paint)} loads"),
        Versus("navigation -> prompt box enabled: median", median([x[1] for x in app_paint]),
               median([x[1] for x in bare_paint]), "s"),
        Versus("quality change -> cost on screen: median", q_app, q_bare, "ms", "<= 2x the bare control",
               q_app <= QUALITY_GOAL * q_bare, f"{len(app_q)} + {len(bare_q)} changes"),
        Versus("quality change -> cost on screen: max", max(app_q, default=float("nan")),
               max(bare_q, default=float("nan")), "ms"),
    ]
    notes = [
        f"the app's Studio with {args.history:,} finished jobs in its history; the bare pages: "
        "bench/bare/hello.py (st.write + a text area) and bench/bare/quality.py (a segmented control + a metric)",
        "first paint: " + ", ".join(f"{a:.2f}/{b:.2f}" for (a, _), (b, _) in zip(app_paint, bare_paint, strict=True))
        + " s (app/bare, in order)",
        "quality change: " + ", ".join(f"{a * 1000:.0f}/{b * 1000:.0f}" for a, b in zip(app_q, bare_q, strict=True))
        + " ms (app/bare, in order)",
    ]
    return versus_report("interactive", "First paint and a quality change (headless Chromium)", rows, meter.load,
                         notes)


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark 3: the Studio and History pages redraw in a blink with 10,000 jobs in the store.

Through ``streamlit.testing.v1.AppTest`` on ``app.py`` (navigation, sidebar and
page, as a browser session runs them) with a store of 10,000 finished jobs
(``tests.seeding.bulk_seed``): the script time of a rerun (``at.run()``), median
over several, for Studio (a prompt typed) and History (the gallery's first page).
Targets: at most 150 ms and 300 ms. Then a change of quality on Studio: its
rerun must redraw the cost with no network call at all (every ``httpx`` request
made in this process and every request the emulator logged are counted). Last, the
same quality change with a 12-MB photo in the tray (a phone's, random pixels so PNG
cannot shrink it), against the quality changes before it in the same run: at most
1.5x (issue 17: the tray copied, checked and hashed the whole photo on every rerun).

    python -m bench.page_redraw [--jobs 10000] [--runs 9] [--photo-mb 12]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from bench.common import ROOT, Check, free_port, median, report

STUDIO_TARGET, HISTORY_TARGET = 0.150, 0.300
PHOTO_TARGET = 1.5  # a quality change with a big photo in the tray, over the same change with none


def photo_png(megabytes: float) -> bytes:
    """A PNG of about ``megabytes`` of random pixels (a photo's bytes do not compress either)."""
    import io

    from PIL import Image

    side = max(64, int((megabytes * 2**20 / 3) ** 0.5))
    buf = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


class NetworkCounter:
    """Counts every request sent through httpx in this process while active."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @contextmanager
    def counting(self):
        import httpx

        sync_send, async_send = httpx.Client.send, httpx.AsyncClient.send
        calls = self.calls

        def send(client, request, *args, **kwargs):
            calls.append(str(request.url))
            return sync_send(client, request, *args, **kwargs)

        async def asend(client, request, *args, **kwargs):
            calls.append(str(request.url))
            return await async_send(client, request, *args, **kwargs)

        httpx.Client.send, httpx.AsyncClient.send = send, asend
        try:
            yield self
        finally:
            httpx.Client.send, httpx.AsyncClient.send = sync_send, async_send


def emulator_requests() -> int:
    """Requests the app's own (in-process) emulator has logged, 0 when it never started."""
    from core import services

    handle = services.running_emulator()  # never starts one: only whether this process did
    if handle is None or handle.emulator is None:
        return 0
    return len(handle.emulator.stats()["requests"])


def timed_runs(at, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        began = time.perf_counter()
        at.run()
        out.append(time.perf_counter() - began)
        if at.exception:
            raise RuntimeError([e.value for e in at.exception])
    return out


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=9, help="reruns per figure (median)")
    parser.add_argument("--photo-mb", type=float, default=12.0, help="size of the uploaded photo (default 12 MB)")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="image-studio-bench-pages-"))
    (tmp / "data").mkdir()
    # Before any app module reads them: this run's own history, emulator port and no live keys.
    os.environ["IMAGE_STUDIO_DATA_DIR"] = str(tmp / "data")
    os.environ["IMAGE_STUDIO_EMULATOR_PORT"] = str(free_port())
    os.environ.pop("IMAGE_STUDIO_DATABASE_URL", None)
    for name in [n for n in os.environ if n.endswith(("_API_KEY", "_BASE_URL"))]:
        os.environ.pop(name)
    try:
        return run(args)
    finally:
        from core import services as app_services
        from core import services as emulator_service

        app_services.shutdown()
        emulator_service.stop_emulator()
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace) -> int:
    import logging

    from streamlit.testing.v1 import AppTest

    # Seeding calls cached helpers outside a script run: Streamlit says so once per call; noise here.
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(logging.ERROR)

    from core.history.store import Store
    from tests.seeding import bulk_seed
    from ui import studio_state as ss

    store = Store()
    began = time.perf_counter()
    bulk_seed(store, args.jobs)
    seeded = time.perf_counter() - began
    total = store.count_jobs()

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()  # the first run imports and warms caches; a person's later clicks are reruns
    at.text_area(key=ss.PROMPT).set_value("A lighthouse on a cliff at dawn, watercolour").run()
    studio = timed_runs(at, args.runs)

    # Quality back and forth: each rerun must redraw the cost from the catalogue, never ask a provider.
    counter = NetworkCounter()
    before_emu = emulator_requests()
    changes, redrawn = [], 0
    with counter.counting():
        for quality in ["high", "low"] * ((args.runs + 1) // 2):
            shown = metrics(at)
            began = time.perf_counter()
            at.segmented_control(key=ss.QUALITY).set_value(quality).run()
            changes.append(time.perf_counter() - began)
            redrawn += metrics(at) != shown
    calls = len(counter.calls) + emulator_requests() - before_emu

    # The same quality changes with a big photo in the tray (what a person editing a phone picture does).
    photo = photo_png(args.photo_mb)
    at.file_uploader(key=ss.UPLOAD).set_value(("photo.png", photo, "image/png")).run()
    if at.exception or at.error:
        raise RuntimeError(f"the photo was not taken: {[e.value for e in (*at.exception, *at.error)]}")
    with_photo = []
    for quality in ["high", "low"] * ((args.runs + 1) // 2):
        began = time.perf_counter()
        at.segmented_control(key=ss.QUALITY).set_value(quality).run()
        with_photo.append(time.perf_counter() - began)
    at.file_uploader(key=ss.UPLOAD).set_value([]).run()

    at.switch_page("app_pages/history.py").run()
    titles = [t.value for t in at.title]
    history = timed_runs(at, args.runs)

    checks = [
        Check("Studio rerun, median", median(studio), STUDIO_TARGET, "ms"),
        Check("History rerun, median", median(history), HISTORY_TARGET, "ms", f"page: {', '.join(titles)}"),
        Check("quality change: network calls", calls, 0, "n", f"{len(changes)} changes"),
        Check("quality change: reruns not redrawing the cost", len(changes) - redrawn, 0, "n"),
        Check(f"quality change with a {len(photo) / 2**20:.0f}-MB photo in the tray, vs none",
              median(with_photo) / median(changes), PHOTO_TARGET, "x",
              f"{median(with_photo) * 1000:.0f} vs {median(changes) * 1000:.0f} ms"),
    ]
    notes = [
        f"store: {total:,} jobs (seeded in {seeded:.1f} s); {args.runs} reruns each",
        f"quality change rerun, median {median(changes) * 1000:.0f} ms "
        f"({median(changes) / median(studio):.2f}x a plain Studio rerun)",
        f"Studio {' '.join(f'{x * 1000:.0f}' for x in studio)} ms; "
        f"History {' '.join(f'{x * 1000:.0f}' for x in history)} ms",
    ]
    return report(f"Page redraw with {total:,} jobs (AppTest script time)", checks, notes)


if __name__ == "__main__":
    raise SystemExit(main())

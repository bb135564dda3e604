"""Issue 17 in a real browser: a finished job's card appears by a fragment rerun, not a full-page one,
its image comes from the content-hash route with immutable caching, the panel then stops asking,
and the sidebar's spend catches up without a full rerun.

Full runs are told from fragment runs by what the server sends: every script run starts with a
``new_session`` message, whose run identity (``metadata.run.fragment_ids``) names no fragment only
for a full run.
"""

from __future__ import annotations

import re
import time

import httpx
import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from ui import jobs as ui_jobs

pytestmark = pytest.mark.browser

HASH_URL = re.compile(r"/studio-media/(image|thumb)/[0-9a-f]{64}$")


class RunLog:
    """Script runs the server started for this page, as (time.monotonic(), full run?)."""

    def __init__(self, page) -> None:
        self.runs: list[tuple[float, bool]] = []
        self.timers: list[tuple[float, float, str]] = []  # auto_rerun messages: (when, interval, fragment id)
        page.on("websocket", self._socket)

    def _socket(self, ws) -> None:
        ws.on("framereceived", self._frame)

    def _frame(self, payload) -> None:
        if isinstance(payload, str):
            return
        try:
            msg = ForwardMsg.FromString(payload)
        except Exception:  # noqa: BLE001 - a frame that is not one ForwardMsg is not a run start
            return
        if msg.WhichOneof("type") == "new_session":
            self.runs.append((time.monotonic(), not msg.metadata.run.fragment_ids))
        elif msg.WhichOneof("type") == "auto_rerun":
            self.timers.append((time.monotonic(), msg.auto_rerun.interval, msg.auto_rerun.fragment_id))

    def full_since(self, t: float) -> int:
        return sum(full for at, full in self.runs if at >= t)

    def any_since(self, t: float) -> int:
        return sum(1 for at, _ in self.runs if at >= t)



def _spend(page) -> str:
    metric = page.locator('[data-testid="stSidebar"] [data-testid="stMetric"]').filter(has_text="spend today")
    return metric.locator('[data-testid="stMetricValue"]').inner_text(timeout=15_000)


def test_a_finished_job_is_drawn_by_its_panel_not_a_full_rerun(app_server, page):
    runs = RunLog(page)
    page.goto(app_server.url)
    box = page.locator('textarea[aria-label="Prompt"]')
    box.wait_for(timeout=60_000)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=30_000)
    before = _spend(page)
    box.fill("a lighthouse at dusk, watercolour")
    box.press("Control+Enter")
    generate = page.get_by_role("button", name=re.compile(r"^Generate 1 image"))
    generate.wait_for(timeout=15_000)
    page.wait_for_timeout(500)
    clicked = time.monotonic()
    generate.click()
    page.get_by_text("in progress").first.wait_for(timeout=30_000)
    # The click reruns the form (a fragment: it submits), then the page once, which draws the job's card.
    # Every run after that page run's start must be a fragment's.
    click_full_runs = [at for at, full in runs.runs if full and at >= clicked]
    assert click_full_runs, runs.runs
    clicked_run_over = max(click_full_runs) + 1e-3
    # The result card (a streamed OpenAI job shows previews first: drawn from memory, never stored).
    page.get_by_text("1 image ready").first.wait_for(timeout=60_000)
    image = page.locator('[data-testid="stImage"] img:visible').first
    image.wait_for(timeout=60_000)
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle(),
                           timeout=30_000)
    shown_at = time.monotonic()

    # The image is addressed by its content hash on our route, and the route says "keep it forever".
    src = image.get_attribute("src") or ""
    assert HASH_URL.search(src), src
    answer = httpx.get(src, timeout=10)
    assert answer.status_code == 200 and answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert answer.headers["content-type"].startswith("image/")

    # The job's worker woke the panel the moment it stored the result (refresh.wake_on_finish): a short timer
    # for the panel's own fragment (the one set to the plain pace while the job ran) came before the image.
    # Without the wake the panel only ever gets its plain or near-the-end pace (1 s, 0.15 s).
    panel = {f for _, interval, f in runs.timers if interval == ui_jobs.REFRESH_SECONDS}
    woken = [at for at, interval, f in runs.timers if f in panel and interval < ui_jobs.NEAR_END_SECONDS]
    assert woken and min(woken) < shown_at, runs.timers

    page.wait_for_timeout(3_000)
    # No full run after the click's own: the card came by the panel's fragment rerun.
    assert runs.any_since(clicked_run_over) >= 1, runs.runs
    assert runs.full_since(clicked_run_over) == 0, runs.runs
    # Once the job is done the panel stops its timer: nothing more runs while nobody touches the page
    # (the first second after the image allows for the panel's last look and the spend's one wake).
    assert runs.any_since(shown_at + 1.0) == 0, runs.runs
    # ...and the sidebar's spend has caught up all the same.
    assert _spend(page) != before

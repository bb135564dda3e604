"""Issue 13 in a real browser: Markdown in visitors' text, and uploads that cannot be sent (cases 6 and 8).

Headless Chromium (Debian's) on the running app. Each test has listeners of its own on
127.0.0.1 and counts the requests they receive:

- a "pixel" server that a prompt like ``A fox ![p](http://127.0.0.1:PORT/pixel.png)``
  names: drawn as Markdown, every visitor's browser would fetch it. It must get none,
  on History, a job's detail and Past experiments; a fetch the test makes itself at the
  end shows the listener does count.
- a fake OpenAI the app is configured to use (``OPENAI_BASE_URL``): an unusable upload
  must leave Generate disabled, so the provider receives nothing (nothing is paid for);
  once the file is removed, one click sends exactly one request, so the count is real.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from core.history.store import Store
from core.history.views import JobError
from tests.e2e.conftest import AppServer
from tests.security.fakes import FakeProvider, FakeServer, hostile_job, png_of_size

pytestmark = pytest.mark.browser


@pytest.fixture
def pixel():
    server = FakeServer(route=lambda seen: (200, {"Content-Type": "image/gif"}, b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"))
    yield server
    server.close()


def _start(tmp_path: Path, seed=None, env=None) -> AppServer:
    server = AppServer(tmp_path / "app-data", env=env)
    server.data_dir.mkdir()
    if seed is not None:
        seed(Store(data_dir=server.data_dir))
    return server.start()


def _idle(page) -> None:
    page.wait_for_timeout(400)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=30_000)


def _listener_counts(page, server: FakeServer) -> None:
    """The control: a request the test makes from the page does reach the listener."""
    before = server.hits
    page.evaluate(f"fetch('{server.url}/control', {{mode: 'no-cors'}}).catch(() => 0)")
    page.wait_for_timeout(1000)
    assert server.hits == before + 1 and server.seen[-1].path == "/control"


def test_markdown_in_prompts_and_names_makes_no_browser_request(tmp_path, page, pixel, artifacts_dir):
    hostile = (f"A fox ![p]({pixel.url}/pixel.png) <img src='{pixel.url}/img.png'> "
               f"[click]({pixel.url}/link) :red[boo]")
    made: dict[str, str] = {}

    def seed(store: Store) -> None:
        exp_id = store.create_experiment(hostile)
        made["ok"] = hostile_job(store, hostile, experiment_id=exp_id)
        made["failed"] = hostile_job(store, hostile, status="failed",
                                     error=JobError("job_failed", f"The provider said: {hostile}", detail=hostile))

    server = _start(tmp_path, seed)
    try:
        page.goto(f"{server.url}/history")
        page.get_by_text("2 results", exact=False).first.wait_for(timeout=30_000)
        page.get_by_role("button", name="Open").first.wait_for(timeout=15_000)
        _settled(page, pixel, "the History gallery")
        page.screenshot(path=str(artifacts_dir / "hostile-history.png"), full_page=True)
        for job_id in (made["ok"], made["failed"]):
            page.goto(f"{server.url}/history?job={job_id}")
            page.get_by_role("button", name="Back to history").wait_for(timeout=30_000)
            _settled(page, pixel, f"the detail of job {job_id}")
        page.goto(f"{server.url}/compare")
        page.get_by_role("heading", name="Compare").wait_for(timeout=30_000)
        page.get_by_text("Past experiments", exact=True).click()
        page.get_by_role("button", name="Open").first.wait_for(timeout=15_000)
        _settled(page, pixel, "Past experiments")
        page.get_by_text("pixel.png", exact=False).first.wait_for(timeout=5_000)  # the name is there, as text
        _listener_counts(page, pixel)
    finally:
        server.stop()


def _settled(page, pixel: FakeServer, where: str) -> None:
    _idle(page)
    page.wait_for_timeout(1500)  # images load asynchronously: give any that were drawn time to ask
    assert pixel.hits == 0, f"{where} made the browser fetch {[s.path for s in pixel.seen]}"
    assert page.get_by_text("pixel.png", exact=False).count() > 0, f"{where} does not show the text"


def test_an_upload_that_cannot_be_sent_blocks_generate_and_nothing_reaches_the_provider(tmp_path, page,
                                                                                         artifacts_dir):
    fake = FakeProvider()
    env = {"OPENAI_API_KEY": "sk-proj-BROWSER0123456789abcdef", "OPENAI_BASE_URL": f"{fake.url}/openai/v1"}
    server = _start(tmp_path, env=env)
    try:
        page.goto(server.url)
        page.get_by_role("heading", name="Studio").wait_for(timeout=30_000)
        prompt = page.get_by_label("Prompt", exact=True)
        prompt.fill("Make the sky stormy")
        prompt.press("Control+Enter")
        generate = page.get_by_role("button", name=re.compile("^Generate"))
        generate.wait_for(timeout=15_000)
        # The rerun that the shortcut starts may begin after a short idle wait on a loaded machine:
        # wait for the button itself (the empty-prompt render had it disabled).
        expect(generate).to_be_enabled(timeout=30_000)
        uploader = page.locator('[data-testid="stFileUploaderDropzoneInput"]').first
        for name, data, said in (
            ("notes.png", b"just some notes, not a picture\n" * 20, "not a picture this app can read"),
            ("bomb.png", png_of_size(30000, 30000), "30000×30000, 900 MP; the limit is 50 MP"),
        ):
            uploader.set_input_files(files=[{"name": name, "mimeType": "image/png", "buffer": data}])
            page.get_by_text(said, exact=False).first.wait_for(timeout=30_000)
            expect(generate, f"Generate is enabled with {name} in the uploads").to_be_disabled(timeout=30_000)
            generate.click(force=True)  # a click on the disabled button does nothing
            page.keyboard.press("Control+Shift+Enter")  # nor does its shortcut
            page.wait_for_timeout(1000)
            assert fake.hits == 0, [s.path for s in fake.seen]
            page.screenshot(path=str(artifacts_dir / f"hostile-upload-{name}.png"), full_page=True)
            page.get_by_role("button", name=f"Remove {name}").click()
        expect(generate).to_be_enabled(timeout=30_000)
        generate.click()
        page.get_by_text("1 image ready").wait_for(timeout=60_000)
        assert len([s for s in fake.seen if s.method == "POST"]) == 1  # the count is real
    finally:
        server.stop()
        fake.close()

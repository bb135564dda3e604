"""OpenAI previews in a real browser: the job card shows a streamed preview before the final image."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import AppServer

pytestmark = pytest.mark.browser


@pytest.fixture
def slow_app(tmp_path):
    # A 6-second job streamed with two previews: each preview is on screen for about two seconds,
    # longer than the panel's one-second refresh.
    server = AppServer(tmp_path / "app-data", env={"IMAGE_STUDIO_EMULATOR_LATENCY": "6"})
    server.data_dir.mkdir()
    server.start()
    yield server
    server.stop()


def test_a_preview_is_shown_before_the_final_image(slow_app, page, artifacts_dir):
    page.goto(slow_app.url)
    page.get_by_role("heading", name="Studio").wait_for(timeout=30_000)
    prompt = page.get_by_label("Prompt", exact=True)
    prompt.fill("a lighthouse at dusk, watercolour")
    prompt.press("Control+Enter")
    page.get_by_role("radiogroup", name="Quality").get_by_role("radio", name="Low").click()
    previews = page.get_by_label("Previews", exact=True)
    assert previews.input_value() == "2"
    generate = page.get_by_role("button", name="Generate 1 image", exact=False)
    generate.wait_for(timeout=15_000)
    generate.click()

    # The preview is an image in the job's card, captioned as such, while the job is not done.
    preview = page.locator('[data-testid="stImage"]').filter(has_text="still forming, not the final image")
    preview.locator("img").first.wait_for(state="attached", timeout=30_000)
    assert page.get_by_text("1 image ready").count() == 0  # the preview came first
    page.screenshot(path=str(artifacts_dir / "streaming-preview.png"))

    page.get_by_text("1 image ready").wait_for(timeout=60_000)
    preview.first.wait_for(state="detached", timeout=15_000)  # the final image replaced it
    page.locator('[data-testid="stImage"] img:visible').first.wait_for(timeout=15_000)
    page.screenshot(path=str(artifacts_dir / "streaming-final.png"))

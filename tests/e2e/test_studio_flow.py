"""The Studio page in a real browser: a template batch, its cost, two images, a download.

Also takes the README screenshot (docs/screenshot.png, with IMAGE_STUDIO_UPDATE_SCREENSHOT=1):
the Studio at 1400×1000 right after Generate, the new image in the first screen.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from core.images import recipe
from core.prompts import templates
from core.spend import costs
from core.spend.money import format_usd
from providers.catalogue import load_catalogue
from providers.registry import PROVIDERS
from providers.types import ImageRequest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
HEADLINES = ["Spring Design Festival", "Summer Night Market"]


def _choose(page, label: str, option: str) -> None:
    page.locator(f'input[aria-label="{label}"]').click()
    page.get_by_role("option", name=option, exact=True).click()


def _expected_total() -> str:
    poster = next(t for t in templates.builtin_templates() if t.name == "Bilingual event poster")
    prompts = [e.prompt for e in poster.expand({"headline": HEADLINES})]
    caps = PROVIDERS["openai"].MODELS["gpt-image-2"]
    request = ImageRequest(prompt=prompts[0], model="gpt-image-2", size="3:2", quality="medium", output_format="png",
                           partial_images=2)  # the form's default streamed previews
    return format_usd(costs.batch_estimate(load_catalogue(), "openai", request, caps, prompts).usd)


def _idle(page) -> None:
    """Wait until the app is not running a script (the status widget shows while it does)."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=30_000)


def _settle(page) -> None:
    # Move the pointer off any button so no tooltip covers the screenshot, and let fragments repaint.
    page.mouse.move(5, 5)
    page.wait_for_timeout(800)


def test_template_batch_to_two_images_and_a_download(app_server, page, artifacts_dir):
    page.goto(app_server.url)
    page.get_by_role("heading", name="Studio").wait_for(timeout=30_000)

    _choose(page, "Start from a template", "Bilingual event poster")
    headline = page.locator('textarea[aria-label="{{headline}}"]')
    headline.wait_for(timeout=15_000)
    headline.fill("\n".join(HEADLINES))
    headline.press("Control+Enter")  # a text area applies its text on Ctrl+Enter (or on leaving it)
    page.get_by_text("2 headline values").wait_for(timeout=15_000)

    page.get_by_role("radiogroup", name="Quality").get_by_role("radio", name="Medium").click()
    _choose(page, "Aspect ratio / size", "3:2 landscape · 1536×1024")

    expected = _expected_total()
    total = page.locator('[data-testid="stMetric"]').filter(has_text="Estimated total")
    total.get_by_text(expected).wait_for(timeout=15_000)
    generate = page.get_by_role("button", name=f"Generate 2 images · {expected}")
    generate.wait_for(timeout=15_000)
    assert generate.is_enabled()
    _settle(page)
    page.screenshot(path=str(artifacts_dir / "studio-1-ready.png"))

    generate.click()
    page.get_by_text("2 images ready").wait_for(timeout=90_000)
    results = page.locator('[data-testid="stImage"] img:visible')
    results.nth(1).wait_for(timeout=30_000)
    page.get_by_text("billed $").first.wait_for(timeout=15_000)
    _idle(page)  # the panel reruns the page once when the last job finishes

    with page.expect_download(timeout=30_000) as info:
        page.locator('[data-testid="stDownloadButton"] button:visible').first.click()
    download = info.value
    data = Path(download.path()).read_bytes()
    assert download.suggested_filename.endswith(".png")
    with Image.open(io.BytesIO(data)) as im:
        width, height = im.size
        assert im.format == "PNG"
    assert abs(width / height - 3 / 2) < 0.01, (width, height)
    carried = recipe.extract(data)
    assert carried and any(h in carried["params"]["prompt"] for h in HEADLINES)

    # The Studio right after Generate, as a newcomer sees it at 1400×1000: the form and its cost on the left,
    # the new image large on the right, in the first screen. This is the README picture.
    page.locator('[data-testid="stToast"]').first.wait_for(state="detached", timeout=20_000)
    page.get_by_role("heading", name="Studio").first.scroll_into_view_if_needed()
    _settle(page)
    first = page.locator('[data-testid="stMain"] [data-testid="stImage"] img:visible').first.bounding_box()
    assert first is not None and 0 <= first["y"] < 1000 and first["width"] >= 400, first
    final = artifacts_dir / "studio-2-results.png"
    page.screenshot(path=str(final))
    if os.environ.get("IMAGE_STUDIO_UPDATE_SCREENSHOT"):  # the README picture changes only on purpose
        shutil.copyfile(final, ROOT / "docs" / "screenshot.png")

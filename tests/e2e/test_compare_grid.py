"""A 2x2 experiment grid run against the emulator in a real browser, and its contact sheet downloaded."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from core.exports import contact_sheet

pytestmark = pytest.mark.browser

PROMPT = "A lighthouse on a cliff at dawn, watercolor"


def _open_compare(page, url: str) -> None:
    # The app's root first: the navigation is set up there, then Compare through the menu.
    page.goto(url)
    page.get_by_role("heading", name="Studio").wait_for(timeout=30_000)
    page.get_by_role("link", name=re.compile("Compare")).first.click()
    page.get_by_role("heading", name="Compare").wait_for(timeout=30_000)


def test_two_by_two_grid_runs_and_exports_a_contact_sheet(app_server, page, artifacts_dir):
    _open_compare(page, app_server.url)
    page.get_by_text("Experiment grid", exact=True).click()
    # Defaults: rows vary quality (low, high), columns vary provider (the first two): a 2x2 grid.
    page.get_by_text("Rows vary").wait_for(timeout=15_000)
    prompt = page.get_by_label("Prompt", exact=True)
    prompt.fill(PROMPT)
    prompt.press("Control+Enter")
    run = page.get_by_role("button", name=re.compile(r"^Run 4 images"))
    run.wait_for(timeout=30_000)
    page.screenshot(path=str(artifacts_dir / "compare_grid_before.png"), full_page=True)
    run.click()

    page.get_by_text(re.compile(r"2×2 grid · Quality × Provider · made .* · 4 done")).wait_for(timeout=90_000)
    page.wait_for_timeout(2000)  # the live panel reruns the page once when the last job ends
    page.get_by_role("button", name=re.compile("Contact sheet")).wait_for(timeout=15_000)
    # Streamlit scrolls inside its own container, so a tall window is what captures the whole page.
    page.set_viewport_size({"width": 1400, "height": 2400})
    page.wait_for_timeout(1500)  # let the last images paint before the screenshot
    page.screenshot(path=str(artifacts_dir / "compare_grid.png"), full_page=True)

    with page.expect_download(timeout=30_000) as info:
        page.get_by_role("button", name=re.compile("Contact sheet")).click()
    download = info.value
    assert download.suggested_filename.endswith("-contact-sheet.png")
    data = open(download.path(), "rb").read()
    with Image.open(io.BytesIO(data)) as sheet:
        assert sheet.format == "PNG"
        assert sheet.size == contact_sheet.sheet_size(2, 2, row_labels=True)
        # Four pictures, not four empty boxes: the cell areas are not the plain box colour.
        cs = contact_sheet
        left = cs.PAD + cs.ROW_LABEL_W
        top = cs.PAD + cs.TITLE_H + cs.HEADER_H
        for r in range(2):
            for c in range(2):
                x = left + c * (cs.CELL + cs.GAP) + cs.CELL // 2
                y = top + r * (cs.CELL + cs.CAPTION_H + cs.GAP) + cs.CELL // 2
                assert sheet.convert("RGB").getpixel((x, y)) != (241, 243, 246), (r, c)
    (artifacts_dir / "compare_contact_sheet.png").write_bytes(data)


def test_results_reach_history_and_spend(app_server, page, artifacts_dir):
    """A side-by-side run, then its results in History (gallery and detail) and its cost on Spend."""
    _open_compare(page, app_server.url)
    prompt = page.get_by_label("Prompt", exact=True)
    prompt.fill("Product shot of a ceramic mug on oak, soft light")
    prompt.press("Control+Enter")
    page.get_by_role("button", name=re.compile(r"^Run 2 images")).click()
    page.get_by_text(re.compile(r"2 side by side · made .* · 2 done")).wait_for(timeout=90_000)
    page.wait_for_timeout(2000)  # the live panel reruns the page once when the last job ends

    page.get_by_role("button", name="Open in History").click()
    page.get_by_role("heading", name="History").wait_for(timeout=30_000)
    page.get_by_text(re.compile(r"^2 results")).wait_for(timeout=15_000)
    page.set_viewport_size({"width": 1400, "height": 1400})
    page.wait_for_timeout(1500)
    page.screenshot(path=str(artifacts_dir / "history_gallery.png"), full_page=True)

    # A keyed widget's container carries its key as a class: the tiles' Open buttons, not a filter's.
    page.locator("[class*='st-key-history_open_'] button").first.click()
    page.get_by_role("button", name=re.compile("Run again")).wait_for(timeout=15_000)
    # The address is a link to this result (set with replaceState, which page.url does not follow).
    assert "?job=" in page.evaluate("window.location.href")
    page.wait_for_timeout(1500)
    page.screenshot(path=str(artifacts_dir / "history_detail.png"), full_page=True)

    page.get_by_role("link", name=re.compile("Spend")).first.click()
    page.get_by_role("heading", name="Spend").wait_for(timeout=30_000)
    page.get_by_role("tab", name=re.compile("Simulated")).click()
    page.get_by_text("Spend per day, by provider").last.wait_for(timeout=15_000)
    page.set_viewport_size({"width": 1400, "height": 2000})
    page.wait_for_timeout(2000)
    page.screenshot(path=str(artifacts_dir / "spend_simulated.png"), full_page=True)

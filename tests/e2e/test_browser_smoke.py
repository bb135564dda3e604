"""The running app, opened in a real headless Chromium."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_studio_page_opens(app_server, page, artifacts_dir):
    page.goto(app_server.url)
    heading = page.get_by_role("heading", name="Studio")
    heading.wait_for(timeout=30_000)
    assert heading.is_visible()
    page.screenshot(path=str(artifacts_dir / "studio.png"), full_page=True)
    assert (artifacts_dir / "studio.png").stat().st_size > 10_000

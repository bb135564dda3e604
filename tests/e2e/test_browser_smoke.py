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


def test_a_shared_link_opened_first_gets_the_full_app(app_server, page, artifacts_dir):
    # The very first request to this server is a deep link (as when a colleague opens a shared result).
    page.goto(f"{app_server.url}/history")
    page.get_by_role("heading", name="History").wait_for(timeout=30_000)
    nav = page.get_by_test_id("stSidebarNav")
    nav.wait_for(timeout=30_000)
    # st.navigation's own titles, not file names as Streamlit's legacy pages folder would show.
    for title in ("Studio", "Compare", "History", "Spend", "Settings"):
        assert nav.get_by_text(title, exact=True).is_visible(), title
    page.screenshot(path=str(artifacts_dir / "deep_link_history.png"))

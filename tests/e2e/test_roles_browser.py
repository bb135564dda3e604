"""The three roles in a real browser against a real OpenID Connect provider (issue 14).

A maker's work is private until shared: another maker sees none of it, not even by its address, and
cannot delete it; a read-only link opens it for a viewer, who can look but not change it. A maker's
Settings hold only their keys (no cap, no credit value). Nothing patches ``st.user``: every person goes
through the provider's whole code flow (tests/support/oidc).
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect

from core.history.store import Store
from core.history.views import JobFilter
from tests.e2e.test_login import OWNER, WAIT, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PROMPT = "A private lighthouse by Ann"


def _person(browser, app_url: str, email: str, path: str = "/") -> Page:
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(app_url + path)
    sign_in(page, app_url, email)
    return page


def _wait_job(store: Store, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = store.list_jobs(JobFilter(statuses=("succeeded",)), limit=5)
        if jobs:
            return jobs[0]
        time.sleep(0.3)
    raise AssertionError("the maker's job did not finish")


def test_private_work_a_share_link_read_only_and_a_makers_settings(signed_in_app, browser, artifacts_dir) -> None:
    app = signed_in_app(owners=OWNER, makers="@makers.example.com", viewers="viewer@example.com")

    ann = _person(browser, app.url, "ann@makers.example.com")
    expect(ann.get_by_role("heading", name="Studio")).to_be_visible(timeout=WAIT)
    prompt = ann.get_by_label("Prompt", exact=True)
    prompt.fill(PROMPT)
    prompt.press("Control+Enter")
    generate = ann.get_by_role("button", name="Generate 1 image")
    expect(generate).to_be_enabled(timeout=WAIT)
    generate.click()
    job = _wait_job(Store(data_dir=app.data_dir))
    assert job.prompt == PROMPT and job.user_id is not None and job.endpoint == "emulator"
    assert job.key_holder is None  # no key of hers or the team's: the emulator, never the operator's

    # Another maker: not in their History, not by its address, no way to delete it.
    bob = _person(browser, app.url, "bob@makers.example.com", "/history")
    bob.goto(app.url + "/history")
    expect(bob.get_by_role("heading", name="History")).to_be_visible(timeout=WAIT)
    bob.wait_for_timeout(1500)
    assert PROMPT not in bob.inner_text("body")
    bob.goto(f"{app.url}/history?job={job.id}")
    expect(bob.get_by_text("This result is not in the history.")).to_be_visible(timeout=WAIT)
    assert PROMPT not in bob.inner_text("body")
    expect(bob.get_by_role("button", name="Delete")).to_have_count(0)
    bob.screenshot(path=str(artifacts_dir / "roles_other_maker.png"))
    bob.context.close()

    # Ann makes a read-only link to it.
    ann.goto(f"{app.url}/history?job={job.id}")
    expect(ann.get_by_text(PROMPT).first).to_be_visible(timeout=WAIT)
    ann.get_by_role("tab", name="Share").click()
    ann.get_by_role("button", name="Make a read-only link").click()
    code = ann.locator('[data-testid="stCode"]').filter(has_text="share=")
    expect(code).to_be_visible(timeout=WAIT)
    link = code.inner_text().strip()
    assert link.startswith(app.url) and f"job={job.id}" in link, link

    # Ann's Settings: her keys only; no cap, no credit value.
    ann.goto(app.url + "/settings")
    expect(ann.get_by_role("heading", name="API keys")).to_be_visible(timeout=WAIT)
    for owners_only in ("Budget", "Credit values"):
        expect(ann.get_by_role("heading", name=owners_only, exact=True)).to_have_count(0)
    assert "Daily cap" not in ann.inner_text("body") and "USD per credit" not in ann.inner_text("body")
    # Her own spend on the Spend page; everyone's is for owners.
    ann.goto(app.url + "/spend")
    ann.get_by_role("tab", name="Simulated (emulator)").click()
    expect(ann.get_by_text("Your spend").nth(1)).to_be_visible(timeout=WAIT)  # tabs: real, simulated
    expect(ann.get_by_text("Spend per member")).to_have_count(0)
    ann.context.close()

    # An owner sees each member's spend, Ann's included, by email.
    olga = _person(browser, app.url, "owner@example.com", "/spend")
    olga.goto(app.url + "/spend")
    olga.get_by_role("tab", name="Simulated (emulator)").click()
    expect(olga.get_by_text("Spend per member").nth(1)).to_be_visible(timeout=WAIT)
    expect(olga.get_by_text("ann@makers.example.com").first).to_be_visible(timeout=WAIT)
    olga.screenshot(path=str(artifacts_dir / "roles_owner_spend.png"), full_page=True)
    olga.context.close()

    # A viewer: History does not list it, the link opens it read-only.
    vic = _person(browser, app.url, "viewer@example.com", "/history")
    vic.goto(app.url + "/history")
    expect(vic.get_by_role("heading", name="History")).to_be_visible(timeout=WAIT)
    vic.wait_for_timeout(1500)
    assert PROMPT not in vic.inner_text("body")
    vic.goto(link)
    expect(vic.get_by_text(PROMPT).first).to_be_visible(timeout=WAIT)
    expect(vic.get_by_text("Shared with you to look at: read-only.")).to_be_visible()
    for action in ("Delete", "Run again", "Edit this", "Re-render at high"):
        expect(vic.get_by_role("button", name=action)).to_have_count(0)
    vic.screenshot(path=str(artifacts_dir / "roles_viewer_link.png"), full_page=True)
    for path in ("/settings", "/studio"):  # and Settings and the Studio are no page of theirs
        vic.goto(app.url + path)
        expect(vic.get_by_role("heading", name="History")).to_be_visible(timeout=WAIT)
        expect(vic.get_by_role("button", name="Generate")).to_have_count(0)
    vic.context.close()

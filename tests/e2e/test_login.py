"""Sign-in against a real OpenID Connect provider: the gate, the roles' pages, logging out.

The provider (npm's oidc-provider, tests/support/oidc) runs on 127.0.0.1 and lets anyone
sign in as any email; the app's ``[auth]`` points at it, as a deployment's would at its own.
Nothing patches ``st.user``: the browser goes through the whole OIDC code flow.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OWNER = "Owner@Example.com"  # configured with capitals: emails match whatever their case
NAV = ("Studio", "Compare", "History", "Spend", "Settings")
WAIT = 30_000


def sign_in(page: Page, app_url: str, email: str) -> None:
    """From the app's sign-in screen through the provider's login and consent pages, back to the app."""
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/interaction/"), timeout=WAIT)
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", "any password")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/interaction/"), timeout=WAIT)  # consent
    page.click("button[type=submit]")
    page.wait_for_url(re.compile("^" + re.escape(app_url)), timeout=WAIT)


def log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Yes, sign me out").click(timeout=WAIT)  # the provider's own end of session


def expect_only_the_sign_in_screen(page: Page) -> None:
    expect(page.get_by_role("button", name="Log in")).to_be_visible(timeout=WAIT)
    expect(page.get_by_text("Sign in to continue.")).to_be_visible()
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
    expect(page.get_by_test_id("stSidebar")).to_have_count(0)
    body = page.inner_text("body")
    for word in ("Generate", "API keys", "Budget", "Spent today", "Simulated", "History"):
        assert word not in body, word


def test_a_deep_link_before_login_shows_only_the_sign_in_screen_and_an_owner_reaches_everything(
    signed_in_app, page: Page, artifacts_dir
) -> None:
    app = signed_in_app(owners=OWNER, makers="@makers.example.com")
    for path in ("/settings", "/history", "/spend", "/"):
        page.goto(app.url + path)
        expect_only_the_sign_in_screen(page)
    page.screenshot(path=str(artifacts_dir / "login_screen.png"))

    page.goto(app.url + "/settings")
    sign_in(page, app.url, "owner@example.com")
    expect(page.get_by_role("heading", name="Studio")).to_be_visible(timeout=WAIT)
    nav = page.get_by_test_id("stSidebarNav")
    for title in NAV:
        expect(nav.get_by_text(title, exact=True)).to_be_visible()
    expect(page.get_by_text("Signed in as owner@example.com")).to_be_visible()

    page.goto(app.url + "/settings")  # a new session: the identity cookie signs it in
    expect(page.get_by_role("heading", name="Sign-in and roles")).to_be_visible(timeout=WAIT)
    expect(page.get_by_text("@makers.example.com").first).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "login_owner_settings.png"), full_page=True)

    log_out(page)
    expect_only_the_sign_in_screen(page)
    page.goto(app.url + "/settings")
    expect_only_the_sign_in_screen(page)


def test_someone_in_no_role_sees_only_ask_an_owner_until_an_owner_lets_them_in(
    signed_in_app, page: Page, browser, artifacts_dir
) -> None:
    app = signed_in_app(owners=OWNER)
    page.goto(app.url + "/studio")
    sign_in(page, app.url, "stranger@elsewhere.example.org")
    expect(page.get_by_text("Ask an owner for access")).to_be_visible(timeout=WAIT)
    expect(page.get_by_text("stranger@elsewhere.example.org")).to_be_visible()
    page.goto(app.url + "/settings")  # no address gets them further
    expect(page.get_by_text("Ask an owner for access")).to_be_visible(timeout=WAIT)
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
    body = page.inner_text("body")
    assert not any(word in body for word in ("Generate", "API keys", "Budget", "Sign-in and roles"))
    page.screenshot(path=str(artifacts_dir / "login_no_access.png"))

    # An owner, in another browser, makes them a maker in Settings: kept in the database, seen at their next run.
    owner = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    owner.goto(app.url + "/settings")
    sign_in(owner, app.url, "owner@example.com")
    owner.goto(app.url + "/settings")
    owner.get_by_label("Email or @domain").fill("Stranger@Elsewhere.example.org")
    owner.get_by_role("combobox", name="Role").click()
    owner.get_by_role("option", name="maker", exact=True).click()
    owner.get_by_role("button", name="Save role").click()
    expect(owner.get_by_text("is now at least a maker")).to_be_visible(timeout=WAIT)
    owner.context.close()

    page.goto(app.url)
    expect(page.get_by_role("heading", name="Studio")).to_be_visible(timeout=WAIT)
    expect(page.get_by_text("Signed in as stranger@elsewhere.example.org")).to_be_visible()
    log_out(page)
    expect_only_the_sign_in_screen(page)


def test_with_no_owner_configured_the_first_login_is_not_an_owner(signed_in_app, page: Page) -> None:
    app = signed_in_app()
    page.goto(app.url)
    sign_in(page, app.url, "first@example.com")
    expect(page.get_by_text("Ask an owner for access")).to_be_visible(timeout=WAIT)
    expect(page.get_by_text("No owner is configured yet")).to_be_visible()


def test_a_viewer_and_a_maker_get_only_their_pages(signed_in_app, browser, artifacts_dir) -> None:
    app = signed_in_app(owners=OWNER, makers="@makers.example.com", section_viewers="viewer@example.com")

    viewer = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    viewer.goto(app.url + "/settings")
    sign_in(viewer, app.url, "Viewer@Example.com")
    expect(viewer.get_by_role("heading", name="History")).to_be_visible(timeout=WAIT)
    expect(viewer.get_by_text("Signed in as viewer@example.com")).to_be_visible()
    for path in ("/settings", "/studio"):  # by address: not a page of theirs
        viewer.goto(app.url + path)
        expect(viewer.get_by_role("heading", name="History")).to_be_visible(timeout=WAIT)
        expect(viewer.get_by_role("heading", name="Settings")).to_have_count(0)
        expect(viewer.get_by_role("heading", name="Studio")).to_have_count(0)
    viewer.screenshot(path=str(artifacts_dir / "login_viewer.png"))
    viewer.context.close()

    maker = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    maker.goto(app.url)
    sign_in(maker, app.url, "kim@makers.example.com")
    expect(maker.get_by_role("heading", name="Studio")).to_be_visible(timeout=WAIT)
    nav = maker.get_by_test_id("stSidebarNav")
    for title in ("Studio", "Compare", "History", "Spend", "Settings"):  # Settings: for their own keys
        expect(nav.get_by_text(title, exact=True)).to_be_visible()
    maker.goto(app.url + "/settings")
    expect(maker.get_by_role("heading", name="API keys")).to_be_visible(timeout=WAIT)
    expect(maker.get_by_text("Defaults, budget caps, credit values and the price catalogue are for owners."))\
        .to_be_visible()
    for owners_only in ("Budget", "Credit values", "Defaults"):
        expect(maker.get_by_role("heading", name=owners_only, exact=True)).to_have_count(0)
    maker.context.close()


def test_without_auth_the_app_is_as_before_and_settings_says_so(tmp_path, page: Page) -> None:
    from tests.e2e.conftest import AppServer

    data = tmp_path / "app-data"
    data.mkdir()
    app = AppServer(data, secrets="").start()  # an empty secrets file: no [auth], whatever the checkout has
    try:
        page.goto(app.url + "/settings")
        expect(page.get_by_role("heading", name="Settings")).to_be_visible(timeout=WAIT)
        expect(page.get_by_text("No sign-in is configured: everyone who can open this address is the operator."))\
            .to_be_visible()
        expect(page.get_by_role("button", name="Log in")).to_have_count(0)
        expect(page.get_by_role("button", name="Log out")).to_have_count(0)
        nav = page.get_by_test_id("stSidebarNav")
        for title in NAV:
            expect(nav.get_by_text(title, exact=True)).to_be_visible()
    finally:
        app.stop()

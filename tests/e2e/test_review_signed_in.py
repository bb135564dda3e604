"""A review link with sign-in on: two viewers, signed in through the real OpenID Connect provider, vote;
each vote is recorded under the viewer's account, and the link survives the sign-in round trip."""

from __future__ import annotations

import re

import pytest

from core.review.store import ReviewStore
from tests.e2e.test_login import sign_in
from tests.e2e.test_review_browser import FORBIDDEN, PAIRS, _idle, _progress, _seed_review, _wait_vote_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_two_signed_in_viewers_vote_through_the_link(signed_in_app, browser, artifacts_dir):
    app = signed_in_app(owners="owner@example.com", viewers="@viewers.example.com")
    store, token = _seed_review(app.data_dir)
    review = ReviewStore(store).by_token(token)
    link = f"{app.url}/?review={token}"
    for n, email in enumerate(("ann@viewers.example.com", "bob@viewers.example.com")):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.goto(link)
        sign_in(page, app.url, email)
        _wait_vote_page(page)
        _progress(page, 0)
        assert FORBIDDEN.search(page.content()) is None
        assert page.get_by_test_id("stSidebar").count() == 0
        for i in range(PAIRS):
            page.locator("body").press(["ArrowLeft", "ArrowRight", "ArrowDown"][i % 3])
            if i + 1 < PAIRS:
                _progress(page, i + 1)
        page.get_by_text(f"voted on all {PAIRS} pairs").wait_for(timeout=20_000)
        _idle(page)
        if n == 0:
            page.screenshot(path=str(artifacts_dir / "review_signed_in.png"), full_page=True)
        context.close()
    votes = ReviewStore(store).votes(review.id)
    assert len(votes) == 2 * PAIRS
    assert {v.voter_email for v in votes} == {"ann@viewers.example.com", "bob@viewers.example.com"}
    assert all(re.fullmatch(r"user:[0-9a-f]{32}", v.voter) for v in votes)

"""The Review page through app.py: a blind vote at ?review=<token>, and the results for makers."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.accounts import LOCAL_OPERATOR
from core.history.store import Store
from core.history.views import Billing, Money, NewJob
from core.jobs.claims import JobClaims
from core.review.results import results
from core.review.schedule import all_pairs
from core.review.store import ReviewStore
from providers.registry import PROVIDERS
from providers.types import ImageRequest
from tests.seeding import make_image
from ui import review_vote

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
CANDIDATES = (("openai", "gpt-image-1", "high", "0.167"), ("evolink", "gpt-image-1", "low", "0.011"),
              ("apiframe", "gpt-image-1", "medium", "0.042"))
PROMPT = "A lighthouse on a cliff at dawn, watercolor"


def _review(store: Store) -> tuple[ReviewStore, str]:
    claims = JobClaims(store.engine)
    jobs = []
    for i, (provider, model, quality, usd) in enumerate(CANDIDATES):
        request = ImageRequest(prompt=PROMPT, model=model, quality=quality)
        _, (job_id,) = store.create_run(provider=provider, endpoint="live", request=request, jobs=[
            NewJob(prompt=PROMPT, n=1, quality=quality, size="auto",
                   estimate=Money(Decimal(usd), Decimal(usd), "USD"))])
        claims.finish(job_id, None, status="succeeded", billing=Billing("estimated"),
                      images=[(store.files.put(make_image(i, (64, 64))), None)])
        jobs.append(job_id)
    reviews = ReviewStore(store)
    return reviews, reviews.create("OpenAI vs EvoLink vs Apiframe", jobs, LOCAL_OPERATOR).token


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def browser(monkeypatch):
    """This test's browser id (a real browser gets it as a cookie, which AppTest cannot send)."""
    ids = {"now": "browser-one-aaaaaaaaaaaa"}
    monkeypatch.setattr(review_vote, "current_browser_id", lambda: ids["now"])
    return ids


def _voting(token: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["review"] = token
    return at.run()


FORBIDDEN = [*(cls.label for cls in PROVIDERS.values()), *PROVIDERS, "gpt-image", "0.167", "0.011", "0.042",
             "high", "medium", "OpenAI vs"]


def _page_text(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "caption", "title", "button", "text_input", "success", "info", "warning", "error",
                 "progress", "code", "toast"):
        for el in at.get(kind):
            parts.append(str(getattr(el, "value", "") or ""))
            parts.append(str(getattr(el, "label", "") or ""))
            parts.append(str(getattr(el, "proto", "")))
    return "\n".join(parts)


def test_the_vote_is_blind_and_three_votes_end_it(store, browser):
    reviews, token = _review(store)
    at = _voting(token)
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Which image is better?"]
    assert len(at.get("imgs")) == 2 or len(at.get("image")) == 2
    assert not at.sidebar.selectbox  # no provider picker, no key list, no spend
    for _ in range(3):
        page = _page_text(at).lower()
        for word in FORBIDDEN:
            assert word.lower() not in page, word
        assert "prompt:" in page and "lighthouse" in page
        assert not re.search(r"\$\s*\d", page)  # no price
        assert not re.search(r"review_vote_\w+_\d+_\d+", page)  # no item numbers in widget ids
        at.button(key=next(b.key for b in at.button if b.key.startswith("review_vote_left_"))).click().run()
        assert not at.exception, [e.value for e in at.exception]
    assert any("voted on all 3 pairs" in s.value for s in at.success)
    review = reviews.by_token(token)
    votes = reviews.votes(review.id)
    assert len(votes) == 3 and {v.pair for v in votes} == set(all_pairs(review.items))
    assert all(v.choice == "left" and v.voter == "browser:browser-one-aaaaaaaaaaaa" for v in votes)


def test_a_second_tab_cannot_vote_twice_on_a_pair(store, browser):
    reviews, token = _review(store)
    first, second = _voting(token), _voting(token)  # two tabs of one browser, showing the same pair
    key = next(b.key for b in first.button if b.key.startswith("review_vote_right_"))
    assert key in [b.key for b in second.button]
    first.button(key=key).click().run()
    second.button(key=key.replace("_right_", "_left_")).click().run()  # the stale tab votes on that pair again
    assert not second.exception
    assert any("already voted on that pair" in t.value for t in second.toast)
    review = reviews.by_token(token)
    assert [v.choice for v in reviews.votes(review.id)] == ["right"]
    # Another browser is another voter.
    browser["now"] = "browser-two-bbbbbbbbbbbb"
    third = _voting(token)
    third.button(key=next(b.key for b in third.button if b.key.startswith("review_vote_tie_"))).click().run()
    assert len(reviews.votes(review.id)) == 2


def test_a_bad_token_a_closed_review_and_a_browser_without_id(store, browser):
    reviews, token = _review(store)
    at = _voting("x" * 32)
    assert any("not valid" in e.value for e in at.error) and not at.get("image")
    browser["now"] = None
    assert any("cookies" in w.value for w in _voting(token).warning)
    browser["now"] = "browser-one-aaaaaaaaaaaa"
    reviews.close(reviews.by_token(token).id, LOCAL_OPERATOR)
    closed = _voting(token)
    assert any("closed" in i.value for i in closed.info) and not [b for b in closed.button if "vote" in b.key]


def test_results_for_the_maker_match_the_stored_votes_and_close_works(store, browser):
    reviews, token = _review(store)
    at = _voting(token)
    for choice in ("left", "tie", "right"):
        at.button(key=next(b.key for b in at.button if b.key.startswith(f"review_vote_{choice}_"))).click().run()
    review = reviews.by_token(token)
    res = results(review, reviews.votes(review.id))
    page = AppTest.from_file(APP, default_timeout=60).run()
    page.switch_page("app_pages/review.py").run()
    assert not page.exception, [e.value for e in page.exception]
    shown = page.table[0].value
    assert list(shown["Votes"]) == [str(c.votes) for c in res.candidates] == ["2", "2", "2"]
    assert list(shown["Win rate"]) == [f"{c.win_rate:.0%}" for c in res.candidates]
    assert sum(c.wins for c in res.candidates) == 3
    for row, c in zip(shown.to_dict("records"), res.candidates, strict=True):
        assert row["Rating"] == f"{c.score:.0f} ± {(c.high - c.low) / 2:.0f}"
        price = {q: Decimal(u) for _, _, q, u in CANDIDATES}[c.quality]
        assert c.price == price
        expected = "no wins" if c.wins == 0 else f"${price * 2 / Decimal(str(c.wins)):.4f}"
        assert row["Cost per winning image"] == expected
    assert sum("best value" in r for r in shown["Candidate"]) == 1
    assert re.search(r"/\?review=" + re.escape(token), "\n".join(c.value for c in page.code))
    page.button(key=f"review_close_{review.id}").click().run()
    assert reviews.get(review.id).closed


def test_a_maker_makes_a_review_link_from_a_compare_grid(store):
    from tests.seeding import seed_experiment

    exp_id = seed_experiment(store, name="Tiers", rows=("low", "high"), cols=("openai", "evolink"))
    at = AppTest.from_file(str(ROOT / "app_pages" / "compare.py"), default_timeout=60)
    at.query_params["experiment"] = exp_id
    at.run()
    key = f"compare_review_{exp_id}"
    at.text_input(key=f"{key}_name").set_value("Which tier?")
    at.button(key=f"{key}_make").click().run()
    assert not at.exception, [e.value for e in at.exception]
    (review,) = ReviewStore(store).list_reviews()
    assert review.name == "Which tier?" and len({i.candidate for i in review.items}) == 4
    assert any(f"review={review.token}" in c.value for c in at.code)


def test_a_history_selection_makes_a_review_link(store):
    reviews, _ = _review(store)
    jobs = sorted({i.job_id for i in reviews.list_reviews()[0].items})

    def script(ids: list[str]) -> None:
        from ui import history_export

        history_export.export_panel(ids, key="history_sel")

    at = AppTest.from_function(script, args=(jobs,), default_timeout=60).run()
    at.button(key="history_sel_review_make").click().run()
    assert not at.exception, [e.value for e in at.exception]
    made = reviews.list_reviews()[0]
    assert made.name == "Review" and sorted({i.job_id for i in made.items}) == jobs
    assert any(f"?review={made.token}" in c.value for c in at.code)
    one = AppTest.from_function(script, args=(jobs[:1],), default_timeout=60).run()  # one result: no pair to vote on
    assert "history_sel_review_make" not in [b.key for b in one.button]

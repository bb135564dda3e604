"""A blind review in headless Chromium: two voters (two browsers, no sign-in) on a 3-candidate review.

The page and its image URLs never name a provider, a model or a price; a second tab cannot vote
twice on a pair; the makers' results show ratings, win rates and cost per win that match a
computation by hand on the votes as stored in the database.
"""

from __future__ import annotations

import re
import time
from decimal import Decimal

import pytest
import sqlalchemy as sa

from core import db
from core.accounts import LOCAL_OPERATOR
from core.history.store import Store
from core.history.views import Billing, Money, NewJob
from core.jobs.claims import JobClaims
from core.review import rating
from core.review.store import ReviewStore
from core.spend.money import format_usd
from providers.registry import PROVIDERS
from providers.types import ImageRequest
from tests.seeding import make_image

pytestmark = pytest.mark.browser

CANDIDATES = (("openai", "gpt-image-1", "high", "0.167"), ("evolink", "gpt-image-1.5", "low", "0.011"),
              ("apiframe", "gpt-image-1", "medium", "0.042"))
PROMPTS = ("A lighthouse on a cliff at dawn, watercolor", "Portrait of a red fox in autumn leaves")
PAIRS = len(PROMPTS) * 3  # three candidates: three pairs per prompt


def _seed_review(data_dir) -> tuple[Store, str]:
    store = Store(data_dir=data_dir)
    claims = JobClaims(store.engine)
    jobs = []
    for p, prompt in enumerate(PROMPTS):
        for c, (provider, model, quality, usd) in enumerate(CANDIDATES):
            request = ImageRequest(prompt=prompt, model=model, quality=quality)
            _, (job_id,) = store.create_run(provider=provider, endpoint="live", request=request, jobs=[
                NewJob(prompt=prompt, n=1, quality=quality, size="auto",
                       estimate=Money(Decimal(usd), Decimal(usd), "USD"))])
            claims.finish(job_id, None, status="succeeded", billing=Billing("estimated"),
                          images=[(store.files.put(make_image(p * 3 + c, (256, 256))), None)])
            jobs.append(job_id)
    return store, ReviewStore(store).create("OpenAI high vs EvoLink low", jobs, LOCAL_OPERATOR).token


FORBIDDEN = re.compile("|".join([*(re.escape(c.label) for c in PROVIDERS.values()), *PROVIDERS, "gpt-image",
                                 r"\$\s*\d", r"0\.167", r"0\.011", r"0\.042", r"\.png"]), re.IGNORECASE)


def _assert_blind(page, store: Store) -> None:
    html = page.content()
    found = FORBIDDEN.search(html)
    assert found is None, html[max(0, found.start() - 200): found.end() + 200]
    srcs = page.eval_on_selector_all("img", "els => els.map(e => e.src)")
    with db.read(store.engine) as conn:
        files = [r.path for r in conn.execute(sa.select(db.images.c.path, db.images.c.sha256))]
        shas = conn.execute(sa.select(db.images.c.sha256)).scalars().all()
    pictures = [s for s in srcs if "/media/" in s]
    assert len(pictures) == 2, srcs
    for src in pictures:
        assert not FORBIDDEN.search(src) and src.endswith(".jpg"), src
        assert not any(sha[:16] in src for sha in shas) and not any(f in src for f in files), src


def _idle(page) -> None:
    """The rerun a vote started has finished: the new pair's buttons (and their shortcuts) are the live ones."""
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(timeout=20_000)


def _progress(page, done: int) -> None:
    page.get_by_text(f"{done} of {PAIRS} pairs").wait_for(timeout=20_000)
    _idle(page)


def _wait_vote_page(page) -> None:
    page.get_by_role("heading", name="Which image is better?").wait_for(timeout=30_000)
    page.locator("img[src*='/media/']").nth(1).wait_for(timeout=20_000)


def test_two_voters_vote_blind_and_the_results_match_the_stored_votes(app_server, browser, artifacts_dir):
    store, token = _seed_review(app_server.data_dir)
    link = f"{app_server.url}/?review={token}"
    review = ReviewStore(store).by_token(token)

    # Voter one: keyboard only, and a second tab left open on the same first pair.
    one = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab, stale = one.new_page(), one.new_page()
    stale.goto(link)
    _wait_vote_page(stale)
    _idle(stale)
    tab.bring_to_front()
    tab.goto(link)
    _wait_vote_page(tab)
    _progress(tab, 0)
    _assert_blind(tab, store)
    tab.screenshot(path=str(artifacts_dir / "review_vote.png"), full_page=True)
    started = time.monotonic()
    keys = ["ArrowLeft", "ArrowRight", "ArrowDown", "ArrowLeft", "ArrowLeft", "ArrowRight"]
    for i, key in enumerate(keys):
        tab.locator("body").press(key)
        _progress(tab, i + 1) if i + 1 < PAIRS else tab.get_by_text(f"voted on all {PAIRS} pairs").wait_for()
        if i + 1 < PAIRS:
            _wait_vote_page(tab)
            _assert_blind(tab, store)
    keyboard_seconds = time.monotonic() - started
    # The stale tab still shows the first pair: voting on it again is refused.
    stale.bring_to_front()  # a background tab gets no animation frames: Playwright's click waits on them
    stale.get_by_role("button", name="Right is better").click()
    stale.get_by_text("already voted on that pair").wait_for(timeout=20_000)

    # Voter two: another browser (its own cookie), by tap, with a comment on the first pair.
    two = browser.new_context(viewport={"width": 1400, "height": 1000})
    other = two.new_page()
    other.goto(link)
    _wait_vote_page(other)
    _idle(other)
    other.get_by_label("Comment (optional)").fill("the left one has cleaner edges")
    other.get_by_label("Comment (optional)").press("Enter")
    _idle(other)
    taps = ["Left is better", "Left is better", "Can't tell", "Right is better", "Left is better", "Left is better"]
    for i, name in enumerate(taps):
        other.get_by_role("button", name=name).click()
        if i + 1 < PAIRS:
            _progress(other, i + 1)
            _assert_blind(other, store)
    other.get_by_text(f"voted on all {PAIRS} pairs").wait_for(timeout=20_000)

    votes = ReviewStore(store).votes(review.id)
    assert len(votes) == 2 * PAIRS  # the stale tab's click was not counted
    voters = {v.voter for v in votes}
    assert len(voters) == 2 and all(v.startswith("browser:") for v in voters)
    assert all(sum(1 for v in votes if v.voter == who and v.pair == p) == 1 for who in voters for p in
               {v.pair for v in votes})
    assert any(v.comment == "the left one has cleaner edges" for v in votes)
    assert keyboard_seconds < 60, keyboard_seconds  # six votes, well inside "ten in a minute"

    # By hand, from the rows as stored: wins (a tie is half each side) and meetings per candidate.
    with db.read(store.engine) as conn:
        rows = conn.execute(sa.select(db.review_votes.c.left_item, db.review_votes.c.right_item,
                                      db.review_votes.c.choice)).all()
        items = {r.idx: (r.provider, r.quality, Decimal(r.price_usd))
                 for r in conn.execute(sa.select(db.review_items))}
    wins: dict[str, Decimal] = {q: Decimal(0) for _, _, q, _ in CANDIDATES}
    met: dict[str, int] = dict.fromkeys(wins, 0)
    for left, right, choice in rows:
        lq, rq = items[left][1], items[right][1]
        met[lq] += 1
        met[rq] += 1
        if choice == "left":
            wins[lq] += 1
        elif choice == "right":
            wins[rq] += 1
        else:
            wins[lq] += Decimal("0.5")
            wins[rq] += Decimal("0.5")
    price = {q: Decimal(u) for _, _, q, u in CANDIDATES}
    ratings = {r.candidate.split("|")[2]: r for r in rating.rate(
        [f"{p}|{m}|{q}" for p, m, q, _ in CANDIDATES],
        [rating.Vote(f"{items[lf][0]}|{_model(items[lf][0])}|{items[lf][1]}",
                     f"{items[rt][0]}|{_model(items[rt][0])}|{items[rt][1]}", ch) for lf, rt, ch in rows])}

    owner = browser.new_context(viewport={"width": 1400, "height": 1400})
    results = owner.new_page()
    results.goto(f"{app_server.url}/review")
    results.get_by_role("heading", name="Reviews").wait_for(timeout=30_000)
    results.locator("table").first.wait_for(timeout=20_000)
    results.screenshot(path=str(artifacts_dir / "review_results.png"), full_page=True)
    table = results.locator("table").first
    header = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    rows_shown = [dict(zip(header, [c.strip() for c in tr.locator("th, td").all_inner_texts()], strict=False))
                  for tr in table.locator("tbody tr").all()]
    assert len(rows_shown) == 3, rows_shown
    for _, _, quality, _ in CANDIDATES:
        row = next(r for r in rows_shown if f" · {quality}" in r["Candidate"])
        r = ratings[quality]
        assert row["Rating"] == f"{r.score:.0f} ± {(r.high - r.low) / 2:.0f}", row
        assert row["Win rate"] == f"{float(wins[quality] / met[quality]):.0%}", row
        assert row["Votes"] == str(met[quality]), row
        per_win = "no wins" if wins[quality] == 0 else format_usd(price[quality] * met[quality] / wins[quality])
        assert row["Cost per winning image"] == per_win, row
    order = [next(q for _, _, q, _ in CANDIDATES if f" · {q}" in r["Candidate"]) for r in rows_shown]
    assert order == sorted(ratings, key=lambda q: -ratings[q].score)
    assert sum("best value" in r["Candidate"] for r in rows_shown) == 1
    for ctx in (one, two, owner):
        ctx.close()


def _model(provider: str) -> str:
    return next(m for p, m, _, _ in CANDIDATES if p == provider)

"""Reviews in the database (SQLite and PostgreSQL): items, one vote per voter per pair, closing, roles."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from conftest import CANDIDATES, PROMPTS, finished_jobs

from core import db
from core.accounts import LOCAL_OPERATOR, Identity, PermissionDenied
from core.history.store import Store
from core.review.store import ReviewError, ReviewStore, voter_key

VIEWER = Identity(user_id="u-viewer", email="v@example.com", name="V", role="viewer")
MAKER = Identity(user_id="u-maker", email="m@example.com", name="M", role="maker")
OTHER_MAKER = Identity(user_id="u-maker2", email="m2@example.com", name="M2", role="maker")
OWNER = Identity(user_id="u-owner", email="o@example.com", name="O", role="owner")


def test_a_review_keeps_each_image_with_its_candidate_and_price(store: Store) -> None:
    jobs = finished_jobs(store)
    review = ReviewStore(store).create("Which route?", jobs, MAKER)
    assert len(review.items) == len(CANDIDATES) * len(PROMPTS)
    assert len(review.token) >= 32 and review.created_by == "u-maker"
    by_candidate = {i.candidate: i.price for i in review.items}
    assert by_candidate == {f"{p}|{m}|{q}": Decimal(usd) for p, m, q, usd in CANDIDATES}
    assert ReviewStore(store).by_token(review.token) == review
    assert ReviewStore(store).by_token("not-" + review.token) is None
    assert [r.id for r in ReviewStore(store).list_reviews()] == [review.id]


def test_a_review_needs_two_candidates_on_one_prompt_and_a_maker(store: Store) -> None:
    jobs = finished_jobs(store, candidates=CANDIDATES[:1])
    with pytest.raises(ReviewError, match="at least two different candidates"):
        ReviewStore(store).create("x", jobs, MAKER)
    with pytest.raises(PermissionDenied):
        ReviewStore(store).create("x", finished_jobs(store), VIEWER)


def test_one_vote_per_voter_per_pair_whichever_side_it_was_shown(store: Store) -> None:
    reviews = ReviewStore(store)
    review = reviews.create("r", finished_jobs(store), MAKER)
    me = voter_key(VIEWER, None)
    assert reviews.vote(review, VIEWER, me, 0, 1, "left", " sharper ") == "recorded"
    # A refresh, or a second tab showing the pair the other way round: refused, nothing changes.
    assert reviews.vote(review, VIEWER, me, 1, 0, "left") == "already_voted"
    assert reviews.vote(review, VIEWER, me, 0, 1, "right") == "already_voted"
    # Another voter may vote on the same pair.
    other = voter_key(LOCAL_OPERATOR, "browser-b")
    assert reviews.vote(review, LOCAL_OPERATOR, other, 1, 0, "tie") == "recorded"
    votes = reviews.votes(review.id)
    assert [(v.voter, v.left, v.right, v.choice, v.comment) for v in votes] == [
        ("user:u-viewer", 0, 1, "left", "sharper"), ("browser:browser-b", 1, 0, "tie", None)]
    assert votes[0].voter_email == "v@example.com"
    with db.read(store.engine) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.review_votes)).scalar() == 2


def test_votes_outside_a_pair_or_by_no_role_are_refused(store: Store) -> None:
    reviews = ReviewStore(store)
    review = reviews.create("r", finished_jobs(store), MAKER)
    me = voter_key(VIEWER, None)
    other_prompt = next(i.idx for i in review.items if i.prompt != review.items[0].prompt)
    assert reviews.vote(review, VIEWER, me, 0, other_prompt, "left") == "not_a_pair"
    assert reviews.vote(review, VIEWER, me, 0, 0, "left") == "not_a_pair"
    assert reviews.vote(review, VIEWER, me, 0, 99, "left") == "not_a_pair"
    nobody = Identity(user_id="u-x", email="x@example.com", name="X", role="none")
    with pytest.raises(PermissionDenied):
        reviews.vote(review, nobody, voter_key(nobody, None), 0, 1, "left")
    with pytest.raises(ReviewError, match="reload"):
        voter_key(LOCAL_OPERATOR, None)
    assert reviews.votes(review.id) == []


def test_only_its_maker_or_an_owner_closes_a_review_and_then_no_vote_counts(store: Store) -> None:
    reviews = ReviewStore(store)
    review = reviews.create("r", finished_jobs(store), MAKER)
    with pytest.raises(PermissionDenied):
        reviews.close(review.id, OTHER_MAKER)
    with pytest.raises(PermissionDenied):
        reviews.close(review.id, VIEWER)
    assert reviews.get(review.id).closed_at is None
    reviews.close(review.id, MAKER)
    closed = reviews.get(review.id)
    assert closed.closed
    assert reviews.vote(closed, VIEWER, voter_key(VIEWER, None), 0, 1, "left") == "closed"
    second = reviews.create("r2", finished_jobs(store), MAKER)
    reviews.close(second.id, OWNER)
    assert reviews.get(second.id).closed


def test_migration_5_adds_the_review_tables_to_a_version_4_database(store: Store) -> None:
    jobs = finished_jobs(store)
    with db.write(store.engine) as conn:
        db.metadata.drop_all(conn, tables=list(db.REVIEW_TABLES))
        conn.execute(db.schema_version.update().values(version=4))
    assert not sa.inspect(store.engine).has_table("reviews")
    assert db.migrate(store.engine) == db.SCHEMA_VERSION
    review = ReviewStore(store).create("after migration", jobs, MAKER)
    assert len(review.items) == 6
    assert sa.inspect(store.engine).has_table("edit_spill")


def test_deleting_the_jobs_keeps_the_reviews_images_and_votes(store: Store) -> None:
    reviews = ReviewStore(store)
    jobs = finished_jobs(store)
    review = reviews.create("r", jobs, MAKER)
    reviews.vote(review, VIEWER, voter_key(VIEWER, None), 0, 1, "left")
    store.delete_jobs(jobs)
    assert store.get_jobs(jobs) == []
    kept = reviews.get(review.id)
    assert kept == review and len(reviews.votes(review.id)) == 1
    assert all((p := reviews.image_path(i)) is not None and p.exists() for i in kept.items)

"""Reviews in the history database: their images, their votes, who may make, vote on and close one.

A review is made from finished jobs (an experiment's grid, a History selection): every image
becomes an *item* with its prompt and its *candidate* (provider x model x quality) and that
candidate's price per image. The candidate and price stay here, on the server: a voter's page
gets items by number and image bytes only (``core.review.blind``).

Votes are stored as they are cast, one per voter per pair (a unique constraint, whichever side
each image was shown on), so a refresh or a second tab cannot vote twice; the results are
always recomputed from the stored votes (``core.review.results``), so a review is reproducible.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

import clock
from core import db
from core.accounts import Identity, PermissionDenied
from core.history.store import Store
from core.history.views import JobView, new_id
from core.spend.money import parse_decimal

__all__ = [
    "CHOICES",
    "Choice",
    "Item",
    "Review",
    "ReviewError",
    "ReviewStore",
    "StoredVote",
    "VoteOutcome",
    "price_per_image",
    "voter_key",
]

Choice = Literal["left", "right", "tie"]
CHOICES: tuple[Choice, ...] = ("left", "right", "tie")
VoteOutcome = Literal["recorded", "already_voted", "closed", "not_a_pair"]
MAX_COMMENT = 2000


class ReviewError(ValueError):
    """A review that cannot be made or used as asked (the message says what to do instead)."""


@dataclass(frozen=True)
class Item:
    idx: int
    job_id: str
    image_idx: int
    sha256: str
    prompt: str
    provider: str
    model: str
    quality: str
    price: Decimal | None  # per image

    @property
    def candidate(self) -> str:
        return f"{self.provider}|{self.model}|{self.quality}"


@dataclass(frozen=True)
class Review:
    id: str
    token: str
    name: str
    created_by: str
    created_by_email: str | None
    created_at: datetime
    seed: int
    closed_at: datetime | None
    items: tuple[Item, ...]

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    def item(self, idx: int) -> Item | None:
        return next((i for i in self.items if i.idx == idx), None)


@dataclass(frozen=True)
class StoredVote:
    voter: str
    voter_email: str | None
    left: int  # item numbers as shown
    right: int
    choice: Choice
    comment: str | None
    created_at: datetime

    @property
    def pair(self) -> tuple[int, int]:
        return (min(self.left, self.right), max(self.left, self.right))


def price_per_image(job: JobView) -> Decimal | None:
    """What one image of this job cost: the billed amount when reported, else the estimate."""
    money = job.billed if job.billed is not None and job.billed.usd is not None else job.estimate
    if money is None or money.usd is None:
        return None
    return money.usd / max(1, len(job.images) or job.n)


def voter_key(identity: Identity, browser_id: str | None) -> str:
    """Who votes: a signed-in person by their user id; without sign-in, the browser (a cookie's random id)."""
    if identity.email:
        return f"user:{identity.user_id}"
    if not browser_id:
        raise ReviewError("This browser has no voter id yet: reload the page to vote.")
    return f"browser:{browser_id[:64]}"


class ReviewStore:
    """Reviews over the history store's database and files."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine

    # --- making and closing ------------------------------------------------------------------------
    def create(self, name: str, job_ids: Sequence[str], by: Identity, *, seed: int | None = None) -> Review:
        """A review of every image of these finished jobs; a prompt needs two candidates to make a pair."""
        by.require("generate")
        jobs = [j for j in self.store.get_jobs(list(dict.fromkeys(job_ids))) if j.status == "succeeded" and j.images]
        rows: list[dict[str, Any]] = []
        for job in jobs:
            price = price_per_image(job)
            for image in job.images:
                rows.append({"job_id": job.id, "image_idx": image.idx, "sha256": image.sha256, "prompt": job.prompt,
                             "provider": job.provider, "model": job.model, "quality": job.quality,
                             "price_usd": None if price is None else str(price)})
        by_prompt: dict[str, set[tuple[str, str, str]]] = {}
        for r in rows:
            by_prompt.setdefault(r["prompt"], set()).add((r["provider"], r["model"], r["quality"]))
        if not any(len(c) >= 2 for c in by_prompt.values()):
            raise ReviewError(
                "A review needs images of at least two different candidates (provider, model or quality) for one "
                "prompt. Pick finished images of the same prompt from two or more of them."
            )
        # Prompts with a single candidate could never be paired: they are left out.
        rows = [r for r in rows if len(by_prompt[r["prompt"]]) >= 2]
        review_id = new_id()
        now = clock.now()
        with db.write(self.engine) as conn:
            conn.execute(db.reviews.insert(), [{
                "id": review_id, "token": secrets.token_urlsafe(24), "name": name.strip()[:200] or "Review",
                "created_by": by.user_id, "created_by_email": by.email, "created_at": now,
                "seed": secrets.randbits(62) if seed is None else seed, "closed_at": None, "closed_by": None,
            }])
            conn.execute(db.review_items.insert(),
                         [{"review_id": review_id, "idx": i, **r} for i, r in enumerate(rows)])
        found = self.get(review_id)
        assert found is not None
        return found

    def may_close(self, review: Review, by: Identity) -> bool:
        return (by.user_id == review.created_by and by.can("generate")) or by.can("delete_any")

    def close(self, review_id: str, by: Identity) -> None:
        """Stop taking votes (the review's maker, or an owner). Votes and results stay."""
        review = self.get(review_id)
        if review is None:
            raise ReviewError("That review no longer exists.")
        if not self.may_close(review, by):
            raise PermissionDenied(by, "delete_any")
        with db.write(self.engine) as conn:
            conn.execute(db.reviews.update().where(db.reviews.c.id == review_id, db.reviews.c.closed_at.is_(None))
                         .values(closed_at=clock.now(), closed_by=by.user_id))

    # --- reading ------------------------------------------------------------------------------------
    def get(self, review_id: str) -> Review | None:
        with db.read(self.engine) as conn:
            return self._load(conn, db.reviews.c.id == review_id)

    def by_token(self, token: str) -> Review | None:
        if not token or len(token) > 64:
            return None
        with db.read(self.engine) as conn:
            return self._load(conn, db.reviews.c.token == token)

    def list_reviews(self) -> list[Review]:
        with db.read(self.engine) as conn:
            ids = conn.execute(sa.select(db.reviews.c.id).order_by(db.reviews.c.created_at.desc())).scalars().all()
            out = [self._load(conn, db.reviews.c.id == i) for i in ids]
        return [r for r in out if r is not None]

    @staticmethod
    def _load(conn: Connection, where: sa.ColumnElement[bool]) -> Review | None:
        row = conn.execute(sa.select(db.reviews).where(where)).first()
        if row is None:
            return None
        ic = db.review_items.c
        items = tuple(
            Item(idx=r.idx, job_id=r.job_id, image_idx=r.image_idx, sha256=r.sha256, prompt=r.prompt,
                 provider=r.provider, model=r.model, quality=r.quality, price=parse_decimal(r.price_usd))
            for r in conn.execute(sa.select(db.review_items).where(ic.review_id == row.id).order_by(ic.idx))
        )
        return Review(id=row.id, token=row.token, name=row.name, created_by=row.created_by,
                      created_by_email=row.created_by_email, created_at=db.as_utc(row.created_at) or clock.now(),
                      seed=int(row.seed), closed_at=db.as_utc(row.closed_at), items=items)

    def votes(self, review_id: str, voter: str | None = None) -> list[StoredVote]:
        v = db.review_votes.c
        query = sa.select(db.review_votes).where(v.review_id == review_id)
        if voter is not None:
            query = query.where(v.voter == voter)
        with db.read(self.engine) as conn:
            rows = conn.execute(query.order_by(v.created_at, v.id)).all()
        return [StoredVote(voter=r.voter, voter_email=r.voter_email, left=r.left_item, right=r.right_item,
                           choice=r.choice, comment=r.comment, created_at=db.as_utc(r.created_at) or clock.now())
                for r in rows]

    def image_path(self, item: Item) -> Path | None:
        with db.read(self.engine) as conn:
            rel = conn.execute(sa.select(db.images.c.path).where(db.images.c.sha256 == item.sha256)).scalar()
        return None if rel is None else self.store.data_dir / rel

    # --- voting ---------------------------------------------------------------------------------------
    def vote(
        self,
        review: Review,
        by: Identity,
        voter: str,
        left: int,
        right: int,
        choice: Choice,
        comment: str | None = None,
    ) -> VoteOutcome:
        """Store one vote as it is cast; a second vote of this voter on this pair changes nothing."""
        by.require("rate")
        if choice not in CHOICES:
            raise ReviewError(f"A vote is left, right or tie, not {choice!r}.")
        a, b = review.item(left), review.item(right)
        if a is None or b is None or left == right or a.prompt != b.prompt or a.candidate == b.candidate:
            return "not_a_pair"
        text = (comment or "").strip()[:MAX_COMMENT] or None
        try:
            with db.write(self.engine) as conn:
                closed = conn.execute(sa.select(db.reviews.c.closed_at).where(db.reviews.c.id == review.id)).first()
                if closed is None or closed[0] is not None:
                    return "closed"
                conn.execute(db.review_votes.insert(), [{
                    "id": new_id(), "review_id": review.id, "voter": voter, "voter_email": by.email,
                    "item_a": min(left, right), "item_b": max(left, right), "left_item": left, "right_item": right,
                    "choice": choice, "comment": text, "created_at": clock.now(),
                }])
        except IntegrityError:
            return "already_voted"
        return "recorded"

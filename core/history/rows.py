"""Rows to views and filters to queries: what the pages' store and the runner's transitions share.

Plain functions over a connection, no transaction of their own: the caller's
``db.read``/``db.write`` decides what is atomic.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from core import db
from core.history import search
from core.history.files import ImageInfo
from core.history.views import ImageView, JobFilter, JobView, Money
from core.jobs.lifecycle import Status
from core.spend.money import nanos_to_usd, parse_decimal

__all__ = ["filtered", "insert_image", "job_views"]


def insert_image(conn: Connection, info: ImageInfo, now: datetime) -> None:
    """The ``images`` row of a file just stored (once per content; a thumbnail made later is added)."""
    exists = conn.execute(sa.select(db.images.c.sha256).where(db.images.c.sha256 == info.sha256)).first()
    if exists is None:
        conn.execute(
            db.images.insert(),
            [
                {
                    "sha256": info.sha256,
                    "format": info.format,
                    "width": info.width,
                    "height": info.height,
                    "bytes": info.bytes,
                    "path": info.path,
                    "thumb_path": info.thumb_path,
                    "created_at": now,
                }
            ],
        )
    elif info.thumb_path is not None:
        conn.execute(
            db.images.update()
            .where(db.images.c.sha256 == info.sha256, db.images.c.thumb_path.is_(None))
            .values(thumb_path=info.thumb_path)
        )


def _column_filters(f: JobFilter) -> list[sa.ColumnElement[bool]]:
    j = db.jobs.c
    conds: list[sa.ColumnElement[bool]] = []
    if f.providers:
        conds.append(j.provider.in_(f.providers))
    if f.models:
        conds.append(j.model.in_(f.models))
    if f.qualities:
        conds.append(j.quality.in_(f.qualities))
    if f.statuses:
        conds.append(j.status.in_(f.statuses))
    if f.endpoint:
        conds.append(j.endpoint == f.endpoint)
    if f.since is not None:
        conds.append(j.queued_at >= f.since)
    if f.until is not None:
        conds.append(j.queued_at < f.until)
    if f.run_id:
        conds.append(j.run_id == f.run_id)
    if f.visible_to is not None:
        own = j.user_id == f.visible_to
        conds.append(own if f.mine_only else sa.or_(own, j.shared.is_(True)))
    return conds


def filtered(query: sa.Select[Any], f: JobFilter, *, indexed: bool = False) -> sa.Select[Any]:
    """``query`` over ``jobs`` narrowed by the History filters.

    ``indexed``: the database has SQLite's search index (``search.available``), which narrows a text
    search to the jobs it finds before the ILIKE below decides, so the matches are the same.
    """
    j = db.jobs.c
    query = query.where(*_column_filters(f))
    if f.text:
        escaped = f.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(j.prompt.ilike(f"%{escaped}%", escape="\\"))
        if indexed and search.usable(f.text):
            query = query.where(j.id.in_(search.matching_job_ids(f.text)))
    if f.min_rating is not None:
        rated = sa.exists().where(db.job_images.c.job_id == j.id, db.job_images.c.rating >= f.min_rating)
        query = query.where(sa.or_(j.rating >= f.min_rating, rated))
    if f.winners_only:
        query = query.where(sa.exists().where(db.job_images.c.job_id == j.id, db.job_images.c.winner.is_(True)))
    if f.experiment_id:
        query = query.where(j.run_id.in_(sa.select(db.runs.c.id).where(db.runs.c.experiment_id == f.experiment_id)))
    return query


def job_views(conn: Connection, rows: Sequence[RowMapping], data_dir: Path) -> list[JobView]:
    """Views of ``jobs`` rows with their images (one query for all of them)."""
    ids = [r["id"] for r in rows]
    images: dict[str, list[ImageView]] = {i: [] for i in ids}
    if ids:
        q = (
            sa.select(db.job_images, db.images)
            .join(db.images, db.images.c.sha256 == db.job_images.c.sha256)
            .where(db.job_images.c.job_id.in_(ids))
            .order_by(db.job_images.c.job_id, db.job_images.c.idx)
        )
        for r in conn.execute(q).mappings():
            images[r["job_id"]].append(
                ImageView(
                    idx=r["idx"],
                    sha256=r["sha256"],
                    format=r["format"],
                    width=r["width"],
                    height=r["height"],
                    bytes=r["bytes"],
                    path=data_dir / r["path"],
                    thumb_path=data_dir / r["thumb_path"] if r["thumb_path"] else None,
                    source_url=r["source_url"],
                    rating=r["rating"],
                    winner=bool(r["winner"]),
                )
            )
    return [_job_view(r, tuple(images[r["id"]])) for r in rows]


def _money(r: RowMapping) -> tuple[Money | None, Money | None]:
    estimate = None
    if r["estimate_usd_nanos"] is not None or r["estimate_amount"] is not None:
        estimate = Money(nanos_to_usd(r["estimate_usd_nanos"]), parse_decimal(r["estimate_amount"]), r["estimate_unit"])
    billed = None
    if r["billed_estimated"] is not None:
        billed = Money(
            nanos_to_usd(r["billed_usd_nanos"]),
            parse_decimal(r["billed_amount"]),
            r["billed_unit"],
            estimated=bool(r["billed_estimated"]),
        )
    return estimate, billed


def _job_view(r: RowMapping, images: tuple[ImageView, ...]) -> JobView:
    estimate, billed = _money(r)
    return JobView(
        id=r["id"],
        run_id=r["run_id"],
        seq=r["seq"],
        provider=r["provider"],
        model=r["model"],
        quality=r["quality"],
        size=r["size"],
        endpoint=r["endpoint"],
        prompt=r["prompt"],
        variables=r["variables"],
        n=r["n"],
        status=cast(Status, r["status"]),
        provider_job_id=r["provider_job_id"],
        progress=r["progress"],
        expected_seconds=r["expected_seconds"],
        can_cancel=bool(r["can_cancel"]),
        cancel_requested=bool(r["cancel_requested"]),
        attempts=r["attempts"],
        queued_at=r["queued_at"],
        submitted_at=r["submitted_at"],
        finished_at=r["finished_at"],
        updated_at=r["updated_at"],
        error_kind=r["error_kind"],
        error_message=r["error_message"],
        error_detail=r["error_detail"],
        estimate=estimate,
        billed=billed,
        rating=r["rating"],
        parent_job_id=r["parent_job_id"],
        claimed_by=r["claimed_by"],
        images=images,
        provider_seconds=r["provider_seconds"],
        error_stage=r["error_stage"],
        error_billed=r["error_billed"],
        error_retry_after=r["error_retry_after"],
        error_status_code=r["error_status_code"],
        error_code=r["error_code"],
        error_sent=r["error_sent"],
        user_id=r["user_id"],
        shared=bool(r["shared"]),
        key_holder=r["key_holder"],
    )

"""The history store for pages: runs, jobs, images and the ledger, read and edited in short transactions.

Pages read it (``get_job``, ``list_jobs``, ``spend``...) to show live state and
edit what people own (ratings, budget caps, deletion). What the job runner
writes (claims and the guarded transitions of a running job) is
``core.jobs.claims.JobClaims``, over the same database; the dataclasses handed
out and taken in are in ``core.history.views``.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import statistics
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping

import clock
from core import config, db
from core.accounts.identity import LOCAL_OPERATOR, Identity, PermissionDenied
from core.history import search
from core.history.files import FORMAT_BY_MIME, FileStore, ImageInfo
from core.history.rows import filtered, insert_image, job_views
from core.history.views import (
    Deleted,
    InputView,
    JobFilter,
    JobView,
    NewJob,
    RunView,
    new_id,
)
from core.jobs.lifecycle import ACTIVE_STATES
from core.spend import budget
from core.spend.money import usd_to_nanos
from providers.types import ImageRequest, InputImage

__all__ = ["PermissionDenied", "Store"]

_NEWEST_FIRST = (db.jobs.c.queued_at.desc(), db.jobs.c.id.desc())
SEARCH_WINDOW = 2000  # jobs an indexed search reads in time order before it asks the index (list_jobs)

_migrated: set[str] = set()
_migrate_lock = threading.Lock()


class Store:
    """The history database plus the image files beside it."""

    def __init__(self, url: str | None = None, data_dir: Path | str | None = None) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else config.data_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.url = db.normalize_url(url or _default_url(self.data_dir))
        self.engine: Engine = db.get_engine(self.url)
        self.files = FileStore(self.data_dir)
        with _migrate_lock:
            if self.url not in _migrated:
                db.migrate(self.engine)
                _migrated.add(self.url)
        with db.read(self.engine) as conn:
            self._indexed_search = search.available(conn)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name  # sqlite / postgresql

    # --- creating -------------------------------------------------------------------
    def create_run(
        self,
        *,
        provider: str,
        endpoint: str,
        request: ImageRequest,
        jobs: Sequence[NewJob],
        template: str | None = None,
        variables: Sequence[Mapping[str, Any]] | None = None,
        can_cancel: bool = False,
        label: str | None = None,
        experiment_id: str | None = None,
        parent_job_id: str | None = None,
        claim: tuple[str, float] | None = None,
        now: datetime | None = None,
        user_id: str | None = None,
        key_holder: str | None = None,
        member_daily_cap: bool = False,
    ) -> tuple[str, list[str]]:
        """Insert a run, its jobs and their reservations in one transaction.

        Raises ``budget.BudgetExceeded`` (and inserts nothing) when the estimates
        do not fit. Input images go to the file store first, so a queued job can
        be sent after a restart. ``claim`` (owner, lease seconds) hands the jobs
        to one runner from the start (the key they need lives in its memory).
        ``user_id`` is who asked (their spend, their history), ``key_holder`` whose key
        the jobs are sent with (``db.jobs``); ``member_daily_cap`` holds the asker to the
        per-member daily cap too (a signed-in member, not the local operator).
        """
        if not jobs:
            raise ValueError("a run needs at least one job")
        now = now or clock.now()
        inputs = self._store_inputs(request)
        run_id = new_id()
        run_row = {
            "id": run_id,
            "created_at": now,
            "kind": "edit" if request.is_edit else "generate",
            "provider": provider,
            "model": request.model,
            "endpoint": endpoint,
            "prompt": template if template is not None else request.prompt,
            "template": template,
            "variables": [dict(v) for v in variables] if variables is not None else None,
            "params": request.params(),
            "n": sum(j.n for j in jobs),
            "label": label,
            "experiment_id": experiment_id,
            "parent_job_id": parent_job_id,
            "user_id": user_id,
        }
        job_rows = []
        for seq, job in enumerate(jobs):
            est = job.estimate
            job_rows.append(
                {
                    "id": job.id,
                    "run_id": run_id,
                    "seq": seq,
                    "provider": provider,
                    "model": request.model,
                    "quality": job.quality,
                    "size": job.size,
                    "endpoint": endpoint,
                    "prompt": job.prompt,
                    "variables": dict(job.variables) if job.variables is not None else None,
                    "n": job.n,
                    "status": "queued",
                    "idempotency_key": f"imagestudio-{job.id}",
                    "expected_seconds": job.expected_seconds,
                    "can_cancel": can_cancel,
                    "cancel_requested": False,
                    "attempts": 0,
                    "queued_at": now,
                    "updated_at": now,
                    "estimate_usd_nanos": None
                    if est is None or est.usd is None
                    else usd_to_nanos(est.usd, round_up=True),
                    "estimate_amount": None if est is None or est.amount is None else str(est.amount),
                    "estimate_unit": None if est is None else est.unit,
                    "parent_job_id": parent_job_id,
                    "claimed_by": claim[0] if claim else None,
                    "claim_expires_at": now + timedelta(seconds=claim[1]) if claim else None,
                    "user_id": user_id,
                    "shared": False,
                    "key_holder": key_holder,
                }
            )
        reservations = [
            budget.Reservation(
                job_id=job.id,
                run_id=run_id,
                provider=provider,
                endpoint=endpoint,
                usd=None if job.estimate is None else job.estimate.usd,
                user_id=user_id,
            )
            for job in jobs
        ]
        with db.write(self.engine) as conn:
            budget.reserve(conn, reservations, now=now, member=user_id if member_daily_cap else None)
            if parent_job_id is None:
                # Edit chains: an input that is an earlier job's output makes that job the parent.
                found = self._job_with_output(conn, [r["sha256"] for r, _ in inputs if r["role"] == "image"])
                if found is not None:
                    run_row["parent_job_id"] = found
                    for row in job_rows:
                        row["parent_job_id"] = found
            conn.execute(db.runs.insert(), [run_row])
            if inputs:
                conn.execute(db.run_inputs.insert(), [{"run_id": run_id, **row} for row, _ in inputs])
                for _, info in inputs:
                    if info is not None:
                        insert_image(conn, info, now)
            conn.execute(db.jobs.insert(), job_rows)
        return run_id, [job.id for job in jobs]

    def _store_inputs(self, request: ImageRequest) -> list[tuple[dict[str, Any], ImageInfo | None]]:
        out: list[tuple[dict[str, Any], ImageInfo | None]] = []
        items: list[tuple[str, InputImage]] = [("image", img) for img in request.images]
        if request.mask is not None:
            items.append(("mask", request.mask))
        for idx, (role, img) in enumerate(items):
            info = None
            if img.data is not None:
                info = self.files.put(img.data, FORMAT_BY_MIME.get(img.mime or "", None))
            out.append(
                (
                    {
                        "idx": idx,
                        "role": role,
                        "sha256": info.sha256 if info else None,
                        "url": img.url,
                        "mime": img.mime,
                        "name": img.name,
                    },
                    info,
                )
            )
        return out

    @staticmethod
    def _job_with_output(conn: Connection, shas: Sequence[str | None]) -> str | None:
        wanted = [s for s in shas if s]
        if not wanted:
            return None
        return conn.execute(
            sa.select(db.job_images.c.job_id).where(db.job_images.c.sha256.in_(wanted)).limit(1)
        ).scalar()

    def delete_jobs(self, job_ids: Iterable[str], *, by: Identity = LOCAL_OPERATOR) -> Deleted:
        """Delete finished jobs (runs left empty go too) and the files nothing else uses.

        Jobs still running are skipped and reported (cancel them first). The
        ledger keeps their spend: deleting history never gives budget back.
        ``by`` may delete their own jobs (``delete_own``) or anyone's (``delete_any``):
        one job that is not theirs refuses the whole deletion (``PermissionDenied``).
        """
        by.require("delete_own")
        ids = list(dict.fromkeys(job_ids))
        if not ids:
            return Deleted((), (), 0, 0)
        j, ji, ri = db.jobs.c, db.job_images.c, db.run_inputs.c
        orphans: list[str] = []
        kept = 0
        with db.write(self.engine) as conn:
            rows = conn.execute(sa.select(j.id, j.run_id, j.status, j.user_id).where(j.id.in_(ids))).all()
            for row in rows:
                by.require_on("delete_own", row.user_id, "delete this job")
            active = tuple(r.id for r in rows if r.status in ACTIVE_STATES)
            doomed = [r.id for r in rows if r.status not in ACTIVE_STATES]
            if not doomed:
                return Deleted((), active, 0, 0)
            shas = set(conn.execute(sa.select(ji.sha256).where(ji.job_id.in_(doomed))).scalars())
            conn.execute(db.job_images.delete().where(ji.job_id.in_(doomed)))
            conn.execute(db.jobs.delete().where(j.id.in_(doomed)))
            # A run with no job left goes too, and with it the input images only it referenced.
            run_ids = {r.run_id for r in rows if r.status not in ACTIVE_STATES}
            empty = [
                r for r in run_ids if conn.execute(sa.select(j.id).where(j.run_id == r).limit(1)).first() is None
            ]
            if empty:
                shas |= {s for s in conn.execute(sa.select(ri.sha256).where(ri.run_id.in_(empty))).scalars() if s}
                conn.execute(db.run_inputs.delete().where(ri.run_id.in_(empty)))
                conn.execute(db.runs.delete().where(db.runs.c.id.in_(empty)))
            for sha in sorted(shas):
                used = conn.execute(sa.select(ji.job_id).where(ji.sha256 == sha).limit(1)).first() or conn.execute(
                    sa.select(ri.run_id).where(ri.sha256 == sha).limit(1)
                ).first() or conn.execute(  # a blind review still shows it
                    sa.select(db.review_items.c.review_id).where(db.review_items.c.sha256 == sha).limit(1)
                ).first()
                if used is not None:
                    kept += 1
                    continue
                conn.execute(db.images.delete().where(db.images.c.sha256 == sha))
                orphans.append(sha)
        # Files go after the commit: a crash in between leaves a stray file, never a row without its file.
        for sha in orphans:
            with db.read(self.engine) as conn:
                if conn.execute(sa.select(db.images.c.sha256).where(db.images.c.sha256 == sha)).first():
                    continue  # stored again meanwhile by a new job
            self.files.delete(sha)
        return Deleted(tuple(doomed), active, len(orphans), kept)

    def delete_run(self, run_id: str, *, by: Identity = LOCAL_OPERATOR) -> Deleted:
        return self.delete_jobs(self.job_ids_for_run(run_id), by=by)

    def create_experiment(self, name: str, notes: str = "", *, user_id: str | None = None) -> str:
        exp_id = new_id()
        with db.write(self.engine) as conn:
            conn.execute(
                db.experiments.insert(),
                [{"id": exp_id, "name": name, "notes": notes, "created_at": clock.now(), "user_id": user_id,
                  "shared": False}],
            )
        return exp_id

    # --- sharing --------------------------------------------------------------------
    def share_jobs(self, job_ids: Sequence[str], shared: bool, *, by: Identity = LOCAL_OPERATOR) -> int:
        """Show jobs to the whole team (or make them private again): their maker's or an owner's call."""
        with db.write(self.engine) as conn:
            rows = conn.execute(sa.select(db.jobs.c.id, db.jobs.c.user_id).where(db.jobs.c.id.in_(list(job_ids))))
            ids = []
            for row in rows:
                by.require_on("generate", row.user_id, "share this job")
                ids.append(row.id)
            if ids:
                conn.execute(db.jobs.update().where(db.jobs.c.id.in_(ids)).values(shared=shared))
        return len(ids)

    def share_link(self, kind: str, target_id: str, *, by: Identity = LOCAL_OPERATOR) -> str:
        """A token for a read-only link to one job or experiment (its maker's or an owner's to give)."""
        if kind not in ("job", "experiment"):
            raise ValueError("a share link is to a job or an experiment")
        table = db.jobs if kind == "job" else db.experiments
        with db.write(self.engine) as conn:
            made_by = conn.execute(sa.select(table.c.user_id).where(table.c.id == target_id)).first()
            if made_by is None:
                raise ValueError(f"no such {kind}")
            by.require_on("generate", made_by[0], f"share this {kind}")
            found = conn.execute(sa.select(db.shares.c.token).where(
                db.shares.c.kind == kind, db.shares.c.target_id == target_id)).scalar()
            if found is not None:
                return str(found)
            token = secrets.token_urlsafe(24)
            conn.execute(db.shares.insert(), [{"token": token, "kind": kind, "target_id": target_id,
                                               "created_by": by.user_id, "created_at": clock.now()}])
        return token

    def open_share(self, token: str) -> tuple[str, str] | None:
        """(kind, target id) a share link's token opens, or None."""
        if not token or len(token) > 64:
            return None
        with db.read(self.engine) as conn:
            row = conn.execute(sa.select(db.shares.c.kind, db.shares.c.target_id)
                               .where(db.shares.c.token == token)).first()
        return None if row is None else (str(row.kind), str(row.target_id))

    # --- reading --------------------------------------------------------------------
    def get_job(self, job_id: str) -> JobView | None:
        jobs = self.get_jobs([job_id])
        return jobs[0] if jobs else None

    def get_jobs(self, job_ids: Sequence[str]) -> list[JobView]:
        """Jobs by id, in the order given (missing ones are left out)."""
        if not job_ids:
            return []
        with db.read(self.engine) as conn:
            rows = conn.execute(sa.select(db.jobs).where(db.jobs.c.id.in_(list(job_ids)))).mappings().all()
            views = job_views(conn, rows, self.data_dir)
        by_id = {v.id: v for v in views}
        return [by_id[i] for i in job_ids if i in by_id]

    def list_jobs(self, flt: JobFilter | None = None, *, limit: int = 50, offset: int = 0) -> list[JobView]:
        """Newest first, one page at a time."""
        flt = flt or JobFilter()
        with db.read(self.engine) as conn:
            rows = self._page_among_newest(conn, flt, limit, offset)
            if rows is None:
                query = filtered(sa.select(db.jobs), flt, indexed=self._indexed_search)
                rows = conn.execute(query.order_by(*_NEWEST_FIRST).limit(limit).offset(offset)).mappings().all()
            return job_views(conn, rows, self.data_dir)

    def _page_among_newest(
        self, conn: Connection, flt: JobFilter, limit: int, offset: int
    ) -> Sequence[RowMapping] | None:
        """An indexed search's page when the newest ``SEARCH_WINDOW`` jobs hold it all, else None.

        The index finds every match, and ordering thousands of them by time costs more than reading the
        newest jobs in order until a page is full, which a common word does at once. Every job outside the
        window is older than all inside it, so a page found inside is the page.
        """
        if not (self._indexed_search and flt.text and search.usable(flt.text)):
            return None
        j = db.jobs.c
        edge = conn.execute(sa.select(j.queued_at).order_by(*_NEWEST_FIRST).offset(SEARCH_WINDOW - 1).limit(1))
        cutoff = edge.scalar()
        query = filtered(sa.select(db.jobs), flt)  # LIKE over the window (on ix_jobs_queued), not the index
        if cutoff is not None:
            query = query.where(j.queued_at >= cutoff)
        rows = conn.execute(query.order_by(*_NEWEST_FIRST).limit(limit).offset(offset)).mappings().all()
        return rows if cutoff is None or len(rows) == limit else None

    def count_jobs(self, flt: JobFilter | None = None) -> int:
        query = filtered(sa.select(sa.func.count()).select_from(db.jobs), flt or JobFilter(),
                         indexed=self._indexed_search)
        with db.read(self.engine) as conn:
            return int(conn.execute(query).scalar_one())

    def get_run(self, run_id: str, *, with_jobs: bool = True) -> RunView | None:
        with db.read(self.engine) as conn:
            r = conn.execute(sa.select(db.runs).where(db.runs.c.id == run_id)).mappings().first()
            if r is None:
                return None
            inputs = (
                conn.execute(
                    sa.select(db.run_inputs).where(db.run_inputs.c.run_id == run_id).order_by(db.run_inputs.c.idx)
                )
                .mappings()
                .all()
            )
            jobs: list[JobView] = []
            if with_jobs:
                rows = (
                    conn.execute(sa.select(db.jobs).where(db.jobs.c.run_id == run_id).order_by(db.jobs.c.seq))
                    .mappings()
                    .all()
                )
                jobs = job_views(conn, rows, self.data_dir)
        return RunView(
            id=r["id"],
            created_at=r["created_at"],
            kind=r["kind"],
            provider=r["provider"],
            model=r["model"],
            endpoint=r["endpoint"],
            prompt=r["prompt"],
            template=r["template"],
            variables=r["variables"],
            params=r["params"],
            n=r["n"],
            label=r["label"],
            experiment_id=r["experiment_id"],
            parent_job_id=r["parent_job_id"],
            inputs=tuple(
                InputView(
                    idx=i["idx"],
                    role=i["role"],
                    sha256=i["sha256"],
                    url=i["url"],
                    mime=i["mime"],
                    name=i["name"],
                    path=self.files.find(i["sha256"]) if i["sha256"] else None,
                )
                for i in inputs
            ),
            jobs=tuple(jobs),
        )

    def load_request(self, job_id: str) -> ImageRequest:
        """The request one job sends, rebuilt from the store (input images from their files)."""
        with db.read(self.engine) as conn:
            job = conn.execute(sa.select(db.jobs).where(db.jobs.c.id == job_id)).mappings().one()
            run = conn.execute(sa.select(db.runs).where(db.runs.c.id == job["run_id"])).mappings().one()
            inputs = (
                conn.execute(
                    sa.select(db.run_inputs)
                    .where(db.run_inputs.c.run_id == job["run_id"])
                    .order_by(db.run_inputs.c.idx)
                )
                .mappings()
                .all()
            )
        known = {f.name for f in dataclasses.fields(ImageRequest)} - {"prompt", "n", "images", "mask"}
        params = {k: v for k, v in (run["params"] or {}).items() if k in known}
        images: list[InputImage] = []
        mask: InputImage | None = None
        for i in inputs:
            if i["sha256"]:
                img = InputImage(data=self.files.read(i["sha256"]), mime=i["mime"], name=i["name"] or "image.png")
            else:
                img = InputImage(url=i["url"], name=i["name"] or "image.png")
            if i["role"] == "mask":
                mask = img
            else:
                images.append(img)
        return ImageRequest(prompt=job["prompt"], n=job["n"], images=tuple(images), mask=mask, **params)

    def job_ids_for_run(self, run_id: str) -> list[str]:
        with db.read(self.engine) as conn:
            return list(
                conn.execute(
                    sa.select(db.jobs.c.id).where(db.jobs.c.run_id == run_id).order_by(db.jobs.c.seq)
                ).scalars()
            )

    def learned_seconds(
        self, provider: str, model: str, quality: str, endpoint: str, *, sample: int = 50
    ) -> float | None:
        """Median time the provider took for the latest successful jobs like this one, or None.

        That is ``provider_seconds`` (when the polls saw it done), not submit-to-finish: a
        finish includes how late the job was seen and its download, and learning those would
        push every next estimate later, so polling would see each job later still. Rows from
        before that column fall back on submit-to-finish.
        """
        j = db.jobs.c
        query = (
            sa.select(j.submitted_at, j.finished_at, j.provider_seconds)
            .where(
                j.provider == provider,
                j.model == model,
                j.quality == quality,
                j.endpoint == endpoint,
                j.status == "succeeded",
                j.submitted_at.is_not(None),
                j.finished_at.is_not(None),
            )
            .order_by(j.finished_at.desc())
            .limit(sample)
        )
        with db.read(self.engine) as conn:
            durations = [p if p is not None else (f - s).total_seconds() for s, f, p in conn.execute(query)]
        durations = [d for d in durations if d >= 0]
        return statistics.median(durations) if durations else None

    # --- ratings --------------------------------------------------------------------
    def set_rating(
        self, job_id: str, rating: int | None, *, idx: int | None = None, by: Identity = LOCAL_OPERATOR
    ) -> None:
        """Rate a job's result (``idx``: one of its images) from 1 to 5; None clears."""
        by.require("rate")
        if rating is not None and not 1 <= rating <= 5:
            raise ValueError("a rating is 1 to 5")
        with db.write(self.engine) as conn:
            if idx is None:
                conn.execute(db.jobs.update().where(db.jobs.c.id == job_id).values(rating=rating))
            else:
                conn.execute(
                    db.job_images.update()
                    .where(db.job_images.c.job_id == job_id, db.job_images.c.idx == idx)
                    .values(rating=rating)
                )

    # --- budget ---------------------------------------------------------------------
    def spend(self, endpoint: str = "live", *, member: str | None = None) -> budget.Spend:
        """The team's spend and caps; ``member`` (a user id) adds what that member has left today."""
        with db.read(self.engine) as conn:
            return budget.spend(conn, endpoint, member=member)

    def get_caps(self) -> budget.Caps:
        with db.read(self.engine) as conn:
            return budget.get_caps(conn)

    def set_caps(
        self, daily: Decimal | None, total: Decimal | None, *, by: Identity = LOCAL_OPERATOR,
        member_daily: Decimal | None = None,
    ) -> None:
        """The team's daily and total caps and each member's own daily cap (owners only: ``set_caps``)."""
        by.require("set_caps")
        with db.write(self.engine) as conn:
            budget.set_caps(conn, daily, total, member_daily=member_daily)

    def member_spend(self, endpoint: str = "live", *, user_id: str | None = None) -> list[budget.MemberSpend]:
        """Spend per member today and in all (``user_id``: only theirs)."""
        with db.read(self.engine) as conn:
            return budget.member_spend(conn, endpoint, user_id=user_id)

    def ledger_rows(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(db.ledger).order_by(db.ledger.c.created_at)
        if endpoint:
            query = query.where(db.ledger.c.endpoint == endpoint)
        with db.read(self.engine) as conn:
            return [dict(r) for r in conn.execute(query).mappings()]


def _default_url(data_dir: Path) -> str:
    # config.database_url() with this store's data directory (tests pass their own).
    url = os.environ.get("IMAGE_STUDIO_DATABASE_URL", "").strip()
    return url or f"sqlite:///{data_dir / 'core.db'}"


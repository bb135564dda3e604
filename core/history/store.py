"""The history store: runs, jobs, images and the ledger, read and written in short transactions.

Pages read it (``get_job``, ``list_jobs``, ``spend``...) to show live state; the
job runner writes it. Every job transition the runner makes is conditional on
the runner still holding the job's claim (``claimed_by``), so two app processes
sharing one PostgreSQL can never both drive one job.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

import clock
from core import config, db
from core.history.files import FORMAT_BY_MIME, FileStore, ImageInfo
from core.jobs import claims
from core.spend import budget
from core.spend.money import nanos_to_usd, parse_decimal, usd_to_nanos
from providers.types import ImageRequest, InputImage

__all__ = [
    "Billing",
    "ImageView",
    "InputView",
    "JobFilter",
    "JobView",
    "Money",
    "NewJob",
    "RunView",
    "Store",
    "new_id",
]


def new_id() -> str:
    return uuid.uuid4().hex


# --- views (what pages get) ----------------------------------------------------------
@dataclass(frozen=True)
class Money:
    usd: Decimal | None
    amount: Decimal | None = None  # in ``unit`` (usd / credits / tokens...)
    unit: str | None = None
    estimated: bool = False  # billed only: no report from the provider, the estimate stands


@dataclass(frozen=True)
class ImageView:
    idx: int
    sha256: str
    format: str
    width: int | None
    height: int | None
    bytes: int
    path: Path
    thumb_path: Path | None
    source_url: str | None = None
    rating: int | None = None
    winner: bool = False


@dataclass(frozen=True)
class JobView:
    id: str
    run_id: str
    seq: int
    provider: str
    model: str
    quality: str
    size: str
    endpoint: str
    prompt: str
    variables: dict[str, Any] | None
    n: int
    status: str  # queued / submitting / submitted / running / succeeded / failed / canceled / unknown
    provider_job_id: str | None
    progress: float | None
    expected_seconds: float | None
    can_cancel: bool
    cancel_requested: bool
    attempts: int
    queued_at: datetime
    submitted_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    error_kind: str | None
    error_message: str | None
    error_detail: str | None
    estimate: Money | None
    billed: Money | None
    rating: int | None
    parent_job_id: str | None
    claimed_by: str | None
    images: tuple[ImageView, ...] = ()
    provider_seconds: float | None = None  # the provider's own time, as the polls bracket it

    @property
    def done(self) -> bool:
        return self.status in db.FINISHED_STATES

    @property
    def active(self) -> bool:
        return self.status in db.ACTIVE_STATES

    def elapsed_seconds(self, now: datetime | None = None) -> float | None:
        """Seconds since the provider got the job (until it finished)."""
        if self.submitted_at is None:
            return None
        end = self.finished_at or now or clock.now()
        return max(0.0, (end - self.submitted_at).total_seconds())


@dataclass(frozen=True)
class InputView:
    idx: int
    role: str  # image / mask
    sha256: str | None
    url: str | None
    mime: str | None
    name: str | None
    path: Path | None  # the stored file, when it is a local image


@dataclass(frozen=True)
class RunView:
    id: str
    created_at: datetime
    kind: str
    provider: str
    model: str
    endpoint: str
    prompt: str
    template: str | None
    variables: list[dict[str, Any]] | None
    params: dict[str, Any]
    n: int
    label: str | None
    experiment_id: str | None
    parent_job_id: str | None
    inputs: tuple[InputView, ...] = ()
    jobs: tuple[JobView, ...] = ()


@dataclass(frozen=True)
class JobFilter:
    """History filters; empty fields do not filter."""

    providers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    qualities: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    endpoint: str | None = None
    since: datetime | None = None  # queued at or after
    until: datetime | None = None  # queued before
    min_rating: int | None = None
    text: str | None = None  # in the prompt, case-insensitive
    run_id: str | None = None
    experiment_id: str | None = None
    winners_only: bool = False


# --- what the runner hands in ---------------------------------------------------------
@dataclass(frozen=True)
class NewJob:
    prompt: str
    n: int
    quality: str
    size: str
    estimate: Money | None
    variables: Mapping[str, Any] | None = None
    expected_seconds: float | None = None
    id: str = field(default_factory=new_id)


@dataclass(frozen=True)
class Deleted:
    """What ``Store.delete_jobs`` did."""

    deleted: tuple[str, ...]
    skipped_active: tuple[str, ...]  # still running: cancel first
    files_removed: int  # images whose files went with them
    files_kept: int  # images another job (or an edit's input) still uses


@dataclass(frozen=True)
class Billing:
    """How a finished job settles its reservation.

    ``mode``: ``billed`` (the provider reported the cost), ``estimated`` (no
    report: the estimate stands as billed, flagged) or ``released`` (not charged).
    """

    mode: str
    usd: Decimal | None = None
    amount: Decimal | None = None
    unit: str | None = None
    raw: Mapping[str, Any] | None = None


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
    ) -> tuple[str, list[str]]:
        """Insert a run, its jobs and their reservations in one transaction.

        Raises ``budget.BudgetExceeded`` (and inserts nothing) when the estimates
        do not fit. Input images go to the file store first, so a queued job can
        be sent after a restart. ``claim`` (owner, lease seconds) hands the jobs
        to one runner from the start (the key they need lives in its memory).
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
                }
            )
        reservations = [
            budget.Reservation(
                job_id=job.id,
                run_id=run_id,
                provider=provider,
                endpoint=endpoint,
                usd=None if job.estimate is None else job.estimate.usd,
            )
            for job in jobs
        ]
        with db.write(self.engine) as conn:
            budget.reserve(conn, reservations, now=now)
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
                        self._insert_image(conn, info, now)
            conn.execute(db.jobs.insert(), job_rows)
        return run_id, [row["id"] for row in job_rows]

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
    def _insert_image(conn: Connection, info: ImageInfo, now: datetime) -> None:
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

    @staticmethod
    def _job_with_output(conn: Connection, shas: Sequence[str | None]) -> str | None:
        wanted = [s for s in shas if s]
        if not wanted:
            return None
        return conn.execute(
            sa.select(db.job_images.c.job_id).where(db.job_images.c.sha256.in_(wanted)).limit(1)
        ).scalar()

    def delete_jobs(self, job_ids: Iterable[str]) -> Deleted:
        """Delete finished jobs (runs left empty go too) and the files nothing else uses.

        Jobs still running are skipped and reported (cancel them first). The
        ledger keeps their spend: deleting history never gives budget back.
        """
        ids = list(dict.fromkeys(job_ids))
        if not ids:
            return Deleted((), (), 0, 0)
        j, ji, ri = db.jobs.c, db.job_images.c, db.run_inputs.c
        orphans: list[str] = []
        kept = 0
        with db.write(self.engine) as conn:
            rows = conn.execute(sa.select(j.id, j.run_id, j.status).where(j.id.in_(ids))).all()
            active = tuple(r.id for r in rows if r.status in db.ACTIVE_STATES)
            doomed = [r.id for r in rows if r.status not in db.ACTIVE_STATES]
            if not doomed:
                return Deleted((), active, 0, 0)
            shas = set(conn.execute(sa.select(ji.sha256).where(ji.job_id.in_(doomed))).scalars())
            conn.execute(db.job_images.delete().where(ji.job_id.in_(doomed)))
            conn.execute(db.jobs.delete().where(j.id.in_(doomed)))
            # A run with no job left goes too, and with it the input images only it referenced.
            run_ids = {r.run_id for r in rows if r.status not in db.ACTIVE_STATES}
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

    def delete_run(self, run_id: str) -> Deleted:
        return self.delete_jobs(self.job_ids_for_run(run_id))

    def create_experiment(self, name: str, notes: str = "") -> str:
        exp_id = new_id()
        with db.write(self.engine) as conn:
            conn.execute(
                db.experiments.insert(), [{"id": exp_id, "name": name, "notes": notes, "created_at": clock.now()}]
            )
        return exp_id

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
            views = self._views(conn, rows)
        by_id = {v.id: v for v in views}
        return [by_id[i] for i in job_ids if i in by_id]

    def list_jobs(self, flt: JobFilter | None = None, *, limit: int = 50, offset: int = 0) -> list[JobView]:
        """Newest first, one page at a time."""
        query = self._filtered(sa.select(db.jobs), flt or JobFilter())
        query = query.order_by(db.jobs.c.queued_at.desc(), db.jobs.c.id.desc()).limit(limit).offset(offset)
        with db.read(self.engine) as conn:
            rows = conn.execute(query).mappings().all()
            return self._views(conn, rows)

    def count_jobs(self, flt: JobFilter | None = None) -> int:
        query = self._filtered(sa.select(sa.func.count()).select_from(db.jobs), flt or JobFilter())
        with db.read(self.engine) as conn:
            return int(conn.execute(query).scalar_one())

    def _filtered(self, query: sa.Select, f: JobFilter) -> sa.Select:
        j = db.jobs.c
        if f.providers:
            query = query.where(j.provider.in_(f.providers))
        if f.models:
            query = query.where(j.model.in_(f.models))
        if f.qualities:
            query = query.where(j.quality.in_(f.qualities))
        if f.statuses:
            query = query.where(j.status.in_(f.statuses))
        if f.endpoint:
            query = query.where(j.endpoint == f.endpoint)
        if f.since is not None:
            query = query.where(j.queued_at >= f.since)
        if f.until is not None:
            query = query.where(j.queued_at < f.until)
        if f.run_id:
            query = query.where(j.run_id == f.run_id)
        if f.text:
            escaped = f.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(j.prompt.ilike(f"%{escaped}%", escape="\\"))
        if f.min_rating is not None:
            rated = sa.exists().where(db.job_images.c.job_id == j.id, db.job_images.c.rating >= f.min_rating)
            query = query.where(sa.or_(j.rating >= f.min_rating, rated))
        if f.winners_only:
            query = query.where(
                sa.exists().where(db.job_images.c.job_id == j.id, db.job_images.c.winner.is_(True))
            )
        if f.experiment_id:
            query = query.where(
                j.run_id.in_(sa.select(db.runs.c.id).where(db.runs.c.experiment_id == f.experiment_id))
            )
        return query

    def _views(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[JobView]:
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
                        path=self.data_dir / r["path"],
                        thumb_path=self.data_dir / r["thumb_path"] if r["thumb_path"] else None,
                        source_url=r["source_url"],
                        rating=r["rating"],
                        winner=bool(r["winner"]),
                    )
                )
        return [self._job_view(r, tuple(images[r["id"]])) for r in rows]

    @staticmethod
    def _job_view(r: Mapping[str, Any], images: tuple[ImageView, ...]) -> JobView:
        estimate = None
        if r["estimate_usd_nanos"] is not None or r["estimate_amount"] is not None:
            estimate = Money(
                nanos_to_usd(r["estimate_usd_nanos"]), parse_decimal(r["estimate_amount"]), r["estimate_unit"]
            )
        billed = None
        if r["billed_estimated"] is not None:
            billed = Money(
                nanos_to_usd(r["billed_usd_nanos"]),
                parse_decimal(r["billed_amount"]),
                r["billed_unit"],
                estimated=bool(r["billed_estimated"]),
            )
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
            status=r["status"],
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
        )

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
                jobs = self._views(conn, rows)
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
    def set_rating(self, job_id: str, rating: int | None, *, idx: int | None = None) -> None:
        """Rate a job's result (``idx``: one of its images) from 1 to 5; None clears."""
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

    def set_winner(self, job_id: str, idx: int, winner: bool = True) -> None:
        with db.write(self.engine) as conn:
            conn.execute(
                db.job_images.update()
                .where(db.job_images.c.job_id == job_id, db.job_images.c.idx == idx)
                .values(winner=winner)
            )

    # --- budget ---------------------------------------------------------------------
    def spend(self, endpoint: str = "live") -> budget.Spend:
        with db.read(self.engine) as conn:
            return budget.spend(conn, endpoint)

    def get_caps(self) -> budget.Caps:
        with db.read(self.engine) as conn:
            return budget.get_caps(conn)

    def set_caps(self, daily: Decimal | None, total: Decimal | None) -> None:
        with db.write(self.engine) as conn:
            budget.set_caps(conn, daily, total)

    def ledger_rows(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(db.ledger).order_by(db.ledger.c.created_at)
        if endpoint:
            query = query.where(db.ledger.c.endpoint == endpoint)
        with db.read(self.engine) as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # --- claims (the runner) --------------------------------------------------------
    def claimable(
        self,
        owner: str,
        *,
        exclude_providers: Iterable[str] = (),
        exclude_ids: Iterable[str] = (),
        limit: int = 20,
        now: datetime | None = None,
    ) -> list[tuple[str, str]]:
        """(job id, provider) of unfinished jobs nobody live owns (or ``owner`` holds), oldest first."""
        now = now or clock.now()
        j = db.jobs.c
        with db.read(self.engine) as conn:
            held = (
                conn.execute(
                    sa.select(j.claimed_by)
                    .distinct()
                    .where(
                        j.status.in_(db.ACTIVE_STATES),
                        j.claimed_by.is_not(None),
                        j.claimed_by != owner,
                        j.claim_expires_at >= now,
                    )
                )
                .scalars()
                .all()
            )
            dead = [o for o in held if claims.owner_is_dead(o)]
            query = sa.select(j.id, j.provider).where(
                j.status.in_(db.ACTIVE_STATES), sa.or_(self._free(now, dead), j.claimed_by == owner)
            )
            if exclude_providers:
                query = query.where(j.provider.not_in(list(exclude_providers)))
            if exclude_ids:
                query = query.where(j.id.not_in(list(exclude_ids)))
            query = query.order_by(j.queued_at, j.seq).limit(limit)
            return [(r[0], r[1]) for r in conn.execute(query)]

    @staticmethod
    def _free(now: datetime, dead: Sequence[str]) -> sa.ColumnElement[bool]:
        j = db.jobs.c
        conds = [j.claimed_by.is_(None), j.claim_expires_at < now]
        if dead:
            conds.append(j.claimed_by.in_(list(dead)))
        return sa.or_(*conds)

    def claim(
        self, job_id: str, owner: str, lease_seconds: float, *, now: datetime | None = None
    ) -> dict[str, Any] | None:
        """Take the job if it is free (or its owner is dead); returns its row, or None."""
        now = now or clock.now()
        j = db.jobs.c
        with db.write(self.engine) as conn:
            row = conn.execute(sa.select(j.claimed_by, j.claim_expires_at, j.status).where(j.id == job_id)).first()
            if row is None or row.status not in db.ACTIVE_STATES:
                return None
            free = (
                row.claimed_by is None
                or row.claimed_by == owner
                or row.claim_expires_at is None
                or row.claim_expires_at < now
                or claims.owner_is_dead(row.claimed_by)
            )
            if not free:
                return None
            result = conn.execute(
                db.jobs.update()
                .where(j.id == job_id, sa.or_(j.claimed_by.is_(None), j.claimed_by == row.claimed_by))
                .values(claimed_by=owner, claim_expires_at=now + timedelta(seconds=lease_seconds))
            )
            if result.rowcount != 1:
                return None
            return dict(conn.execute(sa.select(db.jobs).where(j.id == job_id)).mappings().one())

    def renew_claims(self, owner: str, lease_seconds: float, *, job_ids: Iterable[str] | None = None) -> int:
        """Extend the lease on ``job_ids`` (default: every job ``owner`` holds)."""
        now = clock.now()
        j = db.jobs.c
        query = db.jobs.update().where(j.claimed_by == owner, j.status.in_(db.ACTIVE_STATES))
        if job_ids is not None:
            ids = list(job_ids)
            if not ids:
                return 0
            query = query.where(j.id.in_(ids))
        with db.write(self.engine) as conn:
            return conn.execute(query.values(claim_expires_at=now + timedelta(seconds=lease_seconds))).rowcount

    def release_claim(self, job_id: str, owner: str) -> None:
        with db.write(self.engine) as conn:
            conn.execute(
                db.jobs.update()
                .where(db.jobs.c.id == job_id, db.jobs.c.claimed_by == owner)
                .values(claimed_by=None, claim_expires_at=None)
            )

    def release_all_claims(self, owner: str) -> None:
        with db.write(self.engine) as conn:
            conn.execute(
                db.jobs.update()
                .where(db.jobs.c.claimed_by == owner)
                .values(claimed_by=None, claim_expires_at=None)
            )

    def job_row(self, job_id: str) -> dict[str, Any] | None:
        with db.read(self.engine) as conn:
            row = conn.execute(sa.select(db.jobs).where(db.jobs.c.id == job_id)).mappings().first()
            return dict(row) if row else None

    # --- transitions (the claim holder only) ----------------------------------------
    def _update_owned(self, conn: Connection, job_id: str, owner: str, *extra: Any, **values: Any) -> bool:
        values.setdefault("updated_at", clock.now())
        result = conn.execute(
            db.jobs.update().where(db.jobs.c.id == job_id, db.jobs.c.claimed_by == owner, *extra).values(**values)
        )
        return result.rowcount == 1

    def mark_submitting(self, job_id: str, owner: str, *, expected_seconds: float | None = None) -> bool:
        """Commit the marker that a job-creating request is about to be sent.

        Refused (False) when the runner lost the claim, or the job was canceled
        meanwhile: then nothing must be sent.
        """
        now = clock.now()
        j = db.jobs.c
        values: dict[str, Any] = {
            "status": "submitting",
            "attempts": j.attempts + 1,
            "submitted_at": sa.func.coalesce(j.submitted_at, now),
            "updated_at": now,
        }
        if expected_seconds is not None:
            values["expected_seconds"] = expected_seconds
        with db.write(self.engine) as conn:
            return self._update_owned(
                conn,
                job_id,
                owner,
                # A cancel of a queued job flips its status in one statement, so the status
                # test alone keeps a canceled job from being sent.
                j.status.in_(("queued", "submitting")),
                **values,
            )

    def mark_submitted(
        self,
        job_id: str,
        owner: str,
        provider_job_id: str,
        *,
        state: str = "submitted",
        progress: float | None = None,
        expected_seconds: float | None = None,
    ) -> bool:
        """Store the provider's job id the moment it is known.

        Also succeeds when another runner took the job over and marked it
        ``unknown`` meanwhile (its lease ran out mid-call): the id is the truth,
        so the job goes back to being polled, by this runner.
        """
        now = clock.now()
        j = db.jobs.c
        values: dict[str, Any] = {
            "provider_job_id": provider_job_id,
            "status": state,
            "updated_at": now,
            "error_kind": None,
            "error_message": None,
        }
        if progress is not None:
            values["progress"] = progress
        if expected_seconds is not None:
            values["expected_seconds"] = expected_seconds
        with db.write(self.engine) as conn:
            if self._update_owned(conn, job_id, owner, **values):
                return True
            result = conn.execute(
                db.jobs.update()
                .where(j.id == job_id, j.status == "unknown", j.provider_job_id.is_(None))
                .values(claimed_by=owner, claim_expires_at=now + timedelta(seconds=60), finished_at=None, **values)
            )
            return result.rowcount == 1

    def update_progress(
        self,
        job_id: str,
        owner: str,
        *,
        state: str | None = None,
        progress: float | None = None,
        expected_seconds: float | None = None,
    ) -> bool:
        values: dict[str, Any] = {}
        if state is not None:
            values["status"] = state
        if progress is not None:
            values["progress"] = progress
        if expected_seconds is not None:
            values["expected_seconds"] = expected_seconds
        if not values:
            return True
        with db.write(self.engine) as conn:
            return self._update_owned(conn, job_id, owner, db.jobs.c.status.in_(db.ACTIVE_STATES), **values)

    def note_error(self, job_id: str, owner: str, detail: str) -> None:
        """Keep the latest transient trouble (a failed poll) visible while the job goes on."""
        with db.write(self.engine) as conn:
            self._update_owned(conn, job_id, owner, error_detail=detail[:4000])

    def clear_cancel(self, job_id: str, owner: str, detail: str) -> None:
        """A cancel the provider refused: the job goes on, and says why."""
        with db.write(self.engine) as conn:
            self._update_owned(conn, job_id, owner, cancel_requested=False, error_detail=detail[:4000])

    def cancel_requested(self, job_id: str) -> bool:
        with db.read(self.engine) as conn:
            return bool(conn.execute(sa.select(db.jobs.c.cancel_requested).where(db.jobs.c.id == job_id)).scalar())

    def finish(
        self,
        job_id: str,
        owner: str | None,
        *,
        status: str,
        billing: Billing,
        images: Sequence[tuple[ImageInfo, str | None]] = (),
        error_kind: str | None = None,
        error_message: str | None = None,
        error_detail: str | None = None,
        progress: float | None = None,
        provider_seconds: float | None = None,
        now: datetime | None = None,
    ) -> bool:
        """End a job: its images (already on disk), its status and its ledger entry, in one transaction.

        ``owner`` None finishes a job nobody holds (a cancel of a queued job).
        ``provider_seconds``: how long the provider took (see ``learned_seconds``).
        Returns False, changing nothing, when the job is not this owner's or not active.
        """
        if status not in db.FINISHED_STATES:
            raise ValueError(f"not a finished state: {status}")
        now = now or clock.now()
        j = db.jobs.c
        values: dict[str, Any] = {
            "status": status,
            "finished_at": now,
            "updated_at": now,
            "claimed_by": None,
            "claim_expires_at": None,
            "error_kind": error_kind,
            "error_message": error_message,
        }
        if error_detail is not None:
            values["error_detail"] = error_detail[:4000]
        if provider_seconds is not None:
            values["provider_seconds"] = provider_seconds
        if progress is not None:
            values["progress"] = progress
        elif status == "succeeded":
            values["progress"] = 100.0
        with db.write(self.engine) as conn:
            conds = [j.id == job_id, j.status.in_(db.ACTIVE_STATES)]
            conds.append(j.claimed_by.is_(None) if owner is None else j.claimed_by == owner)
            row = conn.execute(sa.select(j.estimate_usd_nanos).where(*conds)).first()
            if row is None:
                return False
            for idx, (info, source_url) in enumerate(images):
                self._insert_image(conn, info, now)
                exists = conn.execute(
                    sa.select(db.job_images.c.idx).where(
                        db.job_images.c.job_id == job_id, db.job_images.c.idx == idx
                    )
                ).first()
                if exists is None:
                    conn.execute(
                        db.job_images.insert(),
                        [
                            {
                                "job_id": job_id,
                                "idx": idx,
                                "sha256": info.sha256,
                                "source_url": source_url,
                                "winner": False,
                            }
                        ],
                    )
            if billing.mode == "released":
                budget.release(conn, job_id)
                values.update(billed_usd_nanos=0, billed_amount=None, billed_unit=None, billed_estimated=False)
            elif billing.mode == "billed":
                budget.settle(
                    conn, job_id, usd=billing.usd, amount=billing.amount, unit=billing.unit, estimated=False
                )
                values.update(
                    billed_usd_nanos=usd_to_nanos(billing.usd) if billing.usd is not None else row[0],
                    billed_amount=None if billing.amount is None else str(billing.amount),
                    billed_unit=billing.unit,
                    billed_estimated=billing.usd is None,
                )
            elif billing.mode == "estimated":
                budget.settle(conn, job_id, usd=None, estimated=True)
                values.update(billed_usd_nanos=row[0], billed_amount=None, billed_unit=None, billed_estimated=True)
            else:
                raise ValueError(f"unknown billing mode {billing.mode!r}")
            if billing.raw is not None:
                values["billed_raw"] = dict(billing.raw)
            return conn.execute(db.jobs.update().where(*conds).values(**values)).rowcount == 1

    def request_cancel(self, job_id: str) -> str:
        """What a Cancel button does, in one transaction.

        Returns ``canceled`` (it was still queued: done, reservation released),
        ``requested`` (it is at the provider: the runner holding it cancels it
        there), ``not_cancelable`` (the provider cannot cancel: it will finish
        and be billed), ``finished`` (too late) or ``missing``.
        """
        now = clock.now()
        j = db.jobs.c
        with db.write(self.engine) as conn:
            row = conn.execute(sa.select(j.status, j.can_cancel).where(j.id == job_id)).first()
            if row is None:
                return "missing"
            if row.status in db.FINISHED_STATES:
                return "finished"
            if row.status == "queued":
                # Conditional on still queued: a runner's mark_submitting and this are exclusive.
                done = conn.execute(
                    db.jobs.update()
                    .where(j.id == job_id, j.status == "queued")
                    .values(
                        status="canceled",
                        cancel_requested=True,
                        finished_at=now,
                        updated_at=now,
                        claimed_by=None,
                        claim_expires_at=None,
                        error_kind="canceled",
                        error_message="Canceled before it was sent.",
                        billed_usd_nanos=0,
                        billed_estimated=False,
                    )
                ).rowcount
                if done:
                    budget.release(conn, job_id)
                    return "canceled"
            if not row.can_cancel:
                return "not_cancelable"
            conn.execute(db.jobs.update().where(j.id == job_id).values(cancel_requested=True, updated_at=now))
            return "requested"

    def reopen(self, job_id: str) -> bool:
        """Poll again a failed/unknown job that has a provider job id ("check again")."""
        now = clock.now()
        j = db.jobs.c
        with db.write(self.engine) as conn:
            result = conn.execute(
                db.jobs.update()
                .where(j.id == job_id, j.status.in_(("failed", "unknown")), j.provider_job_id.is_not(None))
                .values(
                    status="submitted",
                    finished_at=None,
                    updated_at=now,
                    error_kind=None,
                    error_message=None,
                    claimed_by=None,
                    claim_expires_at=None,
                )
            )
            if result.rowcount == 1:
                # The cost is open again until the provider answers.
                conn.execute(
                    db.ledger.update()
                    .where(db.ledger.c.job_id == job_id)
                    .values(state="reserved", usd_nanos=db.ledger.c.reserved_usd_nanos, updated_at=now)
                )
                return True
            return False


def _default_url(data_dir: Path) -> str:
    # config.database_url() with this store's data directory (tests pass their own).
    url = os.environ.get("IMAGE_STUDIO_DATABASE_URL", "").strip()
    return url or f"sqlite:///{data_dir / 'core.db'}"

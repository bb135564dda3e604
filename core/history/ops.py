"""History operations beside the store: experiments, winners, the History page's lookups, edit chains.

Written with the store's tables and short transactions. Nothing here touches a
job a runner is still driving.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from core import db
from core.accounts.identity import LOCAL_OPERATOR, Identity
from core.history.store import Store
from core.history.views import JobView
from core.jobs.lifecycle import ACTIVE_STATES
from core.spend.money import nanos_to_usd

__all__ = [
    "ExperimentSummary",
    "count_experiments",
    "edit_chain",
    "facets",
    "get_experiment",
    "list_experiments",
    "mark_winner",
    "rename_experiment",
    "run_details",
    "save_experiment_notes",
]

# How far an edit chain is followed each way: chains are short, a loop in bad data must not hang a page.
_CHAIN_LIMIT = 25



# --- winners -----------------------------------------------------------------------------
def mark_winner(
    store: Store, group: Sequence[str], job_id: str, idx: int = 0, *, winner: bool = True,
    by: Identity = LOCAL_OPERATOR,
) -> None:
    """Make one image the winner among the jobs of ``group`` (an experiment's jobs); False clears it."""
    by.require("rate")
    ji = db.job_images.c
    with db.write(store.engine) as conn:
        if winner and group:
            conn.execute(db.job_images.update().where(ji.job_id.in_(list(group))).values(winner=False))
        conn.execute(
            db.job_images.update().where(ji.job_id == job_id, ji.idx == idx).values(winner=bool(winner))
        )


# --- experiments ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ExperimentSummary:
    id: str
    name: str
    notes: str
    created_at: datetime
    jobs: int = 0
    succeeded: int = 0
    active: int = 0
    failed: int = 0
    cost_usd: Decimal = Decimal(0)
    simulated: bool = False  # every job went to the emulator
    thumbs: tuple[str, ...] = ()  # relative paths under the data directory
    winner_thumb: str | None = None
    providers: tuple[str, ...] = field(default_factory=tuple)
    user_id: str | None = None  # who made it (schema 5)
    shared: bool = False


def _visible(query: sa.Select[Any], visible_to: str | None) -> sa.Select[Any]:
    """Experiments someone sees: their own and those shared with the team (None: everyone's)."""
    e = db.experiments.c
    return query if visible_to is None else query.where(sa.or_(e.user_id == visible_to, e.shared.is_(True)))


def count_experiments(store: Store, *, visible_to: str | None = None) -> int:
    with db.read(store.engine) as conn:
        query = _visible(sa.select(sa.func.count()).select_from(db.experiments), visible_to)
        return int(conn.execute(query).scalar_one())


def list_experiments(
    store: Store, *, limit: int = 20, offset: int = 0, thumbs: int = 4, visible_to: str | None = None
) -> list[ExperimentSummary]:
    """Newest first, with job counts, cost and a few thumbnails each (one query per part, not per row)."""
    e = db.experiments.c
    with db.read(store.engine) as conn:
        exps = conn.execute(
            _visible(sa.select(db.experiments), visible_to)
            .order_by(e.created_at.desc(), e.id.desc()).limit(limit).offset(offset)
        ).mappings().all()
        return _summaries(conn, exps, thumbs)


def get_experiment(store: Store, experiment_id: str) -> ExperimentSummary | None:
    with db.read(store.engine) as conn:
        row = conn.execute(sa.select(db.experiments).where(db.experiments.c.id == experiment_id)).mappings().first()
        if row is None:
            return None
        return _summaries(conn, [row], 4)[0]


def _summaries(conn: Connection, exps: Sequence[RowMapping], thumbs: int) -> list[ExperimentSummary]:
    ids = [x["id"] for x in exps]
    if not ids:
        return []
    j, r = db.jobs.c, db.runs.c
    stats: dict[str, dict[str, Any]] = {i: {"jobs": 0, "succeeded": 0, "active": 0, "failed": 0, "nanos": 0,
                                            "endpoints": set(), "providers": []} for i in ids}
    rows = conn.execute(
        sa.select(r.experiment_id, j.status, j.endpoint, j.provider, j.billed_usd_nanos, j.estimate_usd_nanos)
        .select_from(db.jobs.join(db.runs, db.runs.c.id == j.run_id))
        .where(r.experiment_id.in_(ids))
    ).all()
    for exp_id, status, endpoint, provider, billed, estimate in rows:
        s = stats[exp_id]
        s["jobs"] += 1
        s["endpoints"].add(endpoint)
        if provider not in s["providers"]:
            s["providers"].append(provider)
        if status == "succeeded":
            s["succeeded"] += 1
        elif status in ACTIVE_STATES:
            s["active"] += 1
        else:
            s["failed"] += 1
        s["nanos"] += billed if billed is not None else (estimate or 0) if status in ACTIVE_STATES else 0
    pics: dict[str, list[str]] = {i: [] for i in ids}
    winners: dict[str, str] = {}
    q = (
        sa.select(r.experiment_id, db.images.c.thumb_path, db.job_images.c.winner)
        .select_from(
            db.job_images.join(db.jobs, j.id == db.job_images.c.job_id)
            .join(db.runs, r.id == j.run_id)
            .join(db.images, db.images.c.sha256 == db.job_images.c.sha256)
        )
        .where(r.experiment_id.in_(ids), db.images.c.thumb_path.is_not(None))
        .order_by(r.created_at, j.seq, db.job_images.c.idx)
    )
    for exp_id, thumb, is_winner in conn.execute(q):
        if is_winner:
            winners.setdefault(exp_id, thumb)
        if len(pics[exp_id]) < thumbs:
            pics[exp_id].append(thumb)
    out = []
    for x in exps:
        s = stats[x["id"]]
        out.append(
            ExperimentSummary(
                id=x["id"],
                name=x["name"],
                notes=x["notes"] or "",
                created_at=x["created_at"],
                jobs=s["jobs"],
                succeeded=s["succeeded"],
                active=s["active"],
                failed=s["failed"],
                cost_usd=nanos_to_usd(s["nanos"]) or Decimal(0),
                simulated=bool(s["endpoints"]) and s["endpoints"] == {"emulator"},
                thumbs=tuple(pics[x["id"]]),
                winner_thumb=winners.get(x["id"]),
                providers=tuple(s["providers"]),
                user_id=x["user_id"],
                shared=bool(x["shared"]),
            )
        )
    return out


def save_experiment_notes(store: Store, experiment_id: str, notes: str | Mapping[str, Any]) -> None:
    """Replace an experiment's notes (the Compare page keeps its grid layout there as JSON)."""
    text = notes if isinstance(notes, str) else json.dumps(notes, ensure_ascii=False, sort_keys=True)
    with db.write(store.engine) as conn:
        conn.execute(db.experiments.update().where(db.experiments.c.id == experiment_id).values(notes=text))


def rename_experiment(store: Store, experiment_id: str, name: str) -> None:
    with db.write(store.engine) as conn:
        conn.execute(
            db.experiments.update().where(db.experiments.c.id == experiment_id).values(name=name.strip()[:200])
        )


# --- lookups for the History page -----------------------------------------------------------
def facets(store: Store) -> dict[str, list[str]]:
    """The distinct providers and models in history (filters offer what exists, retired models too)."""
    j = db.jobs.c
    with db.read(store.engine) as conn:
        models = sorted(conn.execute(sa.select(j.model).distinct()).scalars())
        providers = sorted(conn.execute(sa.select(j.provider).distinct()).scalars())
    return {"models": models, "providers": providers}


def run_details(store: Store, run_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Each run's parameters and context (one query for many jobs' recipes)."""
    ids = list(dict.fromkeys(run_ids))
    if not ids:
        return {}
    r = db.runs.c
    with db.read(store.engine) as conn:
        rows = conn.execute(
            sa.select(r.id, r.created_at, r.kind, r.params, r.template, r.label, r.experiment_id, r.parent_job_id)
            .where(r.id.in_(ids))
        ).mappings().all()
    return {row["id"]: dict(row) for row in rows}


def edit_chain(store: Store, job_id: str) -> tuple[list[JobView], list[JobView]]:
    """(ancestors oldest first, direct and further edits made from this job) for the detail view."""
    j = db.jobs.c
    ancestors: list[str] = []
    seen = {job_id}
    with db.read(store.engine) as conn:
        current = conn.execute(sa.select(j.parent_job_id).where(j.id == job_id)).scalar()
        while current and current not in seen and len(ancestors) < _CHAIN_LIMIT:
            seen.add(current)
            ancestors.append(current)
            current = conn.execute(sa.select(j.parent_job_id).where(j.id == current)).scalar()
        descendants: list[str] = []
        frontier = [job_id]
        while frontier and len(descendants) < _CHAIN_LIMIT:
            children = [
                c
                for c in conn.execute(
                    sa.select(j.id).where(j.parent_job_id.in_(frontier)).order_by(j.queued_at)
                ).scalars()
                if c not in seen
            ]
            seen.update(children)
            descendants.extend(children)
            frontier = children
    ancestors.reverse()
    # An ancestor that was deleted is simply missing from get_jobs: the chain shows what is left.
    return store.get_jobs(ancestors), store.get_jobs(descendants[:_CHAIN_LIMIT])

"""Spend and latency as pandas frames for the Spend page's charts.

Every function takes one ``endpoint`` (``live`` or ``emulator``), so real spend
and simulated spend are never summed together. Money is exact (Decimal) in the
ledger export and float only in the frames that feed charts.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pandas as pd
import sqlalchemy as sa

import clock
from core import db
from core.history.store import Store
from core.spend.money import format_exact, nanos_to_usd
from providers import registry
from providers.types import QUALITY_ORDER

__all__ = [
    "cost_by_quality",
    "estimate_vs_billed",
    "failures_by_kind",
    "latency_by_provider",
    "ledger_frame",
    "ledger_records",
    "spend_per_day",
]

_STATE_TEXT = {"reserved": "pending", "billed": "billed", "estimated": "estimate stands", "released": "not charged"}


def _local(series: pd.Series) -> pd.Series:
    # The budget's day is the app host's calendar day (core.spend.budget.day_start): charts use the same.
    tz = clock.local_now().tzinfo
    return pd.to_datetime(series, utc=True).dt.tz_convert(tz)


def _utc(value: datetime) -> datetime:
    """``db.as_utc`` for a NOT NULL column: never None."""
    stamp = db.as_utc(value)
    if stamp is None:
        raise ValueError("a NOT NULL timestamp came back empty")
    return stamp


def ledger_records(
    store: Store, endpoint: str | None = None, since: datetime | None = None, *, user_id: str | None = None
) -> list[dict[str, Any]]:
    """Ledger rows with their job's model, quality and status; USD exact. Deleted jobs keep their row.

    ``user_id``: only what that member spent (a maker's own Spend page); None: everyone's.
    """
    lg, j = db.ledger.c, db.jobs.c
    query = (
        sa.select(
            lg.job_id, lg.run_id, lg.provider, lg.endpoint, lg.state, lg.created_at, lg.updated_at,
            lg.reserved_usd_nanos, lg.usd_nanos, lg.billed_amount, lg.billed_unit, j.model, j.quality, j.status,
        )
        .select_from(db.ledger.outerjoin(db.jobs, j.id == lg.job_id))
        .order_by(lg.created_at, lg.job_id)
    )
    if endpoint:
        query = query.where(lg.endpoint == endpoint)
    if since is not None:
        query = query.where(lg.created_at >= since)
    if user_id is not None:
        query = query.where(lg.user_id == user_id)
    with db.read(store.engine) as conn:
        rows = conn.execute(query).mappings().all()
    out = []
    for r in rows:
        out.append({
            "job_id": r["job_id"],
            "run_id": r["run_id"],
            "provider": r["provider"],
            "endpoint": r["endpoint"],
            "simulated": r["endpoint"] == "emulator",
            "state": r["state"],
            "created_at": _utc(r["created_at"]).isoformat(),
            "updated_at": _utc(r["updated_at"]).isoformat(),
            "reserved_usd": format_exact(nanos_to_usd(r["reserved_usd_nanos"])),
            "usd": format_exact(nanos_to_usd(r["usd_nanos"])),
            "billed_amount": r["billed_amount"] or "",
            "billed_unit": r["billed_unit"] or "",
            "model": r["model"] or "",
            "quality": r["quality"] or "(deleted)",
            "status": r["status"] or "deleted",
        })
    return out


def ledger_frame(
    store: Store, endpoint: str, since: datetime | None = None, *, user_id: str | None = None
) -> pd.DataFrame:
    """The ledger as a frame for charts: one row per job, ``usd`` as float, ``day`` local."""
    records = ledger_records(store, endpoint, since, user_id=user_id)
    columns = ["job_id", "provider", "provider_label", "state", "state_text", "created_at", "day", "usd",
               "reserved_usd", "quality", "model", "status"]
    if not records:
        return pd.DataFrame(columns=columns)
    df = pd.DataFrame.from_records(records)
    df["usd"] = pd.to_numeric(df["usd"], errors="coerce").fillna(0.0)
    df["reserved_usd"] = pd.to_numeric(df["reserved_usd"], errors="coerce").fillna(0.0)
    df["created_at"] = _local(df["created_at"])
    df["day"] = df["created_at"].dt.tz_localize(None).dt.normalize()
    df["provider_label"] = df["provider"].map(registry.label)
    df["state_text"] = df["state"].map(lambda s: _STATE_TEXT.get(s, s))
    return df[columns]


def spend_per_day(df: pd.DataFrame) -> pd.DataFrame:
    """USD per local day and provider (money that counts: not released)."""
    counting = df[df["state"] != "released"]
    if counting.empty:
        return pd.DataFrame(columns=["day", "provider", "usd", "jobs"])
    out = (
        counting.groupby(["day", "provider_label"], as_index=False)
        .agg(usd=("usd", "sum"), jobs=("job_id", "count"))
        .rename(columns={"provider_label": "provider"})
    )
    return out.sort_values(["day", "provider"]).reset_index(drop=True)


def cost_by_quality(df: pd.DataFrame) -> pd.DataFrame:
    """Total and average USD per job for each quality tier, by provider."""
    counting = df[df["state"] != "released"]
    if counting.empty:
        return pd.DataFrame(columns=["quality", "provider", "usd", "jobs", "usd_per_job"])
    out = (
        counting.groupby(["quality", "provider_label"], as_index=False)
        .agg(usd=("usd", "sum"), jobs=("job_id", "count"))
        .rename(columns={"provider_label": "provider"})
    )
    out["usd_per_job"] = out["usd"] / out["jobs"].clip(lower=1)
    order = {q: i for i, q in enumerate(QUALITY_ORDER)}
    out["_o"] = out["quality"].map(lambda q: order.get(q, len(order)))
    return out.sort_values(["_o", "provider"]).drop(columns="_o").reset_index(drop=True)


def _jobs_query(endpoint: str, since: datetime | None, *cols: Any, user_id: str | None = None) -> sa.Select[Any]:
    j = db.jobs.c
    query = sa.select(*cols).where(j.endpoint == endpoint)
    if since is not None:
        query = query.where(j.queued_at >= since)
    if user_id is not None:
        query = query.where(j.user_id == user_id)
    return query


def estimate_vs_billed(
    store: Store, endpoint: str, since: datetime | None = None, *, user_id: str | None = None
) -> pd.DataFrame:
    """Per provider: what the finished, billed jobs were estimated at and what the provider reported."""
    j = db.jobs.c
    query = _jobs_query(
        endpoint, since, j.provider, sa.func.count().label("jobs"),
        sa.func.sum(j.estimate_usd_nanos).label("estimate"), sa.func.sum(j.billed_usd_nanos).label("billed"),
        user_id=user_id,
    ).where(j.billed_estimated.is_(False), j.billed_usd_nanos > 0, j.estimate_usd_nanos.is_not(None))
    with db.read(store.engine) as conn:
        rows = conn.execute(query.group_by(j.provider)).all()
    records = []
    for provider, jobs, estimate, billed in rows:
        est = float(nanos_to_usd(estimate) or Decimal(0))
        bil = float(nanos_to_usd(billed) or Decimal(0))
        records.append({"provider": registry.label(provider), "jobs": int(jobs), "estimated": est, "billed": bil,
                        "difference_pct": (bil - est) / est * 100 if est else None})
    return pd.DataFrame(records, columns=["provider", "jobs", "estimated", "billed", "difference_pct"])


def latency_by_provider(
    store: Store, endpoint: str, since: datetime | None = None, *, sample: int = 20000, user_id: str | None = None
) -> pd.DataFrame:
    """p50 and p95 seconds from sending to finishing, per provider and quality (succeeded jobs)."""
    j = db.jobs.c
    query = _jobs_query(endpoint, since, j.provider, j.quality, j.submitted_at, j.finished_at,
                        user_id=user_id).where(
        j.status == "succeeded", j.submitted_at.is_not(None), j.finished_at.is_not(None)
    ).order_by(j.finished_at.desc()).limit(sample)
    with db.read(store.engine) as conn:
        rows = conn.execute(query).all()
    columns = ["provider", "quality", "jobs", "p50", "p95"]
    if not rows:
        return pd.DataFrame(columns=columns)
    df = pd.DataFrame(
        [(registry.label(p), q, (_utc(f) - _utc(s)).total_seconds()) for p, q, s, f in rows],
        columns=["provider", "quality", "seconds"],
    )
    df = df[df["seconds"] >= 0]
    out = df.groupby(["provider", "quality"], as_index=False)["seconds"].agg(
        jobs="count", p50=lambda s: s.quantile(0.5), p95=lambda s: s.quantile(0.95)
    )
    return out[columns].sort_values(["provider", "quality"]).reset_index(drop=True)


def failures_by_kind(
    store: Store, endpoint: str, since: datetime | None = None, *, user_id: str | None = None
) -> pd.DataFrame:
    """Jobs that did not succeed, counted by what went wrong and provider."""
    j = db.jobs.c
    query = _jobs_query(endpoint, since, j.error_kind, j.status, j.provider, sa.func.count().label("jobs"),
                        user_id=user_id).where(
        j.status.in_(("failed", "unknown", "canceled"))
    ).group_by(j.error_kind, j.status, j.provider)
    with db.read(store.engine) as conn:
        rows = conn.execute(query).all()
    records = [
        {"kind": _kind_text(kind, status), "provider": registry.label(provider), "jobs": int(n)}
        for kind, status, provider, n in rows
    ]
    df = pd.DataFrame(records, columns=["kind", "provider", "jobs"])
    if df.empty:
        return df
    return df.groupby(["kind", "provider"], as_index=False)["jobs"].sum().sort_values("jobs", ascending=False)


_KIND_TEXT = {
    "auth": "key refused",
    "invalid_request": "request refused",
    "model_unavailable": "model unavailable",
    "moderation": "moderation block",
    "moderation_blocked": "moderation block",
    "quota": "out of credits",
    "quota_exceeded": "out of credits",
    "rate_limited": "rate limited",
    "unavailable": "provider unavailable",
    "provider_unavailable": "provider unavailable",
    "timeout": "timed out",
    "job_failed": "job failed",
    "canceled": "canceled",
    "unknown": "outcome unknown",
    "no_image": "no image returned",
    "internal": "app error",
    "provider_error": "provider error",
}


def _kind_text(kind: str | None, status: str) -> str:
    if kind:
        return _KIND_TEXT.get(kind, kind.replace("_", " "))
    return {"canceled": "canceled", "unknown": "outcome unknown"}.get(status, "failed (no reason given)")

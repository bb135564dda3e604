"""Runs, images and ledger sums for the store and claims tests (both backends)."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from core_fakes import png_bytes

from core import db
from core.history import search
from core.history.files import ImageInfo
from core.history.store import Store
from core.history.views import Money, NewJob
from providers.types import ImageRequest


def new_run(store: Store, *, provider: str = "fake", model: str = "m1", prompt: str = "a red fox", jobs: int = 1,
            usd: str | None = "0.07", endpoint: str = "live", quality: str = "low", request: ImageRequest | None = None,
            **kw) -> tuple[str, list[str]]:
    request = request or ImageRequest(prompt=prompt, model=model, quality=quality)
    new_jobs = [NewJob(prompt=request.prompt, n=1, quality=request.quality, size=request.size,
                       estimate=Money(None if usd is None else Decimal(usd), None if usd is None else Decimal(usd),
                                      "USD"))
                for _ in range(jobs)]
    return store.create_run(provider=provider, endpoint=endpoint, request=request, jobs=new_jobs, **kw)


def put_image(store: Store, seed: str) -> ImageInfo:
    return store.files.put(png_bytes(seed))


def ledger_sums(store: Store) -> dict[str, tuple[int, int]]:
    """(spent, pending) nanos per endpoint summed over the whole ledger: written here, not by the code under test."""
    with db.read(store.engine) as conn:
        rows = conn.exec_driver_sql(
            "SELECT endpoint,"
            " SUM(CASE WHEN state IN ('reserved', 'billed', 'estimated') THEN usd_nanos ELSE 0 END),"
            " SUM(CASE WHEN state = 'reserved' THEN usd_nanos ELSE 0 END)"
            " FROM ledger GROUP BY endpoint"
        ).all()
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}


def kept_totals(store: Store) -> dict[str, tuple[int, int]]:
    """The ``ledger_totals`` rows as (spent, pending) per endpoint."""
    with db.read(store.engine) as conn:
        rows = conn.execute(sa.select(db.ledger_totals)).all()
    return {r.endpoint: (int(r.spent_usd_nanos), int(r.pending_usd_nanos)) for r in rows}


def drop_schema_7(conn: sa.Connection) -> None:
    """What schema 7 added goes (the ledger's totals, the search index); the rows it was made from stay."""
    db.metadata.drop_all(conn, tables=[db.ledger_totals])
    search.drop(conn)

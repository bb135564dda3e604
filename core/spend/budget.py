"""The spend ledger and the budget cap.

Every job has one ledger row from the moment it is queued: its estimate is
*reserved* then, and later becomes *billed* (the provider reported the cost),
*estimated* (no report: the estimate stands as billed, flagged) or *released*
(never sent, or a failure the provider does not charge for). Budgets sum
``usd_nanos`` over rows that are not released, so reserved money counts at once
and two quick clicks can never both fit in the same last dollar.

The check and the reservation run in one write transaction that first locks
the single ``budget`` row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` already admits one writer), so concurrent submissions from
any number of threads or processes are serialised.

Each member's spend is recorded with the ledger row (``user_id``); a signed-in
member is held to the per-member daily cap as well as the team's, checked in the
same locked transaction, so members racing each other cannot pass either cap.

Emulator jobs are metered apart from live ones against the same caps: play
money must neither eat the real budget nor escape the cap in a demo.

Every ledger write is here, and each also moves ``ledger_totals`` (schema 7)
by what it changed, in the same transaction: the totals (spent, pending) are
one row per endpoint however long the ledger grows, and always its sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

import clock
from core import config, db
from core.spend.money import format_usd, nanos_to_usd, usd_to_nanos

__all__ = [
    "BudgetExceeded",
    "Caps",
    "MemberSpend",
    "Reservation",
    "Spend",
    "day_start",
    "get_caps",
    "recount",
    "release",
    "reopen",
    "reserve",
    "set_caps",
    "settle",
    "spend",
]

COUNTING = db.COUNTING_STATES
recount = db.recount_ledger_totals  # for rows written around these functions (test seeds)


class BudgetExceeded(Exception):
    """A submission refused by the cap; ``str()`` names the estimate and what is left."""

    def __init__(
        self, message: str, *, scope: str, needed: Decimal | None, left: Decimal | None, cap: Decimal | None
    ) -> None:
        super().__init__(message)
        self.scope = scope  # daily / total / member / unpriced
        self.needed = needed
        self.left = left
        self.cap = cap


@dataclass(frozen=True)
class Caps:
    daily: Decimal | None
    total: Decimal | None
    daily_source: str | None  # settings / environment / None
    total_source: str | None
    member_daily: Decimal | None = None  # each signed-in member's own daily cap (Settings; None: none)


@dataclass(frozen=True)
class Reservation:
    job_id: str
    run_id: str
    provider: str
    endpoint: str
    usd: Decimal | None  # None: the catalogue could not price it in USD
    user_id: str | None = None  # who spends it (None: before accounts / no one signed in)


@dataclass(frozen=True)
class Spend:
    """What a page shows next to the budget (all USD)."""

    endpoint: str
    today: Decimal  # reserved + billed since local midnight
    total: Decimal
    pending: Decimal  # of which still only reserved (jobs not finished)
    caps: Caps
    left_today: Decimal | None  # None: no cap
    left_total: Decimal | None
    member_today: Decimal | None = None  # what the member asked about spent today (None: not asked)
    member_left: Decimal | None = None  # of their own daily cap (None: no member cap, or not asked)


@dataclass(frozen=True)
class MemberSpend:
    user_id: str | None  # None: spend from before accounts (the operator)
    today: Decimal
    total: Decimal


def day_start(now: datetime | None = None) -> datetime:
    """Local midnight (the app host's calendar day), in UTC."""
    local = (now or clock.now()).astimezone()
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def get_caps(conn: Connection, *, lock: bool = False) -> Caps:
    b = db.budget.c
    query = sa.select(b.daily_usd_nanos, b.total_usd_nanos, b.member_daily_usd_nanos).where(b.id == 1)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    env_daily, env_total = config.budget_from_env()
    daily_n, total_n, member_n = (row[0], row[1], row[2]) if row else (None, None, None)
    daily = nanos_to_usd(daily_n) if daily_n is not None else env_daily
    total = nanos_to_usd(total_n) if total_n is not None else env_total
    return Caps(
        daily=daily,
        total=total,
        daily_source="settings" if daily_n is not None else ("environment" if env_daily is not None else None),
        total_source="settings" if total_n is not None else ("environment" if env_total is not None else None),
        member_daily=nanos_to_usd(member_n) if member_n is not None else None,
    )


def set_caps(
    conn: Connection, daily: Decimal | None, total: Decimal | None, *, member_daily: Decimal | None = None
) -> None:
    """Caps from Settings; None falls back on the environment variable (or no cap; no member cap)."""
    for value in (daily, total, member_daily):
        if value is not None and value < 0:
            raise ValueError("a budget cap cannot be negative")
    conn.execute(
        db.budget.update()
        .where(db.budget.c.id == 1)
        .values(
            daily_usd_nanos=None if daily is None else usd_to_nanos(daily),
            total_usd_nanos=None if total is None else usd_to_nanos(total),
            member_daily_usd_nanos=None if member_daily is None else usd_to_nanos(member_daily),
            updated_at=clock.now(),
        )
    )


def _totals(conn: Connection, endpoint: str) -> tuple[int, int]:
    """(spent, pending) over the endpoint's whole ledger: its one ``ledger_totals`` row."""
    t = db.ledger_totals.c
    row = conn.execute(sa.select(t.spent_usd_nanos, t.pending_usd_nanos).where(t.endpoint == endpoint)).first()
    return (int(row[0]), int(row[1])) if row is not None else (0, 0)


def _add_to_totals(conn: Connection, endpoint: str, spent: int, pending: int) -> None:
    """Move the endpoint's totals by a ledger write's difference (the row is made by the first one)."""
    if not spent and not pending:
        return
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(db.ledger_totals)
    t = db.ledger_totals.c
    # One atomic upsert: two first reservations on one endpoint at once cannot both insert.
    conn.execute(
        insert.values(endpoint=endpoint, spent_usd_nanos=spent, pending_usd_nanos=pending).on_conflict_do_update(
            index_elements=[t.endpoint],
            set_={"spent_usd_nanos": t.spent_usd_nanos + spent, "pending_usd_nanos": t.pending_usd_nanos + pending},
        )
    )


def _counts(state: str, usd_nanos: int) -> tuple[int, int]:
    """What one ledger row adds to (spent, pending)."""
    return (usd_nanos if state in COUNTING else 0, usd_nanos if state == "reserved" else 0)


def _move(conn: Connection, job_id: str, state: str, usd_nanos: int | None, **values: object) -> None:
    """Set a row's state and amount (None: its reservation), and its endpoint's totals by the difference."""
    lg = db.ledger.c
    # Locked (PostgreSQL; SQLite's BEGIN IMMEDIATE admits one writer): the difference is from this very row.
    row = conn.execute(
        sa.select(lg.endpoint, lg.state, lg.usd_nanos, lg.reserved_usd_nanos).where(lg.job_id == job_id)
        .with_for_update()
    ).first()
    if row is None:
        return
    new = row.reserved_usd_nanos if usd_nanos is None else usd_nanos
    conn.execute(db.ledger.update().where(lg.job_id == job_id).values(state=state, usd_nanos=new, **values))
    (spent, pending), (was_spent, was_pending) = _counts(state, new), _counts(row.state, row.usd_nanos)
    _add_to_totals(conn, row.endpoint, spent - was_spent, pending - was_pending)


def _spent_nanos(
    conn: Connection, endpoint: str, since: datetime | None = None, *, user_id: str | None = None
) -> int:
    if since is None and user_id is None:
        return _totals(conn, endpoint)[0]  # the whole ledger: its totals row, not a SUM over it
    query = sa.select(sa.func.coalesce(sa.func.sum(db.ledger.c.usd_nanos), 0)).where(
        db.ledger.c.endpoint == endpoint, db.ledger.c.state.in_(COUNTING)
    )
    if since is not None:
        query = query.where(db.ledger.c.created_at >= since)
    if user_id is not None:
        query = query.where(db.ledger.c.user_id == user_id)
    return int(conn.execute(query).scalar_one())


def reserve(
    conn: Connection, items: Sequence[Reservation], *, now: datetime | None = None, member: str | None = None
) -> None:
    """Check the caps and reserve every item, or raise :class:`BudgetExceeded` and reserve none.

    Must run inside ``db.write`` together with the inserts of the jobs it pays
    for, so a refused submission leaves nothing behind. ``member`` (a user id) is
    held to the per-member daily cap as well.
    """
    if not items:
        return
    now = now or clock.now()
    caps = get_caps(conn, lock=True)
    member_cap = caps.member_daily if member is not None else None
    capped = caps.daily is not None or caps.total is not None or member_cap is not None
    endpoints = {item.endpoint for item in items}
    if capped and any(item.usd is None for item in items):
        raise BudgetExceeded(
            "Not submitted: a budget cap is set but this request has no price in USD to check "
            "against it. Remove the cap in Settings or choose a priced model.",
            scope="unpriced",
            needed=None,
            left=None,
            cap=caps.daily if caps.daily is not None else (caps.total if caps.total is not None else member_cap),
        )
    for endpoint in endpoints:
        needed = sum((usd_to_nanos(i.usd, round_up=True) for i in items if i.endpoint == endpoint and i.usd), 0)
        what = "this request is" if len(items) == 1 else f"these {len(items)} jobs are"
        meter = " (simulated spend on the emulator)" if endpoint == "emulator" else ""
        # (scope, cap, spent since, by whom, how the refusal names it, what it adds)
        checks: tuple[tuple[str, Decimal | None, datetime | None, str | None, str, str], ...] = (
            ("daily", caps.daily, day_start(now), None, "today's", ""),
            ("total", caps.total, None, None, "the total", ""),
            ("member", member_cap, day_start(now), member, "your own daily", " An owner sets it in Settings."),
        )
        for scope, cap, since, who, named, after in checks:
            if cap is None:
                continue
            left = usd_to_nanos(cap) - _spent_nanos(conn, endpoint, since, user_id=who)
            if needed > left:
                raise BudgetExceeded(
                    f"Not submitted: {what} estimated at {format_usd(nanos_to_usd(needed))}, but only "
                    f"{format_usd(nanos_to_usd(max(left, 0)))} is left of {named} "
                    f"{format_usd(cap)} budget{meter}.{after}",
                    scope=scope,
                    needed=nanos_to_usd(needed),
                    left=nanos_to_usd(max(left, 0)),
                    cap=cap,
                )
    nanos = {i.job_id: usd_to_nanos(i.usd, round_up=True) if i.usd is not None else 0 for i in items}
    rows = [
        {
            "job_id": i.job_id,
            "run_id": i.run_id,
            "provider": i.provider,
            "endpoint": i.endpoint,
            "created_at": now,
            "updated_at": now,
            "state": "reserved",
            "reserved_usd_nanos": nanos[i.job_id],
            "usd_nanos": nanos[i.job_id],
            "user_id": i.user_id,
        }
        for i in items
    ]
    conn.execute(db.ledger.insert(), rows)
    for endpoint in sorted(endpoints):
        added = sum(nanos[i.job_id] for i in items if i.endpoint == endpoint)
        _add_to_totals(conn, endpoint, added, added)


def settle(
    conn: Connection,
    job_id: str,
    *,
    usd: Decimal | None,
    amount: Decimal | None = None,
    unit: str | None = None,
    estimated: bool,
) -> None:
    """Record the final cost: the provider's report, or (``estimated``) the reservation standing.

    ``usd`` None keeps the reserved USD figure (a report in credits with no USD rate).
    """
    _move(
        conn,
        job_id,
        "estimated" if estimated else "billed",
        None if usd is None else usd_to_nanos(usd),
        updated_at=clock.now(),
        billed_amount=None if amount is None else str(amount),
        billed_unit=unit,
    )


def release(conn: Connection, job_id: str) -> None:
    """Give the reservation back: the job was never charged."""
    _move(conn, job_id, "released", 0, updated_at=clock.now())


def reopen(conn: Connection, job_id: str, *, now: datetime | None = None) -> None:
    """Reserve the estimate again: a finished job is being checked again, its cost open until the provider answers."""
    _move(conn, job_id, "reserved", None, updated_at=now or clock.now())


def _left(cap: Decimal | None, spent: Decimal) -> Decimal | None:
    return None if cap is None else max(cap - spent, Decimal(0))


def spent_today(
    conn: Connection, endpoint: str = "live", *, now: datetime | None = None
) -> tuple[Decimal, Caps, Decimal | None]:
    """(spent today, the caps, left of today's cap): what the sidebar shows on every run.

    One range over ``ix_ledger_endpoint_created`` (today's rows), and no totals row either.
    """
    caps = get_caps(conn)
    spent = nanos_to_usd(_spent_nanos(conn, endpoint, day_start(now or clock.now())))
    return spent, caps, _left(caps.daily, spent)


def member_spent_today(
    conn: Connection, member: str, endpoint: str = "live", *, now: datetime | None = None
) -> tuple[Decimal, Decimal | None]:
    """(what ``member`` spent today, left of their own daily cap): one range over today's rows."""
    caps = get_caps(conn)
    spent = nanos_to_usd(_spent_nanos(conn, endpoint, day_start(now or clock.now()), user_id=member))
    return spent, _left(caps.member_daily, spent)


def spend(
    conn: Connection, endpoint: str = "live", *, now: datetime | None = None, member: str | None = None
) -> Spend:
    now = now or clock.now()
    caps = get_caps(conn)
    today = _spent_nanos(conn, endpoint, day_start(now))  # today's rows: a range on ix_ledger_endpoint_created
    total, pending = _totals(conn, endpoint)
    left_today = _left(caps.daily, nanos_to_usd(today))
    left_total = _left(caps.total, nanos_to_usd(total))
    member_today = member_left = None
    if member is not None:
        member_today = nanos_to_usd(_spent_nanos(conn, endpoint, day_start(now), user_id=member))
        member_left = _left(caps.member_daily, member_today)
    return Spend(
        endpoint=endpoint,
        today=nanos_to_usd(today),
        total=nanos_to_usd(total),
        pending=nanos_to_usd(pending),
        caps=caps,
        left_today=left_today,
        left_total=left_total,
        member_today=member_today,
        member_left=member_left,
    )


def member_spend(
    conn: Connection, endpoint: str = "live", *, user_id: str | None = None, now: datetime | None = None
) -> list[MemberSpend]:
    """Each member's spend today and in all, most spent first (``user_id``: only that member)."""
    led = db.ledger.c
    today = sa.case((led.created_at >= day_start(now), led.usd_nanos), else_=0)
    query = (
        sa.select(led.user_id, sa.func.coalesce(sa.func.sum(today), 0), sa.func.coalesce(sa.func.sum(led.usd_nanos), 0))
        .where(led.endpoint == endpoint, led.state.in_(COUNTING))
        .group_by(led.user_id)
    )
    if user_id is not None:
        query = query.where(led.user_id == user_id)
    out = [MemberSpend(r[0], nanos_to_usd(int(r[1])), nanos_to_usd(int(r[2]))) for r in conn.execute(query)]
    return sorted(out, key=lambda m: (-m.total, m.user_id or ""))

"""``ledger_totals`` (schema 7): kept by every ledger write, always the ledger's own sum, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from store_helpers import kept_totals, ledger_sums, new_run

from core import db
from core.history.store import Store
from core.history.views import Billing, JobError
from core.jobs.claims import JobClaims
from core.spend import budget
from core.spend.money import nanos_to_usd
from tests.seeding import bulk_seed

ENDPOINTS = ("live", "emulator")


@pytest.fixture
def store(db_url: str, data_dir: Path) -> Store:
    return Store(db_url, data_dir)


def assert_true_totals(store: Store, when: str) -> None:
    expected = ledger_sums(store)
    kept = kept_totals(store)
    for endpoint in ENDPOINTS:
        want = expected.get(endpoint, (0, 0))
        assert kept.get(endpoint, (0, 0)) == want, f"{endpoint} after {when}"
        spend = store.spend(endpoint)
        assert (spend.total, spend.pending) == (nanos_to_usd(want[0]), nanos_to_usd(want[1])), f"{endpoint} {when}"


def _finish(claims: JobClaims, job_id: str, rng: random.Random) -> str:
    """Send and end one active job some way, as the runner would; returns what was done."""
    if claims.claim(job_id, "me", 30) is None:
        return "not claimable"
    claims.mark_submitting(job_id, "me")
    claims.mark_submitted(job_id, "me", f"p-{job_id}")
    kind = rng.choice(("bill", "bill_credits", "estimate", "release", "unknown"))
    if kind == "bill":  # the provider's report, above or below the estimate
        usd = Decimal(rng.randrange(0, 400_000)) / Decimal(1_000_000)
        claims.finish(job_id, "me", status="succeeded", billing=Billing("billed", usd=usd, amount=usd, unit="USD"))
    elif kind == "bill_credits":  # a report in credits with no USD rate: the reservation stands as USD
        claims.finish(job_id, "me", status="succeeded",
                      billing=Billing("billed", usd=None, amount=Decimal(3), unit="credits"))
    elif kind == "estimate":
        claims.finish(job_id, "me", status="succeeded", billing=Billing("estimated"))
    elif kind == "release":
        claims.finish(job_id, "me", status="failed", billing=Billing("released"),
                      error=JobError("job_failed", "failed"))
    else:
        claims.finish(job_id, "me", status="unknown", billing=Billing("estimated"),
                      error=JobError("unknown", "lost contact"))
    return kind


def test_a_long_random_life_of_the_ledger_keeps_the_totals_equal_to_its_sum(store: Store) -> None:
    rng = random.Random(17)
    claims = JobClaims(store.engine)
    active: list[str] = []  # queued or sent, not finished
    reopenable: list[str] = []  # failed / unknown with a provider job id
    done: list[str] = []
    ops: dict[str, int] = {}
    for step in range(220):
        op = rng.choices(("reserve", "finish", "cancel", "requeue", "again"), weights=(4, 4, 1, 2, 1))[0]
        if op == "reserve" or not active and op in ("finish", "cancel"):
            _, ids = new_run(store, jobs=rng.randint(1, 3), endpoint=rng.choice(ENDPOINTS),
                             usd=rng.choice(("0.011", "0.042", "0.167", "1.25", None)),
                             user_id=rng.choice((None, "ann", "bob")))
            active.extend(ids)
            op = "reserve"
        elif op == "finish":
            job_id = active.pop(rng.randrange(len(active)))
            op = _finish(claims, job_id, rng)
            (reopenable if op in ("release", "unknown") else done).append(job_id)
        elif op == "cancel":  # a queued job canceled before it was sent gives its reservation back
            job_id = active.pop(rng.randrange(len(active)))
            claims.request_cancel(job_id)
            done.append(job_id)
        elif op == "requeue" and reopenable:  # "check again": the cost is open (reserved) again
            job_id = reopenable.pop(rng.randrange(len(reopenable)))
            assert claims.reopen(job_id)
            active.append(job_id)
        elif op == "again" and done:  # a write repeated on a settled row moves the totals by nothing
            job_id = rng.choice(done)
            with db.write(store.engine) as conn:
                row = conn.execute(sa.select(db.ledger.c.state).where(db.ledger.c.job_id == job_id)).scalar_one()
                if row == "released":
                    budget.release(conn, job_id)
                else:
                    budget.settle(conn, job_id, usd=None, estimated=True)
        ops[op] = ops.get(op, 0) + 1
        assert_true_totals(store, f"step {step} ({op})")
    # Every kind of write happened, on both meters, and money is both spent and still pending.
    kinds = {"reserve", "bill", "bill_credits", "estimate", "release", "unknown", "cancel", "requeue", "again"}
    assert kinds <= set(ops), ops
    sums = ledger_sums(store)
    assert all(sums[e][0] > 0 and sums[e][1] > 0 for e in ENDPOINTS), sums
    before = kept_totals(store)
    with db.write(store.engine) as conn:
        budget.recount(conn)
    assert kept_totals(store) == before  # a recount from scratch finds the same


def test_a_refused_submission_moves_no_total(store: Store) -> None:
    new_run(store, usd="0.30")
    store.set_caps(Decimal("0.50"), None)
    with pytest.raises(budget.BudgetExceeded):
        new_run(store, usd="0.30")
    assert kept_totals(store) == {"live": (300_000_000, 300_000_000)} == ledger_sums(store)


def test_the_total_cap_is_checked_against_the_kept_total(store: Store) -> None:
    """The totals row is what the total cap reads: a total that drifted would let a submission through."""
    store.set_caps(None, Decimal("1.00"))
    new_run(store, usd="0.60")
    with pytest.raises(budget.BudgetExceeded, match="total"):
        new_run(store, usd="0.60")
    with db.write(store.engine) as conn:  # pretend the totals lost the first reservation
        conn.execute(db.ledger_totals.update().values(spent_usd_nanos=0))
    new_run(store, usd="0.60")  # now it fits: the cap read the totals row, not a SUM
    with db.write(store.engine) as conn:
        budget.recount(conn)
    with pytest.raises(budget.BudgetExceeded, match="total"):
        new_run(store, usd="0.01")


def test_spend_reads_only_today_s_rows_and_the_totals_row(store: Store) -> None:
    bulk_seed(store, 300)
    statements: list[str] = []

    def seen(conn, cursor, statement, *args) -> None:
        statements.append(" ".join(statement.split()).lower())

    sa.event.listen(store.engine, "before_cursor_execute", seen)
    try:
        store.spend("live")
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", seen)
    on_ledger = [s for s in statements if "from ledger " in s + " "]
    assert on_ledger and all("created_at >=" in s for s in on_ledger), on_ledger  # no SUM over every row
    assert any("from ledger_totals" in s for s in statements)


def test_seeded_ledgers_are_counted(store: Store) -> None:
    bulk_seed(store, 400)
    assert kept_totals(store) == ledger_sums(store)
    assert store.spend("live").total > 0

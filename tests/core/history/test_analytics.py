"""core.history.analytics: spend, latency and failures, real and simulated apart."""

from __future__ import annotations

from decimal import Decimal

from core.history import analytics
from core.history.store import Store
from core.history.views import JobFilter
from tests.seeding import seed_jobs


def test_real_and_simulated_never_mix():
    store = Store()
    seed_jobs(store, 80)
    live = analytics.ledger_frame(store, "live")
    sim = analytics.ledger_frame(store, "emulator")
    assert len(live) + len(sim) == 80
    assert store.count_jobs(JobFilter(endpoint="emulator")) == len(sim)
    counted = Decimal(str(round(live[live["state"] != "released"]["usd"].sum(), 9)))
    assert abs(counted - store.spend("live").total) < Decimal("0.000001")


def test_spend_per_day_and_by_quality_sum_to_the_total():
    store = Store()
    seed_jobs(store, 120)
    df = analytics.ledger_frame(store, "live")
    per_day = analytics.spend_per_day(df)
    by_quality = analytics.cost_by_quality(df)
    total = df[df["state"] != "released"]["usd"].sum()
    assert abs(per_day["usd"].sum() - total) < 1e-9
    assert abs(by_quality["usd"].sum() - total) < 1e-9
    assert list(dict.fromkeys(by_quality["quality"])) == ["low", "medium", "high"]


def test_latency_percentiles_and_failures():
    store = Store()
    seed_jobs(store, 120)
    lat = analytics.latency_by_provider(store, "live")
    assert (lat["p95"] >= lat["p50"]).all() and (lat["p50"] > 0).all()
    fails = analytics.failures_by_kind(store, "live")
    failed = store.count_jobs(JobFilter(statuses=("failed", "canceled", "unknown"), endpoint="live"))
    assert fails["jobs"].sum() == failed
    assert "moderation block" in set(fails["kind"])


def test_estimate_against_billed_only_counts_reported_bills():
    store = Store()
    seed_jobs(store, 60)
    evb = analytics.estimate_vs_billed(store, "live")
    assert list(evb["provider"]) == ["OpenAI"]  # only OpenAI reports a bill in this seed
    row = evb.iloc[0]
    assert round(row["difference_pct"], 1) == -4.0


def test_ledger_records_are_exact_strings():
    store = Store()
    seed_jobs(store, 10)
    rows = analytics.ledger_records(store, "live")
    assert all(isinstance(r["usd"], str) for r in rows)
    assert sum((Decimal(r["usd"]) for r in rows), Decimal(0)) == store.spend("live").total

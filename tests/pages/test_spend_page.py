"""The Spend page: charts of a seeded store, real and simulated apart, the budget left, the ledger CSV."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import clock
from core.exports import downloads as exporting
from core.history import analytics
from core.history.store import Store
from core.spend.money import format_usd
from tests.seeding import seed_jobs

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "app_pages" / "spend.py")


@pytest.fixture
def store() -> Store:
    return Store()


def _page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60)


def test_charts_and_ledger_for_real_and_simulated_spend(store):
    seed_jobs(store, 300)
    at = _page().run()
    assert not at.exception
    real, simulated = at.tabs
    assert "Real spend" in real.label and "Simulated" in simulated.label
    real_charts = real.get("vega_lite_chart")
    # Per day, by quality, estimated vs billed, latency, failures: all have data in this seed.
    assert len(real_charts) == 5
    assert len(simulated.get("vega_lite_chart")) >= 3
    assert any("Simulated spend" in i.value for i in simulated.info)
    live_rows = len(analytics.ledger_records(store, "live", None))
    sim_rows = len(analytics.ledger_records(store, "emulator", None))
    labels = [b.label for b in at.get("download_button")]
    assert labels == [f"Download the ledger (CSV, {live_rows} rows)", f"Download the ledger (CSV, {sim_rows} rows)"]
    assert live_rows + sim_rows == 300
    headings = [m.value for m in real.markdown]
    for title in ("**Spend per day, by provider**", "**Average cost per image, by quality**",
                  "**Estimated against billed**", "**What went wrong**"):
        assert title in headings


def test_the_ledger_csv_is_exact_and_real_only(store):
    seed_jobs(store, 40)
    rows = analytics.ledger_records(store, "live", None)
    text = exporting.ledger_csv(rows)
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == len(rows) and all(r["endpoint"] == "live" for r in parsed)
    total = sum((Decimal(r["usd"]) for r in parsed), Decimal(0))
    assert total == store.spend("live").total  # exact decimals, the same sum the budget uses


def test_budget_left_is_shown(store):
    seed_jobs(store, 20)
    store.set_caps(Decimal("5"), Decimal("100"))
    at = _page().run()
    real = at.tabs[0]
    metrics = {m.label: m.value for m in real.metric}
    spend = store.spend("live")
    assert metrics["Left today"] == format_usd(spend.left_today)
    assert metrics["Left in total"] == format_usd(spend.left_total)
    assert len(real.get("progress")) == 2


def test_empty_store_says_there_is_no_spend_yet():
    at = _page().run()
    assert not at.exception
    assert any("No real spend in this period" in i.value for i in at.tabs[0].info)
    assert not at.get("vega_lite_chart")


def test_period_narrows_the_charts(store):
    seed_jobs(store, 300)  # 37 minutes apart: about eight days of history
    at = _page().run()
    at.segmented_control(key="spend_period").set_value("7 days").run()
    assert not at.exception
    midnight = clock.local_now().replace(hour=0, minute=0, second=0, microsecond=0)
    week = len(analytics.ledger_records(store, "live", midnight - timedelta(days=6)))
    assert 0 < week < len(analytics.ledger_records(store, "live"))
    assert at.get("download_button")[0].label == f"Download the ledger (CSV, {week} rows)"

"""core.compare.experiments: planning grids, pricing them against the budget, keeping and reading the layout."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest

import clock
from core.compare import experiments as ex
from core.history.store import Store
from providers.catalogue import load_catalogue
from providers.registry import model_for
from providers.types import ImageRequest, InputImage
from tests.seeding import InstantRunner, make_image, seed_experiment

BASE = ImageRequest(prompt="A lighthouse at dawn", model="gpt-image-2", size="1:1", quality="medium")


def _quote(plan, store, endpoint="live"):
    return ex.quote_plan(plan, catalogue=load_catalogue(), endpoint_for=lambda _p: endpoint, spend_for=store.spend)


def test_side_by_side_is_one_row_of_targets():
    plan = ex.plan_side_by_side(BASE, [("openai", "low"), ("evolink", "high"), ("openai", "low")])
    assert plan.shape == (1, 2)  # a repeated target is one column
    assert [c.label(plan.rows, plan.cols) for c in plan.cells] == ["OpenAI · low", "EvoLink · high"]
    assert [(c.provider, c.request.quality, c.request.n) for c in plan.cells] == [("openai", "low", 1),
                                                                                 ("evolink", "high", 1)]


def test_grid_applies_row_and_column_values_to_the_base_request():
    plan = ex.plan_grid(BASE, "openai", ex.Axis("prompt", ("A cat", "A dog")), ex.Axis("aspect", ("1:1", "3:2")))
    assert plan.shape == (2, 2)
    cell = next(c for c in plan.cells if (c.row, c.col) == (1, 1))
    assert (cell.provider, cell.request.prompt, cell.request.size, cell.request.quality) == (
        "openai", "A dog", "3:2", "medium")
    with pytest.raises(ValueError):
        ex.plan_grid(BASE, "openai", ex.Axis("quality", ("low",)), ex.Axis("quality", ("high",)))


def test_a_provider_without_the_model_uses_its_default():
    before, after = date(2026, 11, 30), date(2026, 12, 1)
    assert model_for("openai", "gpt-image-1.5", today=before) == "gpt-image-1.5"
    assert model_for("openai", "gpt-image-1.5", today=after) == "gpt-image-2"  # shut down that day
    assert model_for("coretoday", "gpt-image-1.5", today=before) == "gpt-image-2"
    assert model_for("openai", "gpt-image-1", today=before) == "gpt-image-2"  # retired: not offered


@pytest.mark.today("2026-11-30")
def test_plans_follow_the_clock_for_retired_models():
    plan = ex.plan_side_by_side(BASE.with_(model="gpt-image-1.5"), [("openai", "low")])
    assert plan.cells[0].model == "gpt-image-1.5"
    with clock.pin("2026-12-01"):
        plan = ex.plan_side_by_side(BASE.with_(model="gpt-image-1.5"), [("openai", "low")])
    assert plan.cells[0].model == "gpt-image-2"


def test_quote_totals_per_endpoint_and_leaves_out_cells_that_cannot_run():
    store = Store()
    long_prompt = ImageRequest(prompt="x" * 2500, model="gpt-image-2", size="1:1")
    plan = ex.plan_side_by_side(long_prompt, [("openai", "low"), ("apiframe", "low")])
    routes = {"openai": "live", "apiframe": "emulator"}
    quote = ex.quote_plan(plan, catalogue=load_catalogue(), endpoint_for=routes.__getitem__, spend_for=store.spend)
    by = {q.cell.provider: q for q in quote.cells}
    assert by["openai"].problem is None and by["openai"].usd > 0
    assert by["apiframe"].problem  # Apiframe takes prompts up to 2,000 characters
    assert quote.totals == {"live": by["openai"].usd}
    assert quote.fits and len(quote.runnable) == 1


def test_live_url_only_providers_cannot_take_local_files():
    image = InputImage(data=make_image(1), mime="image/png", name="in.png")
    plan = ex.plan_side_by_side(BASE.with_(images=(image,)), [("evolink", "low")])
    assert _quote(plan, Store(), "live").cells[0].problem
    assert _quote(plan, Store(), "emulator").cells[0].problem is None  # the emulator hosts the file


def test_quote_refuses_what_the_budget_cannot_cover():
    store = Store()
    plan = ex.plan_side_by_side(BASE, [("openai", "high"), ("evolink", "high")])
    total = _quote(plan, store).totals["live"]
    store.set_caps(total - Decimal("0.01"), None)
    quote = _quote(plan, store)
    assert not quote.fits and "left today" in quote.refusal
    # Emulator money is metered apart against the same caps, and said so.
    assert "simulated budget" in _quote(plan, store, "emulator").refusal
    store.set_caps(total, None)
    assert _quote(plan, store).fits


def test_run_plan_keeps_a_layout_that_load_grid_reads_back():
    store = Store()
    exp_id = seed_experiment(store, rows=("low", "medium", "high"), cols=("openai", "evolink"), name="Tiers")
    grid = ex.load_grid(store, exp_id)
    assert grid.name == "Tiers" and grid.kind == "grid"
    assert (len(grid.rows), len(grid.cols)) == (3, 2)
    assert grid.cell_label(2, 1) == "high × EvoLink"
    assert all(c.job is not None and c.image is not None for c in grid.cells.values())
    assert {c.job.quality for c in grid.cells.values()} == {"low", "medium", "high"}
    assert not grid.active


def test_a_cell_refused_at_submission_is_recorded_not_lost():
    store = Store()

    class Refusing(InstantRunner):
        def submit(self, provider, request, **kw):
            if provider == "evolink":
                from core.spend.budget import BudgetExceeded

                raise BudgetExceeded("Over the daily budget.", scope="daily", needed=None, left=None, cap=None)
            return super().submit(provider, request, **kw)

    plan = ex.plan_side_by_side(BASE, [("openai", "low"), ("evolink", "low")])
    out = ex.run_plan(plan, _quote(plan, store), runner=Refusing(store), store=store)
    assert out.submitted == 1 and out.errors == ("EvoLink · low: Over the daily budget.",)
    grid = ex.load_grid(store, out.experiment_id)
    assert grid.cell(0, 1).error == "Over the daily budget." and grid.cell(0, 0).job is not None


def test_grid_csv_has_one_row_per_cell():
    store = Store()
    grid = ex.load_grid(store, seed_experiment(store))
    rows = list(csv.DictReader(io.StringIO(ex.grid_csv(grid))))
    assert [(r["row_label"], r["column_label"]) for r in rows] == [
        ("low", "OpenAI"), ("low", "EvoLink"), ("high", "OpenAI"), ("high", "EvoLink")]
    assert all(r["status"] == "succeeded" and r["estimate_usd"] for r in rows)


def test_plain_notes_are_not_a_layout():
    assert ex.parse_layout("Tried three tiers") is None
    assert ex.parse_layout('{"tag": "something else"}') is None
    assert ex.parse_layout("{not json") is None


def test_default_name_reads_well():
    plan = ex.plan_grid(BASE, "openai", ex.Axis("quality", ("low", "high")), ex.Axis("provider", ("openai",)))
    assert ex.default_name(plan) == "A lighthouse at dawn (2×1 grid)"

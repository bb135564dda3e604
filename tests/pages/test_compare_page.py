"""The Compare page: side by side and grid previews with cost, running on the emulator, ratings, winner, reopening."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import services as emulator_service
from core.compare import experiments
from core.history.store import Store
from core.history.views import JobFilter
from tests.ports import free_port
from tests.seeding import seed_experiment

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "app_pages" / "compare.py")


@pytest.fixture
def emulator(monkeypatch):
    """The built-in emulator on its own port, answering at once; stopped afterwards."""
    monkeypatch.setenv("IMAGE_STUDIO_EMULATOR_PORT", str(free_port()))
    monkeypatch.setenv("IMAGE_STUDIO_EMULATOR_LATENCY", "0")
    emulator_service.stop_emulator()
    yield
    emulator_service.stop_emulator()


@pytest.fixture
def store() -> Store:
    return Store()


def _page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60)


def _wait_done(at: AppTest, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        summary = [c.value for c in at.caption if " · made " in c.value]
        if summary and "running" not in summary[0]:
            return
        time.sleep(0.3)
    raise AssertionError("the comparison did not finish")


def test_without_a_prompt_the_page_asks_for_one():
    at = _page().run()
    assert not at.exception
    assert any("Write a prompt" in i.value for i in at.info)
    assert not [b for b in at.button if b.key == "compare_run"]


def test_side_by_side_shows_each_cost_and_the_total_before_running(emulator):
    at = _page().run()
    at.text_area(key="compare_prompt").set_value("A red fox in autumn leaves").run()
    at.multiselect(key="compare_providers").set_value(["openai", "evolink"]).run()
    at.multiselect(key="compare_qualities").set_value(["low", "high"]).run()
    assert not at.exception
    preview = at.dataframe[0].value
    assert list(preview.columns) == ["OpenAI · low", "OpenAI · high", "EvoLink · low", "EvoLink · high"]
    assert all("$" in str(v) for v in preview.iloc[0])
    run = at.button(key="compare_run")
    assert run.label.startswith("Run 4 images · $") and not run.disabled
    # No keys in the test environment: every provider runs on the emulator, and the page says so.
    assert any("no API key" in i.value and "emulator" in i.value for i in at.info)
    # Only simulated money is at stake, so no "Estimated cost $0.00" beside it.
    assert [m.label for m in at.metric][:2] == ["Images", "Simulated"]


def test_too_many_columns_suggests_the_grid():
    at = _page().run()
    at.text_area(key="compare_prompt").set_value("A cat").run()
    at.multiselect(key="compare_providers").set_value(["openai", "coretoday", "apiframe", "evolink"]).run()
    at.multiselect(key="compare_qualities").set_value(["low", "medium", "high"]).run()
    assert any("12 columns" in i.value for i in at.info)


def test_budget_blocks_a_comparison_that_does_not_fit(emulator, store):
    store.set_caps(Decimal("0.001"), None)
    at = _page().run()
    at.text_area(key="compare_prompt").set_value("A lighthouse at dawn").run()
    assert at.button(key="compare_run").disabled
    assert any("is left today" in e.value for e in at.error)


def test_grid_preview_prices_every_cell():
    at = _page().run()
    at.segmented_control(key="compare_mode").set_value("Experiment grid").run()
    at.selectbox(key="compare_grid_rows").set_value("prompt").run()
    at.text_area(key="compare_grid_values_prompt").set_value("A cat\nA dog\nA fox").run()
    assert not at.exception
    assert at.selectbox(key="compare_grid_cols").value == "provider"
    preview = at.dataframe[0].value
    assert preview.shape == (3, 2)  # 3 prompts x the first two providers
    assert list(preview.index) == ["A cat", "A dog", "A fox"]
    assert at.button(key="compare_run").label.startswith("Run 6 images")


def test_grid_runs_on_the_emulator_then_rates_and_picks_one_winner(emulator, store):
    at = _page().run()
    at.segmented_control(key="compare_mode").set_value("Experiment grid").run()
    at.text_area(key="compare_prompt").set_value("A lighthouse on a cliff at dawn").run()
    at.button(key="compare_run").click().run()
    assert not at.exception
    exp_id = at.session_state["compare_open"]
    assert at.query_params["experiment"] == exp_id  # the address is a link to these results
    _wait_done(at)
    assert not at.exception
    grid = experiments.load_grid(store, exp_id)
    assert (len(grid.rows), len(grid.cols)) == (2, 2)
    assert all(c.job.status == "succeeded" for c in grid.cells.values())
    assert all(c.endpoint == "emulator" for c in grid.cells.values())
    assert any("2×2 grid · Quality × Provider" in c.value and "4 done" in c.value for c in at.caption)
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Contact sheet (PNG)", "Results (CSV)", "Report (HTML)"]

    first, second = grid.cell(0, 0).job, grid.cell(1, 1).job
    key = f"compare_{exp_id[:8]}_0_0_rate_{first.id[:8]}"
    at.get("feedback")[0].set_value(4).run()
    assert at.get("feedback")[0].key == key
    assert store.get_job(first.id).images[0].rating == 5

    at.button(key=f"compare_{exp_id[:8]}_0_0_win_{first.id[:8]}").click().run()
    at.button(key=f"compare_{exp_id[:8]}_1_1_win_{second.id[:8]}").click().run()
    winners = [j.id for j in store.get_jobs(grid.job_ids) if j.images[0].winner]
    assert winners == [second.id], "one winner per experiment"
    assert any(b.label == "Winner ✓" for b in at.button)


def test_past_experiments_open_again(store):
    exp_id = seed_experiment(store, name="Fox poster tiers")
    at = _page().run()
    at.segmented_control(key="compare_mode").set_value("Past experiments").run()
    assert not at.exception
    assert any("Fox poster tiers" in m.value for m in at.markdown)
    at.button(key=f"compare_past_open_{exp_id}").click().run()
    assert not at.exception
    assert at.session_state["compare_open"] == exp_id
    assert len(at.get("image")) >= 4 + 4  # the card's thumbnails and the grid itself
    assert any(s.value == "Fox poster tiers" for s in at.subheader)


def test_past_experiments_empty_state():
    at = _page().run()
    at.segmented_control(key="compare_mode").set_value("Past experiments").run()
    assert any("No experiments yet" in i.value for i in at.info)


def test_a_link_opens_an_experiment(store):
    exp_id = seed_experiment(store, name="Linked grid")
    at = _page()
    at.query_params["experiment"] = exp_id
    at.run()
    assert not at.exception
    assert any(s.value == "Linked grid" for s in at.subheader)
    assert store.count_jobs(JobFilter(experiment_id=exp_id)) == 4
    assert len(at.get("feedback")) == 4


def test_set_up_again_puts_the_settings_back_in_the_form(store):
    exp_id = seed_experiment(store, rows=("low", "medium"), cols=("openai", "apiframe"))
    at = _page()
    at.query_params["experiment"] = exp_id
    at.run()
    at.button(key=f"compare_again_{exp_id}").click().run()
    assert not at.exception
    assert at.session_state["compare_mode"] == "Experiment grid"
    assert at.selectbox(key="compare_grid_rows").value == "quality"
    assert at.multiselect(key="compare_grid_values_quality").value == ["low", "medium"]
    assert at.multiselect(key="compare_grid_values_provider").value == ["openai", "apiframe"]
    assert at.text_area(key="compare_prompt").value == "A lighthouse on a cliff at dawn, watercolor"
    assert at.button(key="compare_run").label.startswith("Run 4 images")


def test_input_images_make_every_cell_an_edit(emulator):
    from tests.seeding import make_image

    at = _page().run()
    at.text_area(key="compare_prompt").set_value("Make the sky stormy").run()
    at.multiselect(key="compare_providers").set_value(["openai", "evolink"]).run()
    at.file_uploader(key="compare_uploads").set_value(("in.png", make_image(5, (256, 256)), "image/png")).run()
    assert not at.exception
    assert any(e.label.startswith("Input images and name · 1 image") for e in at.expander)
    assert at.button(key="compare_run").label.startswith("Run 2 images")
    assert not at.warning or all("can't run" not in w.value for w in at.warning)

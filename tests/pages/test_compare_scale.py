"""Compare that scales (issue 15), through AppTest on the emulator: at most four cards per row, each card
labelled inside, retry of one failed cell while the others keep their results, each cell's time, the quote
one line per cell when it is wider than four, quality words in the builder."""

from __future__ import annotations

from core import services as emulator_service
from core.compare import experiments
from tests.pages.test_compare_page import _page, _wait_done, emulator, store  # noqa: F401  (fixtures)
from ui import compare_results

EIGHT = (["openai", "coretoday", "apiframe", "evolink"], ["low", "high"])


def test_cards_per_row_never_exceed_four():
    assert [compare_results.per_row(n) for n in range(1, 10)] == [1, 2, 3, 4, 3, 3, 4, 4, 3]


def test_eight_side_by_side_wrap_in_rows_of_four_with_their_labels_inside(emulator, store):  # noqa: F811
    at = _page().run()
    at.text_area(key="compare_prompt").set_value("A lighthouse on a cliff at dawn").run()
    at.multiselect(key="compare_providers").set_value(EIGHT[0]).run()
    at.multiselect(key="compare_qualities").set_value(EIGHT[1]).run()
    assert at.multiselect(key="compare_qualities").format_func("high") == "High"
    quote = at.dataframe[0].value
    assert len(quote) == 8 and "Estimated cost" in quote.columns, "an 8-wide quote is one line per cell"
    at.button(key="compare_run").click().run()
    _wait_done(at)
    assert not at.exception, [e.value for e in at.exception]
    grid = experiments.load_grid(store, at.session_state["compare_open"])
    # Every card says which cell it is, in bold, inside its border.
    labels = {grid.cols.label(c) for c in range(len(grid.cols))}
    inside = [m.value.strip("*") for m in at.markdown if m.value.startswith("**")]
    assert labels <= set(inside), (labels, inside)
    times = [m.value for m in at.markdown if " · took **" in m.value and m.value.endswith(" s**")]
    assert len(times) == 8, times  # each cell's cost and time
    assert not [v for v in times if v.startswith("**—**")], "Apiframe's cells say their credits, not a bare dash"


def test_one_failed_cell_runs_again_and_the_others_keep_their_results(emulator, store):  # noqa: F811
    at = _page().run()
    at.text_area(key="compare_prompt").set_value("A lighthouse on a cliff at dawn").run()
    at.multiselect(key="compare_providers").set_value(["openai", "evolink"]).run()
    emulator_service.get_emulator().emulator.inject("evolink", "job_failed")
    at.button(key="compare_run").click().run()
    _wait_done(at)
    exp_id = at.session_state["compare_open"]
    grid = experiments.load_grid(store, exp_id)
    ok, failed = grid.cell(0, 0), grid.cell(0, 1)
    assert ok.job.status == "succeeded" and failed.job.status == "failed"
    kept = ok.job.id

    retry = at.button(key=f"compare_{exp_id[:8]}_0_1_retry")
    assert any(c.value.startswith("Ended after ") for c in at.caption), "a failed cell says its time too"
    retry.click().run()
    assert not at.exception, [e.value for e in at.exception]
    _wait_done(at)
    grid = experiments.load_grid(store, exp_id)
    assert grid.cell(0, 0).job.id == kept, "the good cell was not sent again"
    assert grid.cell(0, 1).job.status == "succeeded" and grid.cell(0, 1).job.id != failed.job.id
    assert len(store.get_run(grid.cell(0, 1).job.run_id).jobs) == 1
    assert not [b for b in at.button if b.key and b.key.endswith("_retry")]

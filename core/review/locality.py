"""Edit locality: how far a masked edit's result spilled outside its mask, measured once and stored.

GPT Image models treat a mask as a hint and may repaint the whole picture. When a masked edit's
results are stored (``core.jobs.driver``), ``record`` measures each against the edit's input and
mask (``core.images.mask.mask_report``: the share of pixels outside the mask that changed beyond
a small tolerance, and the mean change there) and keeps it in ``edit_spill`` beside the image.
An edit without a mask, or whose input or mask is a URL, gets no score. Pages read ``spill_for``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

import clock
from core import db
from core.images.mask import MaskReport, mask_report
from providers.errors import ProviderError
from providers.types import ImageRequest

__all__ = ["HIGH_SPILL", "Spill", "measure", "record", "spill_for"]

log = logging.getLogger(__name__)

# Above this share of the pixels outside the mask changed, the edit is not local: offer the composite.
HIGH_SPILL = 0.05


@dataclass(frozen=True)
class Spill:
    fraction: float  # 0..1 of the pixels outside the mask
    mean_change: float  # 0..1 of full scale, over the pixels outside the mask
    changed: int
    total: int
    resized: bool

    @property
    def percent(self) -> float:
        return round(self.fraction * 100, 1)

    @property
    def high(self) -> bool:
        return self.fraction > HIGH_SPILL


def measure(request: ImageRequest, outputs: Sequence[bytes]) -> list[MaskReport | None]:
    """One report per output of a masked edit with local input bytes; [] for anything else."""
    mask = request.mask
    if mask is None or mask.data is None or not request.images or request.images[0].data is None:
        return []
    original = request.images[0].data
    out: list[MaskReport | None] = []
    for data in outputs:
        try:
            out.append(mask_report(original, data, mask.data))
        except (ProviderError, OSError, ValueError) as err:  # an output it cannot read: no score, said in the log
            log.warning("edit spill not measured: %s", err)
            out.append(None)
    return out


def record(engine: Engine, job_id: str, request: ImageRequest, outputs: Sequence[bytes]) -> int:
    """Measure and store the spill of a stored masked edit's results; returns how many were scored."""
    reports = measure(request, outputs)
    rows = [
        {"job_id": job_id, "idx": idx, "fraction": r.fraction, "mean_change": r.mean_change,
         "changed": r.changed_outside, "total": r.total_outside, "resized": r.resized, "computed_at": clock.now()}
        for idx, r in enumerate(reports) if r is not None
    ]
    if not rows:
        return 0
    s = db.edit_spill.c
    with db.write(engine) as conn:
        have = set(conn.execute(sa.select(s.idx).where(s.job_id == job_id)).scalars())  # computed once
        fresh = [r for r in rows if r["idx"] not in have]
        if fresh:
            conn.execute(db.edit_spill.insert(), fresh)
    return len(rows)


def spill_for(engine: Engine, job_ids: Sequence[str]) -> dict[tuple[str, int], Spill]:
    """The stored spill of these jobs' images, by (job id, image index); unmasked edits are absent."""
    if not job_ids:
        return {}
    s = db.edit_spill.c
    with db.read(engine) as conn:
        rows = conn.execute(sa.select(db.edit_spill).where(s.job_id.in_(list(job_ids)))).all()
    return {(r.job_id, r.idx): Spill(fraction=r.fraction, mean_change=r.mean_change, changed=int(r.changed),
                                     total=int(r.total), resized=bool(r.resized)) for r in rows}

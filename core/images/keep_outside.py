"""Keep everything outside the mask: remember the choice per run, composite results once, keep them on disk.

GPT Image models treat a mask as a hint and may repaint the whole picture; the
Studio puts the original back outside the mask after the edit
(``imageprep.composite_outside_mask``) and reports how much the model had
changed there. The provider's own output stays untouched in the history.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from core.images import prepare as imageprep

__all__ = ["Composite", "composite", "remember", "wanted"]


def _runs_dir(data_dir: Path) -> Path:
    return data_dir / "studio" / "runs"


def remember(data_dir: Path, run_id: str, keep_outside: bool) -> None:
    folder = _runs_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{run_id}.json"
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"keep_outside_mask": bool(keep_outside)}))
    os.replace(tmp, target)  # atomic: a half-written choice is never read


def wanted(data_dir: Path, run_id: str) -> bool | None:
    """The choice made for a masked run; None when the run had no mask (or predates this)."""
    try:
        return bool(json.loads((_runs_dir(data_dir) / f"{run_id}.json").read_text()).get("keep_outside_mask"))
    except (OSError, ValueError, AttributeError):
        return None


@dataclass(frozen=True)
class Composite:
    path: Path
    format: str
    changed_outside: int
    total_outside: int
    percent: float
    resized: bool
    width: int | None = None
    height: int | None = None


def composite(data_dir: Path, original: Path, edited: Path, mask: Path, fmt: str) -> Composite:
    """The edited image with the original outside the mask, made once and cached beside the history."""
    key = hashlib.sha256(f"{original.name}|{edited.name}|{mask.name}|{fmt}".encode()).hexdigest()[:32]
    folder = data_dir / "studio" / "composites"
    ext = {"jpeg": "jpg"}.get(fmt, fmt)
    out, meta = folder / f"{key}.{ext}", folder / f"{key}.json"
    try:
        info = json.loads(meta.read_text())
        if out.exists():
            return Composite(out, fmt, info["changed"], info["total"], info["percent"], info["resized"],
                             info.get("width"), info.get("height"))
    except (OSError, ValueError, KeyError):
        pass
    data, report = imageprep.composite_outside_mask(
        original.read_bytes(), edited.read_bytes(), mask.read_bytes(), fmt
    )
    folder.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    with Image.open(out) as im:
        width, height = im.size
    meta.write_text(json.dumps({"changed": report.changed_outside, "total": report.total_outside,
                                "percent": report.percent, "resized": report.resized,
                                "width": width, "height": height}))
    return Composite(out, fmt, report.changed_outside, report.total_outside, report.percent, report.resized,
                     width, height)

"""How far a masked edit spilled: the share of the kept area (outside the mask) that changed.

OpenAI's image-eval guidance names "edits spill beyond the intended area" as a failure;
this measures it. The mask follows OpenAI's convention: fully transparent pixels are the
area to edit, opaque ones are to be kept. The input, the mask and the result are compared
at the mask's size, at most ``_SIDE`` pixels on the long edge (enough for a share, and
fast). A pixel counts as changed when any channel moved by more than ``tolerance`` of 255,
so compression noise in a JPEG or WebP result is not counted.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = ["DEFAULT_TOLERANCE", "Locality", "edit_locality"]

DEFAULT_TOLERANCE = 24  # of 255: about 10%, above JPEG/WebP noise at the qualities providers send
_SIDE = 512


@dataclass(frozen=True)
class Locality:
    spill: float  # share of kept pixels that changed beyond the tolerance, 0..1
    mean_change: float  # mean change over the kept area, 0..1 of full scale
    kept_pixels: int  # how many pixels the mask keeps, at the compared size

    @property
    def percent(self) -> str:
        return f"{self.spill * 100:.1f}%"


def _rgb(data: bytes, size: tuple[int, int]) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        rgb = im.convert("RGB")
        if rgb.size != size:
            rgb = rgb.resize(size, Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.int16)


def edit_locality(
    input_image: bytes, mask: bytes, result: bytes, *, tolerance: int = DEFAULT_TOLERANCE
) -> Locality | None:
    """The spill of one masked edit; None when the mask keeps nothing (the whole image was to change)."""
    with Image.open(io.BytesIO(mask)) as m:
        m.load()
        alpha = m.getchannel("A") if "A" in m.getbands() else None
        width, height = m.size
        scale = min(1.0, _SIDE / max(width, height))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        if alpha is None:
            return None  # a mask without transparency marks nothing to edit: nothing to measure against
        if alpha.size != size:
            alpha = alpha.resize(size, Image.Resampling.NEAREST)
        kept = np.asarray(alpha) >= 128
    count = int(kept.sum())
    if count == 0:
        return None
    before = _rgb(input_image, size)
    after = _rgb(result, size)
    change = np.abs(after - before).max(axis=2)
    outside = change[kept]
    return Locality(
        spill=float((outside > tolerance).mean()),
        mean_change=float(outside.mean() / 255),
        kept_pixels=count,
    )

"""One PNG of a comparison: every cell's image with its row and column labels, cost and time.

The layout depends only on the grid's shape (``sheet_size``), never on the
images or texts in it, so a sheet of a 2x2 grid is always the same size: easy
to paste into a slide, and easy to test. The sheet carries its experiment's
layout as a recipe (PNG text chunk), like every image the app exports.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from core.images import recipe

__all__ = ["CELL", "SheetCell", "SheetSpec", "render", "sheet_size"]

CELL = 320  # each image is fitted into a CELL x CELL box
PAD = 24
GAP = 16
TITLE_H = 72
HEADER_H = 44
CAPTION_H = 48
ROW_LABEL_W = 220

_BG = (255, 255, 255)
_BOX = (241, 243, 246)
_INK = (33, 37, 41)
_MUTED = (108, 117, 125)
_GOLD = (214, 158, 46)
_RED = (192, 57, 43)
_FONT_FILES = {
    False: ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    True: ("DejaVuSans-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
}


@dataclass(frozen=True)
class SheetCell:
    image_path: Path | None
    caption: str = ""  # first line under the image: cost · time
    note: str = ""  # second line: provider · model, or why there is no image
    winner: bool = False
    failed: bool = False


@dataclass(frozen=True)
class SheetSpec:
    title: str
    subtitle: str
    row_title: str
    col_title: str
    row_labels: tuple[str, ...]  # empty strings (one row, no axis): no label column
    col_labels: tuple[str, ...]
    cells: Mapping[tuple[int, int], SheetCell] = field(default_factory=dict)
    meta: Mapping[str, object] = field(default_factory=dict)  # embedded as the sheet's recipe

    @property
    def has_row_labels(self) -> bool:
        return any(self.row_labels)


def sheet_size(rows: int, cols: int, *, row_labels: bool = True) -> tuple[int, int]:
    """(width, height) in pixels of the sheet for a rows x cols grid."""
    width = PAD * 2 + (ROW_LABEL_W if row_labels else 0) + cols * CELL + (cols - 1) * GAP
    height = PAD * 2 + TITLE_H + HEADER_H + rows * (CELL + CAPTION_H) + (rows - 1) * GAP
    return width, height


@functools.lru_cache(maxsize=16)
def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for candidate in _FONT_FILES[bold]:
        try:
            return ImageFont.truetype(candidate, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def _fit(text: str, font: ImageFont.ImageFont, width: int) -> str:
    """``text`` cut with an ellipsis to fit ``width`` pixels."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def _wrap(text: str, font: ImageFont.ImageFont, width: int, max_lines: int) -> list[str]:
    """Greedy word wrap; words longer than a line (or scripts without spaces) break by character."""
    lines: list[str] = []
    current = ""
    for word in " ".join(text.split()).split(" "):
        candidate = f"{current} {word}".strip()
        if font.getlength(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = ""
        for ch in word:
            if font.getlength(current + ch) > width:
                lines.append(current)
                current = ch
            else:
                current += ch
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = _fit(lines[-1] + "…", font, width)
    return lines


def _thumb(path: Path | None) -> Image.Image | None:
    if path is None:
        return None
    try:
        with Image.open(path) as img:
            img.load()
            has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
            img = img.convert("RGBA" if has_alpha else "RGB")
            return ImageOps.contain(img, (CELL, CELL), Image.Resampling.LANCZOS)
    except (FileNotFoundError, UnidentifiedImageError, OSError, ValueError):
        return None


def render(spec: SheetSpec) -> bytes:
    """The sheet as PNG bytes (with ``spec.meta`` embedded)."""
    rows, cols = len(spec.row_labels), len(spec.col_labels)
    labels = spec.has_row_labels
    width, height = sheet_size(rows, cols, row_labels=labels)
    sheet = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(sheet)
    title_font, sub_font = _font(26, True), _font(15)
    head_font, label_font, cap_font = _font(16, True), _font(15), _font(13)

    draw.text((PAD, PAD), _fit(spec.title, title_font, width - 2 * PAD), font=title_font, fill=_INK)
    draw.text((PAD, PAD + 38), _fit(spec.subtitle, sub_font, width - 2 * PAD), font=sub_font, fill=_MUTED)

    left = PAD + (ROW_LABEL_W if labels else 0)
    top = PAD + TITLE_H
    if labels and spec.row_title:
        draw.text((PAD, top + 12), _fit(f"{spec.row_title} ↓  {spec.col_title} →", label_font, ROW_LABEL_W - 12),
                  font=label_font, fill=_MUTED)
    for c, text in enumerate(spec.col_labels):
        x = left + c * (CELL + GAP)
        lines = _wrap(text, head_font, CELL, 2)
        for i, line in enumerate(lines):
            draw.text((x, top + 2 + i * 20), line, font=head_font, fill=_INK)
    top += HEADER_H
    for r in range(rows):
        y = top + r * (CELL + CAPTION_H + GAP)
        if labels:
            # Short values (a tier, a provider) read as headings; prompts wrap in the regular face.
            face = head_font if len(spec.row_labels[r]) <= 24 else label_font
            for i, line in enumerate(_wrap(spec.row_labels[r], face, ROW_LABEL_W - 20, 12)):
                draw.text((PAD, y + 4 + i * 20), line, font=face, fill=_INK)
        for c in range(cols):
            x = left + c * (CELL + GAP)
            cell = spec.cells.get((r, c))
            draw.rectangle((x, y, x + CELL - 1, y + CELL - 1), fill=_BOX)
            pic = _thumb(cell.image_path) if cell else None
            if pic is not None:
                px, py = x + (CELL - pic.width) // 2, y + (CELL - pic.height) // 2
                sheet.paste(pic, (px, py), pic if pic.mode == "RGBA" else None)
            else:
                message = (cell.note if cell and cell.note else "No image") if cell else "Not run"
                colour = _RED if cell and cell.failed else _MUTED
                for i, line in enumerate(_wrap(message, cap_font, CELL - 32, 6)):
                    draw.text((x + 16, y + CELL // 2 - 30 + i * 18), line, font=cap_font, fill=colour)
            if cell and cell.winner:
                draw.rectangle((x - 3, y - 3, x + CELL + 2, y + CELL + 2), outline=_GOLD, width=4)
                badge = "★ Winner"
                bw = int(cap_font.getlength(badge)) + 16
                draw.rectangle((x, y, x + bw, y + 22), fill=_GOLD)
                draw.text((x + 8, y + 4), badge, font=cap_font, fill=(255, 255, 255))
            if cell:
                draw.text((x, y + CELL + 6), _fit(cell.caption, cap_font, CELL), font=cap_font, fill=_INK)
                if pic is not None and cell.note:
                    draw.text((x, y + CELL + 25), _fit(cell.note, cap_font, CELL), font=cap_font, fill=_MUTED)
    out = io.BytesIO()
    sheet.save(out, format="PNG", optimize=True)
    data = out.getvalue()
    return recipe.embed(data, "png", dict(spec.meta)) if spec.meta else data

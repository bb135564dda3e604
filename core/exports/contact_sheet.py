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
from providers import imagegate
from providers.errors import InvalidRequest
from providers.redact import redact

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
_Face = ImageFont.FreeTypeFont | ImageFont.ImageFont  # a TrueType face, or Pillow's own where none is installed
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
def _font(size: int, bold: bool = False) -> _Face:
    for candidate in _FONT_FILES[bold]:
        try:
            return ImageFont.truetype(candidate, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def _fit(text: str, font: _Face, width: int) -> str:
    """``text`` cut with an ellipsis to fit ``width`` pixels (and with no key in it: the sheet is shared)."""
    text = redact(text) or ""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def _wrap(text: str, font: _Face, width: int, max_lines: int) -> list[str]:
    """Greedy word wrap; words longer than a line (or scripts without spaces) break by character."""
    lines: list[str] = []
    current = ""
    for word in " ".join((redact(text) or "").split()).split(" "):
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
        imagegate.check(path.read_bytes(), "The image")  # sized from its header before it is decoded
        with Image.open(path) as img:
            img.load()
            has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
            rgb = img.convert("RGBA" if has_alpha else "RGB")
            return ImageOps.contain(rgb, (CELL, CELL), Image.Resampling.LANCZOS)
    except (FileNotFoundError, UnidentifiedImageError, OSError, ValueError, InvalidRequest,
            Image.DecompressionBombError):
        return None


@dataclass(frozen=True)
class _Fonts:
    title: _Face
    sub: _Face
    head: _Face
    label: _Face
    cap: _Face


def _fonts() -> _Fonts:
    return _Fonts(title=_font(26, True), sub=_font(15), head=_font(16, True), label=_font(15), cap=_font(13))


def _draw_heading(draw: ImageDraw.ImageDraw, spec: SheetSpec, fonts: _Fonts, width: int, left: int) -> int:
    """Title, subtitle, the axis caption and the column labels; returns where the first row starts."""
    draw.text((PAD, PAD), _fit(spec.title, fonts.title, width - 2 * PAD), font=fonts.title, fill=_INK)
    draw.text((PAD, PAD + 38), _fit(spec.subtitle, fonts.sub, width - 2 * PAD), font=fonts.sub, fill=_MUTED)
    top = PAD + TITLE_H
    if spec.has_row_labels and spec.row_title:
        draw.text((PAD, top + 12), _fit(f"{spec.row_title} ↓  {spec.col_title} →", fonts.label, ROW_LABEL_W - 12),
                  font=fonts.label, fill=_MUTED)
    for c, text in enumerate(spec.col_labels):
        x = left + c * (CELL + GAP)
        for i, line in enumerate(_wrap(text, fonts.head, CELL, 2)):
            draw.text((x, top + 2 + i * 20), line, font=fonts.head, fill=_INK)
    return top + HEADER_H


def _draw_row_label(draw: ImageDraw.ImageDraw, text: str, fonts: _Fonts, y: int) -> None:
    # Short values (a tier, a provider) read as headings; prompts wrap in the regular face.
    face = fonts.head if len(text) <= 24 else fonts.label
    for i, line in enumerate(_wrap(text, face, ROW_LABEL_W - 20, 12)):
        draw.text((PAD, y + 4 + i * 20), line, font=face, fill=_INK)


def _draw_cell(sheet: Image.Image, draw: ImageDraw.ImageDraw, cell: SheetCell | None, fonts: _Fonts,
               x: int, y: int) -> None:
    """One box: the image (or why there is none), the winner's frame, and the caption lines under it."""
    draw.rectangle((x, y, x + CELL - 1, y + CELL - 1), fill=_BOX)
    pic = _thumb(cell.image_path) if cell else None
    if pic is not None:
        px, py = x + (CELL - pic.width) // 2, y + (CELL - pic.height) // 2
        sheet.paste(pic, (px, py), pic if pic.mode == "RGBA" else None)
    else:
        message = (cell.note or "No image") if cell else "Not run"
        colour = _RED if cell and cell.failed else _MUTED
        for i, line in enumerate(_wrap(message, fonts.cap, CELL - 32, 6)):
            draw.text((x + 16, y + CELL // 2 - 30 + i * 18), line, font=fonts.cap, fill=colour)
    if cell is None:
        return
    if cell.winner:
        draw.rectangle((x - 3, y - 3, x + CELL + 2, y + CELL + 2), outline=_GOLD, width=4)
        badge = "★ Winner"
        bw = int(fonts.cap.getlength(badge)) + 16
        draw.rectangle((x, y, x + bw, y + 22), fill=_GOLD)
        draw.text((x + 8, y + 4), badge, font=fonts.cap, fill=(255, 255, 255))
    draw.text((x, y + CELL + 6), _fit(cell.caption, fonts.cap, CELL), font=fonts.cap, fill=_INK)
    if pic is not None and cell.note:
        draw.text((x, y + CELL + 25), _fit(cell.note, fonts.cap, CELL), font=fonts.cap, fill=_MUTED)


def render(spec: SheetSpec) -> bytes:
    """The sheet as PNG bytes (with ``spec.meta`` embedded)."""
    rows, cols = len(spec.row_labels), len(spec.col_labels)
    labels = spec.has_row_labels
    width, height = sheet_size(rows, cols, row_labels=labels)
    sheet = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(sheet)
    fonts = _fonts()
    left = PAD + (ROW_LABEL_W if labels else 0)
    top = _draw_heading(draw, spec, fonts, width, left)
    for r in range(rows):
        y = top + r * (CELL + CAPTION_H + GAP)
        if labels:
            _draw_row_label(draw, spec.row_labels[r], fonts, y)
        for c in range(cols):
            _draw_cell(sheet, draw, spec.cells.get((r, c)), fonts, left + c * (CELL + GAP), y)
    out = io.BytesIO()
    sheet.save(out, format="PNG", optimize=True)
    data = out.getvalue()
    return recipe.embed(data, "png", dict(spec.meta)) if spec.meta else data

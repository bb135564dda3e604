"""Deterministic stand-in images that tell the story of a request, visibly marked SIMULATED.

What a person should see at a glance:

- **the provider**: each has its own palette, composition and texture (OpenAI a centred
  studio piece with fine hatching, core.today a sunset horizon with halftone dots, Apiframe a
  neon tile grid with scanlines, EvoLink scattered bokeh with film grain), so a side-by-side
  comparison shows differences without any name in the pixels (blind reviews show these);
- **the quality**: ``low`` is drawn at 1/8 scale and enlarged into blocks with few colours,
  ``medium`` at half scale (soft), ``high`` at full scale with outlines, inner details and
  fine texture, ``xhigh`` and ``max`` finer and denser still;
- **the prompt**: its words choose the motifs (sun, peaks, waves, trees, towers ... by
  keyword, otherwise by hash) and its headline is written large in a dark band beside a
  SIMULATED mark. Provider, model, quality and prices are never drawn;
- **an edit**: with a mask (OpenAI's convention: alpha 0 = edit here) the input is kept
  exactly outside the mask and new content is drawn inside it; without a mask the input
  is restyled in the provider's manner.

The same arguments always give the same bytes (the seed is sha256(prompt, index); the
provider picks the style). Everything is whole-image Pillow / numpy work (no per-pixel
Python loops): a 1024x1024 image takes tens of milliseconds.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageChops, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

__all__ = ["decode", "headline", "render"]

PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}

RGB = tuple[int, int, int]
Resample = Image.Resampling

# Detail levels: 0 low, 1 medium, 2 high, 3 xhigh, 4 max. auto is billed as high, so drawn as high.
LEVELS = {"low": 0, "medium": 1, "high": 2, "xhigh": 3, "max": 4}
DEFAULT_LEVEL = 2
# The scale the scene is drawn at before it is enlarged to the output size, per level.
SCALE = (1 / 8, 1 / 2, 1.0, 1.0, 1.0)

MARK = "SIMULATED"
MARK_FILL = (255, 196, 40)
HEADLINE_WORDS = 14
HEADLINE_LINES = 3


@dataclass(frozen=True)
class Style:
    """A provider's signature: palette, composition and texture."""

    stops: tuple[RGB, ...]  # the backdrop gradient, first to last
    accents: tuple[RGB, ...]  # motif colours
    ink: RGB  # outlines and details
    band: RGB  # the headline band (dark)
    layout: str  # centre | horizon | grid | scatter
    texture: str  # hatch | halftone | scanline | grain


STYLES: dict[str, Style] = {
    "openai": Style(
        stops=((248, 249, 244), (200, 230, 214), (66, 144, 122)),
        accents=((16, 163, 127), (255, 190, 70), (230, 104, 84), (36, 92, 82), (120, 200, 230)),
        ink=(18, 48, 42),
        band=(10, 34, 30),
        layout="centre",
        texture="hatch",
    ),
    "coretoday": Style(
        stops=((60, 28, 96), (190, 62, 112), (255, 146, 84), (255, 214, 140)),
        accents=((255, 228, 120), (255, 118, 76), (246, 84, 140), (110, 206, 214), (255, 250, 232)),
        ink=(44, 14, 44),
        band=(34, 10, 34),
        layout="horizon",
        texture="halftone",
    ),
    "apiframe": Style(
        stops=((8, 12, 42), (30, 44, 120), (10, 18, 62)),
        accents=((60, 222, 255), (244, 72, 204), (146, 104, 255), (255, 232, 90), (84, 255, 172)),
        ink=(200, 246, 255),
        band=(4, 6, 26),
        layout="grid",
        texture="scanline",
    ),
    "evolink": Style(
        stops=((26, 40, 32), (70, 88, 54), (190, 146, 68)),
        accents=((214, 70, 50), (238, 186, 66), (156, 190, 116), (246, 234, 206), (236, 124, 64)),
        ink=(30, 26, 18),
        band=(20, 24, 16),
        layout="scatter",
        texture="grain",
    ),
}
NEUTRAL = Style(
    stops=((236, 238, 244), (164, 172, 192), (70, 80, 104)),
    accents=((90, 120, 200), (230, 170, 80), (200, 90, 110), (90, 170, 150), (240, 240, 246)),
    ink=(28, 32, 44),
    band=(16, 18, 28),
    layout="centre",
    texture="grain",
)

# Prompt words that choose a motif; any other word picks one by its hash.
KEYWORDS: dict[str, tuple[str, ...]] = {
    "orb": ("sun", "sunset", "sunrise", "dawn", "dusk", "moon", "planet", "orb", "ball", "lamp", "light", "glow"),
    "peak": ("mountain", "mountains", "hill", "hills", "peak", "volcano", "pyramid", "rock", "rocky", "cliff", "alps"),
    "waves": ("sea", "ocean", "water", "wave", "waves", "harbour", "harbor", "river", "lake", "beach", "coast", "rain"),
    "tree": ("tree", "trees", "forest", "woods", "pine", "garden", "park", "plant", "leaf", "leaves", "jungle"),
    "tower": ("city", "building", "tower", "skyline", "street", "house", "castle", "lighthouse", "shop", "cafe"),
    "star": ("star", "stars", "night", "space", "galaxy", "sparkle", "cosmic", "magic"),
    "flower": ("flower", "flowers", "rose", "roses", "bloom", "tulip", "petal", "petals", "daisy", "spring"),
    "birds": ("bird", "birds", "gull", "gulls", "seagull", "wing", "wings", "flight", "flying", "crow"),
    "boat": ("boat", "boats", "ship", "ships", "sail", "sailing", "yacht", "ferry", "canoe", "pirate"),
}
MOTIF_OF = {word: kind for kind, words in KEYWORDS.items() for word in words}
KINDS = ("orb", "peak", "waves", "tree", "tower", "star", "flower", "birds", "boat", "ring", "diamond")
SKY_KINDS = frozenset({"orb", "star", "birds", "ring"})
COLOURS: dict[str, RGB] = {
    "red": (214, 48, 42), "orange": (244, 130, 36), "yellow": (250, 208, 44), "gold": (226, 176, 40),
    "green": (60, 170, 70), "blue": (44, 110, 220), "purple": (130, 70, 190), "violet": (140, 90, 220),
    "pink": (240, 110, 170), "white": (246, 246, 242), "black": (24, 24, 28), "brown": (130, 84, 48),
    "grey": (140, 144, 150), "gray": (140, 144, 150), "teal": (30, 150, 150), "silver": (190, 196, 204),
}
DROP_START = frozenset({"replace", "remove", "erase", "delete", "without"})
DROP_END = frozenset({"with", "by", "and", "for", "into"})
STOPWORDS = frozenset(
    "the and with for from into onto over under that this these those its his her their our your a an of on in at "
    "to by as is are was be been very some any each every all one two three make show create draw image picture "
    "photo style high quality detailed render rendering add replace remove change turn put give without "
    "instead them there here more less now then like".split()
)


@dataclass(frozen=True)
class Motif:
    kind: str
    key: bytes  # the word's own hash: its jitter
    colour: RGB | None = None  # a colour the prompt named for it ("a red sun"), else the palette's


@dataclass(frozen=True)
class Scene:
    """Everything that decides a picture's content, in output pixels."""

    width: int
    height: int
    style: Style
    motifs: tuple[Motif, ...]
    seed: bytes
    level: int
    top: float  # where the scene starts below the headline band (0..1 of the height)
    bottom: float = 1.0  # where it ends
    overlay: bool = False  # drawn over an edit's input: no backdrop decoration
    motif_scale: float = 1.0


# --- text --------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _text(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, size: int, fill: RGB) -> None:
    """The one place text reaches the pixels (tests watch it: no provider, model or price goes through)."""
    draw.text(xy, text, font=_font(size), fill=fill, stroke_width=max(0, size // 28), stroke_fill=fill)


def _width(text: str, size: int) -> float:
    return float(_font(size).getlength(text)) + 2 * max(0, size // 28)


def headline(prompt: str) -> str:
    """The prompt's first sentence, at most HEADLINE_WORDS words (an ellipsis says there was more)."""
    text = " ".join(prompt.split())
    first = re.split(r"(?<=[.!?;:])\s", text, maxsplit=1)[0].rstrip(".;:")
    words = first.split()
    if len(words) > HEADLINE_WORDS:
        return " ".join(words[:HEADLINE_WORDS]).rstrip(",;:-") + "…"
    return first or "(no prompt)"


def _break_word(word: str, size: int, limit: float) -> list[str]:
    """A word wider than a line, in pieces that fit (a long URL or a run of letters)."""
    pieces, piece = [], ""
    for ch in word:
        if piece and _width(piece + ch, size) > limit:
            pieces.append(piece)
            piece = ""
        piece += ch
    return [*pieces, piece]


def _wrap(text: str, size: int, limit: float) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        for part in _break_word(word, size, limit) if _width(word, size) > limit else [word]:
            candidate = f"{line} {part}" if line else part
            if line and _width(candidate, size) > limit:
                lines.append(line)
                line = part
            else:
                line = candidate
    return [*lines, line] if line else lines


def _fit(text: str, size: int, limit: float, max_lines: int) -> tuple[int, list[str]]:
    """The largest of three sizes at which the headline wraps into max_lines; else shortened with an ellipsis."""
    for s in (size, round(size * 0.84), round(size * 0.7)):
        lines = _wrap(text, max(8, s), limit)
        if len(lines) <= max_lines:
            return max(8, s), lines
    s = max(8, round(size * 0.7))
    lines = _wrap(text, s, limit)[:max_lines]
    if not lines:
        return s, []
    last = lines[-1]
    while last and _width(last + "…", s) > limit:
        last = last.rsplit(" ", 1)[0] if " " in last else last[:-1]
    lines[-1] = last + "…"
    return s, lines


@dataclass(frozen=True)
class Band:
    """Where the SIMULATED mark and the headline go: a dark band ``width`` wide at ``origin``."""

    origin: tuple[int, int]
    width: int
    size: int  # the headline's font size
    lines: tuple[str, ...]
    pad: int
    mark_size: int
    height: int

    @property
    def mark_box(self) -> tuple[int, int, int, int]:
        x, y = self.origin[0] + self.pad, self.origin[1] + self.pad
        return x, y, x + _mark_width(self.mark_size), y + round(self.mark_size * 1.5)


def _mark_width(size: int) -> int:
    return round(_width(MARK, size) + size * 1.2)


def _band(text: str, box: tuple[int, int, int, int], short: int, max_lines: int = HEADLINE_LINES) -> Band:
    """The band's layout in ``box``, its type sized from ``short`` (the picture's short side): the headline
    reads at full size and as a ~300 px thumbnail."""
    x0, y0, x1, y1 = box
    size = max(12, round(short / 17))
    pad, mark_size = max(4, round(size * 0.42)), max(9, round(size * 0.6))
    fixed = 2 * pad + round(mark_size * 1.5) + round(pad * 0.6)  # margins and the mark, as laid out below
    room = max(0, min(max_lines, (y1 - y0 - fixed) // round(size * 1.18)))
    size, lines = _fit(text, size, x1 - x0 - 2 * pad, room)
    pad = max(4, round(size * 0.42))  # margins follow the size the headline got: a shrunk one, a compact band
    total = pad + round(mark_size * 1.5) + round(pad * 0.6) + round(size * 1.18) * len(lines) + pad
    return Band((x0, y0), x1 - x0, size, tuple(lines), pad, mark_size, min(total, y1 - y0))


def _draw_mark(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], size: int) -> None:
    draw.rounded_rectangle(box, radius=(box[3] - box[1]) // 3, fill=MARK_FILL)
    _text(draw, (box[0] + size * 0.6, box[1] + size * 0.22), MARK, size, (20, 16, 8))


def _draw_band(img: Image.Image, band: Band, style: Style, alpha: int) -> None:
    """The dark band: the SIMULATED mark, then the headline in large white type."""
    x0, y0 = band.origin
    if img.mode == "RGB":
        box = (x0, y0, x0 + band.width - 1, y0 + band.height - 1)
        ImageDraw.Draw(img, "RGBA").rectangle(box, fill=(*style.band, alpha))
    else:
        img.alpha_composite(Image.new("RGBA", (band.width, band.height), (*style.band, alpha)), (x0, y0))
    draw = ImageDraw.Draw(img)
    mark = band.mark_box
    _draw_mark(draw, mark, band.mark_size)
    y = mark[3] + round(band.pad * 0.6)
    for line in band.lines:
        _text(draw, (x0 + band.pad, y), line, band.size, (255, 255, 255))
        y += round(band.size * 1.18)


# --- the scene ---------------------------------------------------------------------------


def _style(provider: str) -> Style:
    return STYLES.get(provider.lower(), NEUTRAL)


def _level(quality: str) -> int:
    return LEVELS.get(quality.lower(), DEFAULT_LEVEL)


def _words(prompt: str) -> list[str]:
    """The prompt's words, less what an edit takes away ("replace the boats with ...", "remove the car")."""
    out, dropping = [], False
    for word in re.findall(r"[a-z]+|[.,;:!?]", prompt.lower()):
        if word in DROP_START:
            dropping = True
        elif word in DROP_END or not word.isalpha():
            dropping = False
        elif not dropping:
            out.append(word)
    return out


def _motifs(prompt: str) -> tuple[Motif, ...]:
    """Up to five motifs from the prompt's words, in order; a colour word colours the next one."""
    out: list[Motif] = []
    seen: set[str] = set()
    colour: RGB | None = None
    for word in _words(prompt):
        if word in COLOURS:
            colour = COLOURS[word]
        elif len(word) > 2 and word not in STOPWORDS and word not in seen and len(out) < 5:
            seen.add(word)
            key = hashlib.sha256(word.encode()).digest()
            out.append(Motif(MOTIF_OF.get(word) or KINDS[key[0] % len(KINDS)], key, colour))
            colour = None
    return tuple(out) or (Motif("diamond", hashlib.sha256(b"simulated").digest()),)


def _ramp(stops: Sequence[RGB]) -> npt.NDArray[np.uint8]:
    """256 colours running through the stops."""
    ramp = np.linspace(0, len(stops) - 1, 256)
    lo = np.minimum(ramp.astype(int), len(stops) - 2)
    t = (ramp - lo)[:, None]
    table = np.array(stops, dtype=np.float64)
    return np.asarray((table[lo] * (1 - t) + table[lo + 1] * t).round(), dtype=np.uint8)


def _gradient(size: tuple[int, int], stops: Sequence[RGB], kind: str) -> Image.Image:
    """A multi-stop gradient (top to bottom, diagonal, or radial from the centre), drawn at 256² and enlarged."""
    u = np.linspace(0, 1, 256)
    if kind == "radial":
        index = np.hypot(u[None, :] - 0.5, u[:, None] - 0.5) / math.hypot(0.5, 0.5)
    elif kind == "diagonal":
        index = (u[None, :] + u[:, None]) / 2
    else:
        index = np.broadcast_to(u[:, None], (256, 256))
    small = Image.fromarray(_ramp(stops)[(index * 255).round().astype(np.intp)])
    return small.resize(size, Image.Resampling.BILINEAR)


def _rand(scene: Scene, salt: int) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(scene.seed + bytes([salt])).digest()[:8], "big"))


def _shade(c: RGB, k: float) -> RGB:
    """Darker (k < 1) or lighter (k > 1, towards white) of a colour."""
    if k <= 1:
        return (round(c[0] * k), round(c[1] * k), round(c[2] * k))
    t = min(1.0, k - 1)
    return (round(c[0] + (255 - c[0]) * t), round(c[1] + (255 - c[1]) * t), round(c[2] + (255 - c[2]) * t))


@dataclass(frozen=True)
class Pen:
    """How one motif is drawn: where, how big, in which colours, at what detail."""

    draw: ImageDraw.ImageDraw
    cx: float
    cy: float
    r: float
    fill: RGB
    ink: RGB
    level: int

    @property
    def line(self) -> int:
        return max(1, round(self.r / 28)) if self.level >= 2 else 0

    def outline(self) -> RGB | None:
        return self.ink if self.level >= 2 else None


def _orb(p: Pen) -> None:
    d, r = p.draw, p.r
    if p.level >= 3:
        rays = 12 * (p.level - 1)
        for i in range(rays):
            a = 2 * math.pi * i / rays
            d.line((p.cx + r * 1.12 * math.cos(a), p.cy + r * 1.12 * math.sin(a),
                    p.cx + r * 1.4 * math.cos(a), p.cy + r * 1.4 * math.sin(a)), fill=p.fill, width=p.line)
    d.ellipse((p.cx - r, p.cy - r, p.cx + r, p.cy + r), fill=p.fill, outline=p.outline(), width=p.line)
    if p.level >= 1:
        h = r * 0.45
        d.ellipse((p.cx - r * 0.55 - h / 2, p.cy - r * 0.55 - h / 2, p.cx - r * 0.55 + h / 2, p.cy - r * 0.55 + h / 2),
                  fill=_shade(p.fill, 1.5))
    for k in range(2, p.level + 1):
        q = r * (1 - 0.16 * (k - 1))
        d.ellipse((p.cx - q, p.cy - q, p.cx + q, p.cy + q), outline=_shade(p.fill, 0.8), width=max(1, p.line // 2))


def _peak(p: Pen) -> None:
    d, r = p.draw, p.r
    apex, left, right = (p.cx, p.cy - r), (p.cx - r * 1.2, p.cy + r * 0.8), (p.cx + r * 1.2, p.cy + r * 0.8)
    d.polygon((apex, left, right), fill=p.fill, outline=p.outline(), width=p.line)
    if p.level >= 1:
        d.polygon((apex, (p.cx + r * 0.1, p.cy + r * 0.8), right), fill=_shade(p.fill, 0.72))
    if p.level >= 2:
        cap = ((p.cx - r * 0.38, p.cy - r * 0.32), (p.cx, p.cy - r * 0.46), (p.cx + r * 0.38, p.cy - r * 0.32))
        d.polygon((apex, *cap), fill=(250, 250, 250), outline=p.ink, width=p.line)
    for k in range(p.level * 2 if p.level >= 3 else 0):
        y = p.cy - r * 0.2 + k * r * 0.95 / (p.level * 2)
        half = (y - apex[1]) / (1.8 * r) * 1.2 * r
        d.line((p.cx - half * 0.9, y, p.cx + half * 0.9, y + r * 0.04), fill=_shade(p.fill, 0.6), width=1)


def _waves(p: Pen) -> None:
    d, r = p.draw, p.r
    rows = 2 + 2 * p.level
    xs = np.linspace(p.cx - r * 1.5, p.cx + r * 1.5, 48)
    for i in range(rows):
        y = p.cy - r * 0.6 + i * r * 1.3 / rows
        ys = y + np.sin(xs / r * 4 + i) * r * 0.12
        pts = [(float(x), float(v)) for x, v in zip(xs, ys, strict=True)]
        colour = p.fill if i % 2 == 0 else _shade(p.fill, 1.35)
        d.line(pts, fill=colour, width=max(1, round(r * 0.5 / rows)))
        if p.level >= 2:
            d.line(pts, fill=p.ink, width=max(1, p.line // 2))


def _tree(p: Pen) -> None:
    d, r = p.draw, p.r
    d.rectangle((p.cx - r * 0.12, p.cy + r * 0.2, p.cx + r * 0.12, p.cy + r * 0.95), fill=(92, 62, 40),
                outline=p.outline(), width=p.line)
    tiers = 1 + min(p.level, 3)
    for i in range(tiers):
        top = p.cy - r + i * r * 0.9 / tiers
        w = r * (0.55 + 0.45 * (i + 1) / tiers)
        d.polygon(((p.cx, top), (p.cx - w, top + r * 0.75), (p.cx + w, top + r * 0.75)),
                  fill=p.fill if i % 2 == 0 else _shade(p.fill, 0.82), outline=p.outline(), width=p.line)
    for k in range(6 * p.level if p.level >= 3 else 0):
        a = k * 2.39996
        x, y = p.cx + math.cos(a) * r * 0.5 * (k % 5) / 5, p.cy - r * 0.2 + math.sin(a) * r * 0.35
        d.ellipse((x - r * 0.04, y - r * 0.04, x + r * 0.04, y + r * 0.04), fill=_shade(p.fill, 1.4))


def _tower(p: Pen) -> None:
    d, r = p.draw, p.r
    x0, y0, x1, y1 = p.cx - r * 0.45, p.cy - r, p.cx + r * 0.45, p.cy + r * 0.95
    d.rectangle((x0, y0, x1, y1), fill=p.fill, outline=p.outline(), width=p.line)
    if p.level >= 1:
        d.rectangle((p.cx + r * 0.1, y0, x1, y1), fill=_shade(p.fill, 0.8))
        d.polygon(((x0 - r * 0.08, y0), (p.cx, y0 - r * 0.35), (x1 + r * 0.08, y0)), fill=_shade(p.fill, 0.6),
                  outline=p.outline(), width=p.line)
    if p.level < 2:
        return
    cols, rows = p.level, 3 * p.level
    ww, wh = (x1 - x0) / (2 * cols + 1), (y1 - y0 - r * 0.3) / (2 * rows + 1)
    for c in range(cols):
        for row in range(rows):
            wx, wy = x0 + ww * (2 * c + 1), y0 + wh * (2 * row + 1)
            lit = (c * 7 + row * 3) % 5 != 0
            d.rectangle((wx, wy, wx + ww, wy + wh), fill=(255, 236, 160) if lit else p.ink)


def _star(p: Pen) -> None:
    d = p.draw
    spikes = 5 if p.level < 3 else 8

    def points(r: float) -> list[tuple[float, float]]:
        return [(p.cx + (r if i % 2 == 0 else r * 0.42) * math.sin(math.pi * i / spikes),
                 p.cy - (r if i % 2 == 0 else r * 0.42) * math.cos(math.pi * i / spikes)) for i in range(2 * spikes)]

    d.polygon(points(p.r), fill=p.fill, outline=p.outline(), width=p.line)
    if p.level >= 1:
        d.polygon(points(p.r * 0.55), fill=_shade(p.fill, 1.4))
    for k in range(4 * (p.level - 1) if p.level >= 2 else 0):
        a = k * 2.39996
        x, y = p.cx + math.cos(a) * p.r * 1.5, p.cy + math.sin(a) * p.r * 1.3
        s = p.r * 0.06
        d.line((x - s, y, x + s, y), fill=(255, 255, 255), width=1)
        d.line((x, y - s, x, y + s), fill=(255, 255, 255), width=1)


def _flower(p: Pen) -> None:
    d, r = p.draw, p.r
    d.line((p.cx, p.cy, p.cx, p.cy + r * 1.1), fill=(60, 130, 70), width=max(1, round(r * 0.08)))
    rings = 1 if p.level < 3 else 2
    for ring in range(rings):
        petals = 6 + 2 * p.level + 4 * ring
        pr, dist = r * (0.34 - 0.08 * ring), r * (0.55 - 0.2 * ring)
        colour = p.fill if ring == 0 else _shade(p.fill, 1.3)
        for i in range(petals):
            a = 2 * math.pi * (i + 0.5 * ring) / petals
            x, y = p.cx + dist * math.cos(a), p.cy + dist * math.sin(a)
            d.ellipse((x - pr, y - pr, x + pr, y + pr), fill=colour, outline=p.outline(), width=p.line)
    c = r * 0.26
    d.ellipse((p.cx - c, p.cy - c, p.cx + c, p.cy + c), fill=(250, 210, 80), outline=p.outline(), width=p.line)


def _birds(p: Pen) -> None:
    d, r = p.draw, p.r
    count = 3 + 2 * p.level
    for i in range(count):
        x = p.cx - r * 1.2 + (i * 0.61 % 1) * r * 2.4
        y = p.cy - r * 0.6 + (i * 0.37 % 1) * r * 1.2
        s = r * (0.28 - 0.02 * (i % 4))
        w = max(1, round(s / 6))
        colour = p.ink if p.level >= 1 else p.fill
        d.line(((x - s, y - s * 0.4), (x - s * 0.4, y - s * 0.1), (x, y + s * 0.2)), fill=colour, width=w)
        d.line(((x, y + s * 0.2), (x + s * 0.4, y - s * 0.1), (x + s, y - s * 0.4)), fill=colour, width=w)


def _boat(p: Pen) -> None:
    d, r = p.draw, p.r
    hull = ((p.cx - r, p.cy + r * 0.3), (p.cx + r, p.cy + r * 0.3), (p.cx + r * 0.7, p.cy + r * 0.7),
            (p.cx - r * 0.7, p.cy + r * 0.7))
    d.polygon(hull, fill=p.fill, outline=p.outline(), width=p.line)
    d.line((p.cx, p.cy + r * 0.3, p.cx, p.cy - r), fill=p.ink, width=max(1, round(r / 24)))
    sail = ((p.cx + r * 0.06, p.cy - r * 0.95), (p.cx + r * 0.75, p.cy + r * 0.2), (p.cx + r * 0.06, p.cy + r * 0.2))
    d.polygon(sail, fill=(250, 248, 240), outline=p.outline(), width=p.line)
    if p.level >= 1:
        jib = ((p.cx - r * 0.06, p.cy - r * 0.7), (p.cx - r * 0.06, p.cy + r * 0.2), (p.cx - r * 0.55, p.cy + r * 0.2))
        d.polygon(jib, fill=_shade(p.fill, 1.5), outline=p.outline(), width=p.line)
    for k in range(p.level * 2 if p.level >= 2 else 0):
        x = p.cx - r * 0.6 + k * r * 1.2 / max(1, p.level * 2 - 1)
        d.ellipse((x - r * 0.05, p.cy + r * 0.42, x + r * 0.05, p.cy + r * 0.52), fill=p.ink)


def _ring(p: Pen) -> None:
    d, r = p.draw, p.r
    d.ellipse((p.cx - r, p.cy - r, p.cx + r, p.cy + r), outline=p.fill, width=max(1, round(r * 0.24)))
    for k in range(1, p.level + 1):
        q = r * (1 - 0.12 * k) - r * 0.12
        d.ellipse((p.cx - q, p.cy - q, p.cx + q, p.cy + q), outline=_shade(p.fill, 1.3 if k % 2 else 0.7),
                  width=max(1, round(r * 0.04)))


def _diamond(p: Pen) -> None:
    d, r = p.draw, p.r
    top, left, bottom, right = (p.cx, p.cy - r), (p.cx - r * 0.8, p.cy), (p.cx, p.cy + r), (p.cx + r * 0.8, p.cy)
    d.polygon((top, left, bottom, right), fill=p.fill, outline=p.outline(), width=p.line)
    if p.level >= 1:
        d.polygon((top, (p.cx, p.cy), right), fill=_shade(p.fill, 1.35))
        d.polygon((bottom, (p.cx, p.cy), left), fill=_shade(p.fill, 0.7))
    for k in range(1, p.level):
        t = k / p.level
        d.line((p.cx - r * 0.8 * t, p.cy - r * (1 - t), p.cx + r * 0.8 * t, p.cy + r * (1 - t)), fill=p.ink, width=1)


DRAW: dict[str, Callable[[Pen], None]] = {
    "orb": _orb, "peak": _peak, "waves": _waves, "tree": _tree, "tower": _tower,
    "star": _star, "flower": _flower, "birds": _birds, "boat": _boat, "ring": _ring, "diamond": _diamond,
}


def _motif(draw: ImageDraw.ImageDraw, i: int, slot: Slot, scene: Scene, scale: float) -> None:
    """The i-th slot's motif (the prompt's words in turn); neighbouring slots take different accents."""
    m = scene.motifs[i % len(scene.motifs)]
    accents = scene.style.accents
    colour = m.colour or accents[(i + scene.seed[0]) % len(accents)]
    cx, cy, r = slot
    r *= scene.motif_scale
    jitter = (m.key[2] - 128) / 128 * 0.06 * r
    pen = Pen(draw, (cx + jitter) * scale, (cy - jitter) * scale, r * scale, colour, scene.style.ink, scene.level)
    DRAW[m.kind](pen)


# Layouts: the backdrop and a slot (cx, cy, r in output pixels) for each motif.


def _area(scene: Scene) -> tuple[float, float, float]:
    """The scene's top edge, height and the short side, in output pixels."""
    top, bottom = scene.top * scene.height, scene.bottom * scene.height
    return top, bottom - top, min(scene.width, bottom - top)


CORNERS = ((0.14, 0.22), (0.86, 0.22), (0.14, 0.8), (0.86, 0.8))


Slot = tuple[float, float, float]  # a motif's centre and radius, in output pixels
# A layout draws its decoration (when given a pen: generations, not edits) and returns the motifs' slots.
Layout = Callable[["Scene", ImageDraw.ImageDraw | None, float], list[Slot]]


def _centre(scene: Scene, draw: ImageDraw.ImageDraw | None, scale: float) -> list[Slot]:
    """One large motif in the middle on a soft floor shadow, small ones in the corners."""
    top, h, short = _area(scene)
    w = scene.width
    cx, cy, r = w / 2, top + h * 0.5, short * 0.25
    if draw is not None:
        floor = (*_shade(scene.style.stops[-1], 0.7), 200)
        box = ((cx - r * 1.4) * scale, (cy + r * 1.05) * scale, (cx + r * 1.4) * scale, (cy + r * 1.3) * scale)
        draw.ellipse(box, fill=floor)
    corners = CORNERS[scene.seed[1] % 2 :] + CORNERS[: scene.seed[1] % 2]
    return [(cx, cy, r)] + [(w * x, top + h * y, short * 0.09) for x, y in corners[: len(scene.motifs) - 1]]


def _hills(scene: Scene, draw: ImageDraw.ImageDraw, scale: float, horizon: float) -> None:
    w, h = scene.width, scene.height * (1 - scene.top)
    xs = np.linspace(0, w, 40)
    for i, colour in enumerate(((92, 30, 84), (64, 22, 66), (40, 14, 46))):
        phase = scene.seed[i] / 40
        ys = horizon + i * h * 0.1 + np.sin(xs / w * (3 + i) * math.pi + phase) * h * 0.05
        pts = [(float(x) * scale, float(y) * scale) for x, y in zip(xs, ys, strict=True)]
        draw.polygon([*pts, (w * scale, scene.height * scale), (0, scene.height * scale)], fill=colour)


def _horizon(scene: Scene, draw: ImageDraw.ImageDraw | None, scale: float) -> list[Slot]:
    """A horizon with layered hills: things that stand on the ground along it, the rest in the sky."""
    top, h, short = _area(scene)
    w = scene.width
    horizon = top + h * 0.64
    if draw is not None:
        _hills(scene, draw, scale, horizon)
    slots = []
    ground = [m for m in scene.motifs if m.kind not in SKY_KINDS]
    for i, m in enumerate(scene.motifs):
        if m.kind in SKY_KINDS:
            slots.append((w * (0.72 - 0.3 * (i % 2)), top + h * (0.22 + 0.08 * (i % 3)), short * 0.13))
        else:
            k = ground.index(m)
            x = w * (k + 0.5) / max(1, len(ground))
            slots.append((x, horizon - short * 0.06, short * (0.2 if k == 0 else 0.14)))
    return slots


def _grid(scene: Scene, draw: ImageDraw.ImageDraw | None, scale: float) -> list[Slot]:
    """A grid of rounded tiles, one motif in each (the prompt's words in turn)."""
    top, h, _ = _area(scene)
    w = scene.width
    cols, rows = (4, 2) if w > 1.3 * h else (2, 3) if h > 1.3 * w else (3, 2)
    gap = min(w / cols, h / rows) * 0.07
    tw, th = (w - gap * (cols + 1)) / cols, (h - gap * (rows + 1)) / rows
    tile = _shade(scene.style.stops[1], 0.75)
    slots = []
    for i in range(cols * rows if draw is not None else min(cols * rows, len(scene.motifs))):
        x0, y0 = gap + (i % cols) * (tw + gap), top + gap + (i // cols) * (th + gap)
        if draw is not None:
            draw.rounded_rectangle((x0 * scale, y0 * scale, (x0 + tw) * scale, (y0 + th) * scale),
                                   radius=max(1, round(gap * scale)), fill=tile,
                                   outline=scene.style.accents[i % 3] if scene.level >= 2 else None,
                                   width=max(1, round(gap * scale / 6)))
        slots.append((x0 + tw / 2, y0 + th / 2, min(tw, th) * 0.34))
    return slots


SCATTER = ((0.33, 0.6, 0.21), (0.74, 0.27, 0.12), (0.8, 0.7, 0.1), (0.55, 0.88, 0.07), (0.13, 0.16, 0.07))


def _bokeh(scene: Scene, draw: ImageDraw.ImageDraw, scale: float) -> None:
    top, h, short = _area(scene)
    rng = _rand(scene, 7)
    for i in range(6 + 3 * scene.level):
        x, y, r = rng.random() * scene.width, top + rng.random() * h, short * (0.04 + rng.random() * 0.1)
        colour = (*scene.style.accents[i % len(scene.style.accents)], 70)
        draw.ellipse(((x - r) * scale, (y - r) * scale, (x + r) * scale, (y + r) * scale), fill=colour)


def _scatter(scene: Scene, draw: ImageDraw.ImageDraw | None, scale: float) -> list[Slot]:
    """Translucent bokeh discs, the motifs scattered large to small."""
    top, h, short = _area(scene)
    if draw is not None:
        _bokeh(scene, draw, scale)
    return [(scene.width * x, top + h * y, short * r) for x, y, r in SCATTER[: len(scene.motifs)]]


LAYOUTS: dict[str, Layout] = {
    "centre": _centre, "horizon": _horizon, "grid": _grid, "scatter": _scatter,
}
BACKDROP = {"centre": "radial", "horizon": "linear", "grid": "diagonal", "scatter": "linear"}


def _draw_scene(scene: Scene, base: Image.Image | None = None) -> Image.Image:
    """The scene at its level's scale, enlarged to the output size (blocky at low, soft at medium).

    Over ``base`` (an edit's restyled input, at the output size) or the provider's backdrop;
    the layout's decoration only when the scene is not an overlay.
    """
    scale = SCALE[scene.level]
    size = (max(8, round(scene.width * scale)), max(8, round(scene.height * scale)))
    if base is None:
        canvas = _gradient(size, scene.style.stops, BACKDROP[scene.style.layout])
    else:
        canvas = base.resize(size, Image.Resampling.BOX) if base.size != size else base.copy()
    decor = None if scene.overlay else ImageDraw.Draw(canvas, "RGBA")
    draw = ImageDraw.Draw(canvas)
    for i, slot in enumerate(LAYOUTS[scene.style.layout](scene, decor, size[0] / scene.width)):
        _motif(draw, i, slot, scene, size[0] / scene.width)
    if scene.level == 0:
        canvas = ImageOps.posterize(canvas, 3)
    if canvas.size == (scene.width, scene.height):
        return canvas
    resample = Image.Resampling.NEAREST if scene.level == 0 else Image.Resampling.BILINEAR
    return canvas.resize((scene.width, scene.height), resample)


# --- texture -----------------------------------------------------------------------------
# A texture is an "L" image multiplied into the picture (255 leaves a pixel as it is), built from
# a small tile repeated over the image, so it costs a few whole-array operations.

PERIOD = (0, 12, 6, 4, 3)  # texture period in pixels per level (finer with quality)
AMPLITUDE = (0.0, 0.05, 0.1, 0.13, 0.16)
U8 = npt.NDArray[np.uint8]


def _tile(tile: U8, width: int, height: int) -> U8:
    th, tw = tile.shape
    return np.tile(tile, (-(-height // th), -(-width // tw)))[:height, :width]


def _tile_xy(period: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    return np.arange(period, dtype=np.int32)[None, :], np.arange(period, dtype=np.int32)[:, None]


def _dark(amount: float) -> int:
    return round(255 * (1 - amount))


def _hatch(img: Image.Image, scene: Scene) -> U8:
    """Fine diagonal hatching (cross-hatched from xhigh)."""
    p, a = PERIOD[scene.level], AMPLITUDE[scene.level]
    x, y = _tile_xy(2 * p)
    tile = np.where((x + y) % p < p / 2, _dark(a), 255)
    if scene.level >= 3:
        tile = np.where((x - y) % (2 * p) == 0, tile * (1 - a), tile)
    return _tile(tile.astype(np.uint8), scene.width, scene.height)


def _dots(img: Image.Image, period: int, amount: float) -> Image.Image:
    """A halftone screen ("L", 255 = untouched): dots, bigger where ``img`` is darker."""
    x, y = _tile_xy(period)
    dots = ((np.cos(2 * np.pi * x / period) + np.cos(2 * np.pi * y / period)) * 63.75 + 127.5).astype(np.uint8)
    threshold = (89 + np.arange(256) * 0.6).astype(np.int16)[np.asarray(img.convert("L"))]
    screen = _tile(dots, img.width, img.height).astype(np.int16) > threshold
    return Image.fromarray(np.where(screen, _dark(amount), 255).astype(np.uint8))


def _halftone(img: Image.Image, scene: Scene) -> U8:
    """Halftone dots, bigger where the picture is darker."""
    return np.asarray(_dots(img, PERIOD[scene.level] + 2, AMPLITUDE[scene.level] * 2))


def _scanline(img: Image.Image, scene: Scene) -> U8:
    """Scanlines, with a faint pixel grid from high."""
    p, a = PERIOD[scene.level], AMPLITUDE[scene.level] * 1.5
    x, y = _tile_xy(2 * p)
    tile = np.where(y % p == 0, _dark(a), 255)
    if scene.level >= 2:
        tile = np.where(x % (2 * p) == 0, tile * (1 - a / 2), tile)
    return _tile(tile.astype(np.uint8), scene.width, scene.height)


def _grain(img: Image.Image, scene: Scene) -> U8:
    """Film grain, finer at higher quality (a 128 px wide strip repeated across: PNG encodes it fast)."""
    a = AMPLITUDE[scene.level]
    cell = max(1, 4 - scene.level)
    levels = np.array([_dark(a * k / 2) for k in (0, 0, 1, 1, 2, 3)], dtype=np.uint8)
    w, h = -(-scene.width // cell), -(-scene.height // cell)
    noise = _tile(levels[_rand(scene, 11).integers(0, len(levels), (h, 128 // cell))], w, h)
    if cell == 1:
        return noise
    big = Image.fromarray(noise).resize((w * cell, h * cell), Image.Resampling.NEAREST)
    return np.asarray(big)[: scene.height, : scene.width]


TEXTURES: dict[str, Callable[[Image.Image, Scene], U8]] = {
    "hatch": _hatch, "halftone": _halftone, "scanline": _scanline, "grain": _grain,
}


def _texture(img: Image.Image, scene: Scene) -> Image.Image:
    """The provider's texture, finer and stronger with quality (none at low)."""
    if scene.level == 0:
        return img
    rgb = img.convert("RGB")
    m = Image.fromarray(TEXTURES[scene.style.texture](rgb, scene))
    return ImageChops.multiply(rgb, Image.merge("RGB", (m, m, m)))


# --- pictures ----------------------------------------------------------------------------


def _ellipse_alpha(size: tuple[int, int]) -> Image.Image:
    mask = Image.new("L", size, 0)
    w, h = size
    ImageDraw.Draw(mask).ellipse((w * 0.06, h * 0.06, w * 0.94, h * 0.94), fill=255)
    return mask


def _picture(scene: Scene, text: str, *, transparent: bool) -> Image.Image:
    """A generated picture: the scene below the headline band."""
    w, h = scene.width, scene.height
    band = _band(text, (0, 0, w, h), min(w, h))
    scene = replace(scene, top=band.height / h)
    img = _texture(_draw_scene(scene), scene)
    if transparent:
        img.putalpha(_ellipse_alpha(img.size))
    _draw_band(img, band, scene.style, 225)
    return img


def _cover(img: Image.Image, width: int, height: int, method: Resample = Image.Resampling.BILINEAR) -> Image.Image:
    return ImageOps.fit(img, (width, height), method)


def _tiled(inputs: list[Image.Image], width: int, height: int, fill: RGB) -> Image.Image:
    """The first input filling the canvas, or several inputs tiled."""
    if len(inputs) == 1:
        return _cover(inputs[0].convert("RGB"), width, height)
    cols = math.ceil(math.sqrt(len(inputs)))
    rows = math.ceil(len(inputs) / cols)
    base = Image.new("RGB", (width, height), fill)
    cw, ch = width // cols, height // rows
    for i, img in enumerate(inputs):
        base.paste(_cover(img.convert("RGB"), cw, ch), ((i % cols) * cw, (i // cols) * ch))
    return base


def _luma(c: RGB) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def _recolour(img: Image.Image, style: Style, amount: float) -> Image.Image:
    """The picture re-coloured in the provider's palette by brightness (a gradient map), blended in by amount."""
    gray = img.convert("L")
    gray.putpalette(_ramp(sorted(style.stops, key=_luma)).tobytes())
    return Image.blend(img, gray.convert("RGB"), amount)


def _pastel(img: Image.Image) -> Image.Image:
    """OpenAI's manner: high key, a little more contrast."""
    return Image.blend(ImageEnhance.Contrast(img).enhance(1.1), Image.new("RGB", img.size, (255, 255, 255)), 0.25)


def _pop(img: Image.Image) -> Image.Image:
    """core.today's manner: punchy contrast, big halftone dots (larger where the picture is darker)."""
    img = ImageEnhance.Contrast(img).enhance(1.3)
    dots = _dots(img, max(8, round(min(img.size) / 90)), 0.5)
    return ImageChops.multiply(img, Image.merge("RGB", (dots, dots, dots)))


def _neon(img: Image.Image) -> Image.Image:
    """Apiframe's manner: saturated colour at night."""
    return ImageEnhance.Brightness(ImageEnhance.Color(img).enhance(1.7)).enhance(0.78)


def _ink(img: Image.Image) -> Image.Image:
    """EvoLink's manner: a poster of few colours with inked edges."""
    edges = ImageOps.invert(img.convert("L").filter(ImageFilter.FIND_EDGES)).point(lambda v: max(v, 110))
    return ImageChops.multiply(ImageOps.posterize(img, 3), Image.merge("RGB", (edges, edges, edges)))


# An edit's restyle per provider (keyed by its texture). Each scales or blends every pixel, so a
# colour's strongest channel stays its strongest: an edit still shows what it was made from.
MANNERS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "hatch": _pastel, "halftone": _pop, "scanline": _neon, "grain": _ink,
}


def _stylize(img: Image.Image, scene: Scene) -> Image.Image:
    """The input re-coloured in the provider's palette, then drawn in its manner."""
    return MANNERS[scene.style.texture](_recolour(img, scene.style, 0.4))


def _restyle(inputs: list[Image.Image], scene: Scene, text: str, *, transparent: bool) -> Image.Image:
    """An edit without a mask: the input(s) re-coloured in the provider's manner, the prompt's motifs drawn
    over them, at the request's quality."""
    w, h = scene.width, scene.height
    band = _band(text, (0, 0, w, h), min(w, h))
    scene = replace(scene, top=band.height / h, overlay=True, motif_scale=0.75)
    base = _stylize(_tiled(inputs, w, h, scene.style.stops[0]), scene)
    img = _texture(_draw_scene(scene, base), scene)
    if transparent:
        img.putalpha(_ellipse_alpha(img.size))
    # Opaque, to cover a band the input may carry: the two headlines never mix.
    _draw_band(img, band, scene.style, 255)
    return img


def _keep(mask: bytes, first: Image.Image, width: int, height: int) -> Image.Image:
    """255 where the input is kept (the mask opaque), 0 where it is edited, fitted like the first input."""
    m = decode(mask)
    if "A" in m.getbands() or "transparency" in m.info:
        alpha = m.convert("RGBA").getchannel("A")
    else:
        alpha = m.convert("L").point(lambda v: 0 if v >= 128 else 255)  # white = edit, as core.images does
    if alpha.size != first.size:
        alpha = alpha.resize(first.size, Image.Resampling.NEAREST)
    return _cover(alpha, width, height, Image.Resampling.NEAREST).point(lambda v: 255 if v >= 128 else 0)


def _inner(area: Image.Image) -> tuple[int, int, int, int]:
    """A rectangle inside the edit area (255 = edit), shrunk from its bounding box towards its centre."""
    factor = max(1, math.ceil(max(area.size) / 256))
    a = np.asarray(area.reduce(factor)) >= 250  # fully inside, at 1/factor scale
    total = np.zeros((a.shape[0] + 1, a.shape[1] + 1), dtype=np.int64)
    total[1:, 1:] = a.cumsum(0).cumsum(1)
    count = max(1, int(total[-1, -1]))
    cy = float((a.sum(axis=1) * np.arange(a.shape[0])).sum()) / count
    cx = float((a.sum(axis=0) * np.arange(a.shape[1])).sum()) / count
    box = [0.0, 0.0, float(a.shape[1]), float(a.shape[0])]
    for _ in range(60):
        x0, y0, x1, y1 = (int(v) for v in (math.ceil(box[0]), math.ceil(box[1]), box[2], box[3]))
        cells = (x1 - x0) * (y1 - y0)
        if cells <= 0 or total[y1, x1] - total[y0, x1] - total[y1, x0] + total[y0, x0] >= cells:
            break
        box = [box[0] + (cx - box[0]) * 0.05, box[1] + (cy - box[1]) * 0.05,
               box[2] - (box[2] - cx) * 0.05, box[3] - (box[3] - cy) * 0.05]
    return x0 * factor, y0 * factor, min(area.width, x1 * factor), min(area.height, y1 * factor)


def _masked(inputs: list[Image.Image], mask: bytes, scene: Scene, text: str, *, transparent: bool) -> Image.Image:
    """An edit with a mask: the first input exactly, except inside the mask, where the input is re-coloured
    in the provider's manner with the prompt's motifs and the headline drawn over it."""
    w, h = scene.width, scene.height
    first = inputs[0]
    keeps_alpha = transparent or "A" in first.getbands() or "transparency" in first.info
    base = _cover(first.convert("RGBA" if keeps_alpha else "RGB"), w, h)
    edit = ImageOps.invert(_keep(mask, first, w, h))
    box = edit.getbbox()
    mark = max(9, round(min(w, h) / 28))
    if box is None:  # nothing to edit: the input, marked
        _draw_mark(ImageDraw.Draw(base), (mark, mark, mark + _mark_width(mark), round(mark * 2.5)), mark)
        return base
    area = edit.crop(box)
    inner = _inner(area)
    band = _band(text, inner, round(min(w, h) * 0.8), max_lines=2)
    band = replace(band, origin=(inner[0], inner[3] - band.height))  # at the foot of the area, motifs above
    fits = band.mark_box[2] <= band.origin[0] + band.width and band.height >= band.mark_box[3] - band.origin[1]
    bw, bh = box[2] - box[0], box[3] - box[1]
    bottom = band.origin[1] / bh if fits else 1.0
    sub = replace(scene, width=bw, height=bh, top=0.0, bottom=bottom, overlay=True, motif_scale=1.4)
    region = base.crop(box).convert("RGB")
    fresh = _texture(_draw_scene(sub, _stylize(region, sub)), sub)
    if fits:
        _draw_band(fresh, band, scene.style, 225)
    base.paste(fresh, box[:2], area)
    if not fits:  # too small an area for the mark: it goes in the corner, the one change outside the mask
        _draw_mark(ImageDraw.Draw(base), (mark, mark, mark + _mark_width(mark), round(mark * 2.5)), mark)
    return base


def decode(data: bytes) -> Image.Image:
    """Open image bytes fully (raises PIL.UnidentifiedImageError / OSError when not an image)."""
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def _encode(img: Image.Image, fmt: str, compression: int | None, transparent: bool) -> bytes:
    out = io.BytesIO()
    if fmt == "jpeg":
        img.convert("RGB").save(out, "JPEG", quality=100 if compression is None else compression)
    elif fmt == "webp":
        if not transparent:
            img = img.convert("RGB")
        img.save(out, "WEBP", quality=100 if compression is None else compression, method=0)
    else:
        if not transparent:
            img = img.convert("RGB")
        img.save(out, "PNG", compress_level=1)  # speed over size: these are throwaway files
    return out.getvalue()


def render(
    *,
    width: int,
    height: int,
    fmt: str,
    prompt: str,
    index: int = 0,
    provider: str = "",
    model: str = "",
    quality: str = "",
    compression: int | None = None,
    transparent: bool = False,
    inputs: list[bytes] | None = None,
    mask: bytes | None = None,
) -> bytes:
    """One image as encoded bytes of ``fmt`` (png / jpeg / webp).

    ``provider`` chooses the style and ``quality`` the detail; ``model`` changes nothing
    (the pictures never name it). ``mask`` (a PNG, alpha 0 = edit here) applies to the
    first of ``inputs``: outside it that input is returned unchanged.
    """
    del model  # accepted for compatibility; never drawn
    style = _style(provider)
    seed = hashlib.sha256(f"{prompt}\x00{index}".encode()).digest()
    scene = Scene(width, height, style, _motifs(prompt), seed, _level(quality), 0.0)
    text = headline(prompt)
    transparent = transparent and fmt != "jpeg"
    decoded = [decode(b) for b in inputs or ()]
    if decoded and mask is not None:
        img = _masked(decoded, mask, scene, text, transparent=transparent)
    elif decoded:
        img = _restyle(decoded, scene, text, transparent=transparent)
    else:
        img = _picture(scene, text, transparent=transparent)
    return _encode(img, fmt, compression, transparent)

"""What a request will cost before it runs: the whole bill, line by line.

Works on the tables of ``providers.price_table`` with exact ``Decimal`` arithmetic
(no rounding: presentation rounds). Token counts come from :mod:`providers.tokens`.

How an estimate is split: ``per_image`` is the part that scales with ``n`` (for
OpenAI and EvoLink token pricing: the output image tokens of one image). Prompt text,
input images and the edit overhead are billed once per API call and appear only in
``total`` and ``lines``. So ``total = per_image * n + per-request lines``, and for
per-image pricing simply ``per_image * n``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from . import tokens, validation
from .errors import InvalidRequest
from .price_table import Cost, ModelPrices, PriceItem, ProviderPrices
from .types import ImageRequest, ModelCaps

__all__ = ["CostLine", "Estimate", "estimate"]

# Used when no ModelCaps is given: the three sizes every GPT Image model makes.
_DEFAULT_RATIO_PIXELS = {"1:1": "1024x1024", "3:2": "1536x1024", "2:3": "1024x1536"}
# OpenAI and EvoLink take n up to 10 in one call; without caps assume one call.
_DEFAULT_IMAGES_PER_CALL = 10
# Unknown input image size (URL inputs): the size the brief asks to assume.
_UNKNOWN_INPUT_SIZE = (1024, 1024)
_EDIT_OVERHEAD_TOKENS = 32
# gpt-image-2 pixel limits, for scaling EvoLink's 2K/4K ratio mode.
_MAX_EDGE = 3840
_MAX_PIXELS = 8_294_400
_RESOLUTION_FACTOR = {"1K": 1, "2K": 2, "4K": 4}


@dataclass(frozen=True)
class CostLine:
    label: str  # e.g. "output image tokens (1024x1024, high)"
    quantity: Decimal
    unit: str  # what quantity counts: "tokens" | "images"
    unit_price: Decimal  # in the estimate's currency per one unit of quantity
    amount: Decimal
    usd: Decimal | None


@dataclass(frozen=True)
class Estimate:
    provider: str
    model: str
    quality: str
    images: int
    per_image: Cost
    total: Cost
    lines: tuple[CostLine, ...]  # for the whole request
    confirmed: bool
    source: str
    checked: str
    notes: tuple[str, ...]


def estimate(
    p: ProviderPrices,
    m: ModelPrices,
    request: ImageRequest,
    caps: ModelCaps | None = None,
    *,
    input_sizes: Sequence[tuple[int, int]] | None = None,
    token_notes: Mapping[str, str] | None = None,
) -> Estimate:
    """``request`` at ``p``'s model ``m``; ``token_notes`` explain token pricing (OpenAI's caveats)."""
    if request.n < 1:
        raise InvalidRequest(field="n", value=request.n, allowed="1 or more", provider=p.name)
    if m.pricing == "tokens":
        return _TokenBill(p, m, request, caps, token_notes or {}).estimate(input_sizes)
    if m.pricing == "per_image":
        return _estimate_per_image(p, m, request)
    raise ValueError(f"{p.name}/{m.name}: unknown pricing {m.pricing!r}")


def _estimate_per_image(p: ProviderPrices, m: ModelPrices, request: ImageRequest) -> Estimate:
    key: str | None = getattr(request, m.by) or m.default
    if key is None or key not in m.prices:
        raise InvalidRequest(
            f"{p.label} {m.name}: no price for {m.by} {key!r}",
            field=m.by,
            value=key,
            allowed=list(m.prices),
            provider=p.name,
        )
    item = m.prices[key]
    confirmed = item.confirmed and p.rate_confirmed
    n = Decimal(request.n)
    line = CostLine(
        label=f"images at {m.by} {key}",
        quantity=n,
        unit="images",
        unit_price=item.price,
        amount=item.price * n,
        usd=p.usd(item.price * n),
    )
    total = Cost(line.amount, p.currency, line.usd, confirmed)
    notes = [n_ for n_ in (item.note, m.note) if n_] + p.rate_notes()
    if m.by != "quality":
        notes.append(f"{m.name} has no quality tiers: the price depends on {m.by} only.")
    return Estimate(
        provider=p.name,
        model=request.model,
        quality=request.quality,
        images=request.n,
        per_image=p.cost(item.price, confirmed),
        total=total,
        lines=(line,),
        confirmed=confirmed,
        source=item.source,
        checked=item.checked,
        notes=tuple(notes),
    )


@dataclass
class _TokenBill:
    """One token-priced estimate being written: its lines, the prices used, its notes."""

    p: ProviderPrices
    m: ModelPrices
    request: ImageRequest
    caps: ModelCaps | None
    explain: Mapping[str, str]
    lines: list[CostLine] = field(default_factory=list)
    used: list[PriceItem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    assumed: bool = False  # a count in the bill is not confirmed by its source

    def line(self, label: str, count: int, item: str) -> None:
        price = self.m.item(self.p.name, item)
        self.used.append(price)
        unit_price = price.price / self.m.per
        amount = unit_price * count
        self.lines.append(CostLine(label, Decimal(count), "tokens", unit_price, amount, self.p.usd(amount)))

    def estimate(self, input_sizes: Sequence[tuple[int, int]] | None) -> Estimate:
        p, m, request = self.p, self.m, self.request
        quality = request.quality
        known = tokens.priced_qualities(m.name)
        if quality not in known:
            raise InvalidRequest(
                f"{p.label} {m.name}: no price is known for quality {quality!r}",
                field="quality",
                value=quality,
                allowed=list(known),
                provider=p.name,
            )
        if m.note:
            self.notes.append(m.note)
        pixels, size_notes = _output_pixels(m, request, self.caps)
        self.notes += size_notes
        if quality == "auto":
            self.notes.append(self.explain.get("quality_auto", "quality auto is estimated as high."))
        self.notes.append(self.explain.get("output_tokens", ""))

        n = request.n
        per_call = self.caps.max_images_per_call if self.caps is not None else _DEFAULT_IMAGES_PER_CALL
        calls = math.ceil(n / max(1, per_call))
        times = f", x {calls} calls" if calls > 1 else ""

        out_tokens = tokens.output_image_tokens(m.name, quality, pixels)
        billed_q = tokens.AUTO_BILLED_AS if quality == "auto" else quality
        q_label = f"auto, estimated as {billed_q}" if quality == "auto" else quality
        of_n = f" x {n} images" if n > 1 else ""
        self.line(f"output image tokens ({pixels}, {q_label}){of_n}", out_tokens * n, "image_output")
        previews = validation.streamed_previews(request, self.caps) if self.caps is not None else 0
        if previews and self.p.partial_image_tokens:
            self.line(f"streamed previews ({previews} x {self.p.partial_image_tokens} image output tokens)",
                      previews * self.p.partial_image_tokens, "image_output")
            self.notes.append(self.p.partial_image_note)
            self.assumed = self.assumed or not self.p.partial_image_confirmed
        text = tokens.text_tokens(request.prompt)
        self.line(f"prompt text tokens (about 4 characters each){times}", text * calls, "text_input")
        if request.is_edit:
            self._edit_lines(calls, times, input_sizes)
        self.notes.append(self.explain.get("text_tokens", ""))
        self.notes.append(
            "per_image is the output image part; prompt and input image tokens are billed per API call "
            "and appear only in the total."
        )
        self.notes += p.rate_notes()

        out_price = self.lines[0].unit_price
        confirmed = all(u.confirmed for u in self.used) and p.rate_confirmed and not self.assumed
        total_amount = sum((ln.amount for ln in self.lines), Decimal(0))
        return Estimate(
            provider=p.name,
            model=request.model,
            quality=quality,
            images=n,
            per_image=p.cost(out_price * out_tokens, confirmed),
            total=p.cost(total_amount, confirmed),
            lines=tuple(self.lines),
            confirmed=confirmed,
            source=m.source,
            checked=m.checked,
            notes=tuple(dict.fromkeys(x for x in self.notes if x)),  # drop blanks and repeats, keep order
        )

    def _edit_lines(self, calls: int, times: str, input_sizes: Sequence[tuple[int, int]] | None) -> None:
        """The edit overhead and one line per input image, each billed on every call."""
        request, m = self.request, self.m
        self.line(f"edit request overhead text tokens{times}", _EDIT_OVERHEAD_TOKENS * calls, "text_input")
        self.notes.append(self.explain.get("edit_overhead", ""))
        # Only the 1.x family charges extra for high fidelity (gpt-image-2 has no knob).
        high_fidelity = request.input_fidelity == "high" and m.name.startswith(("gpt-image-1", "chatgpt-image"))
        fid_label = ", high fidelity" if high_fidelity else ""
        for i, (w, h, how) in enumerate(_input_sizes(request, input_sizes), start=1):
            count = tokens.input_image_tokens(m.name, w, h, request.input_fidelity)
            self.line(f"input image {i} tokens ({w}x{h} {how}{fid_label}){times}", count * calls, "image_input")
            if how == "assumed":
                self.notes.append(f"Input image {i}: size unknown, assumed {w}x{h}.")
        self.notes.append(self.explain.get("input_images", ""))
        if high_fidelity:
            self.notes.append(self.explain.get("input_fidelity_high", ""))
        if request.mask is not None:
            self.notes.append(self.explain.get("mask", ""))


def _output_pixels(m: ModelPrices, request: ImageRequest, caps: ModelCaps | None) -> tuple[str, list[str]]:
    """The WxH that output tokens are counted for, and notes on how it was chosen."""
    size = request.size
    if size == "auto":
        # "auto" lets the model pick among its standard sizes (the ratio presets), not the
        # large custom ones a person can ask for explicitly: estimate the dearest of those.
        standard = [px for _, px in caps.ratio_pixels] if caps is not None else []
        candidates = set(standard) or set(_DEFAULT_RATIO_PIXELS.values())
        dearest = max(sorted(candidates), key=lambda px: tokens.output_image_tokens(m.name, "high", px))
        return dearest, [f"Size auto: estimated at the dearest standard size, {dearest}."]
    if caps is not None:
        pixels = caps.pixels_for(size)
    else:
        pixels = size if "x" in size else _DEFAULT_RATIO_PIXELS.get(size)
    notes: list[str] = []
    if pixels is None:
        pixels = _ratio_pixels(size)
        if pixels is None:
            raise InvalidRequest(f"No pixel size is known for size {size!r}", field="size", value=size, provider=m.name)
        notes.append(f"Size {size}: no pixel size given, estimated as {pixels}.")
    if request.resolution in ("2K", "4K") and "x" not in size:
        scaled = _scale(pixels, _RESOLUTION_FACTOR[request.resolution])
        notes.append(f"Resolution {request.resolution}: the pixel size is not published; estimated as {scaled}.")
        pixels = scaled
    return pixels, notes


def _input_sizes(request: ImageRequest, given: Sequence[tuple[int, int]] | None) -> list[tuple[int, int, str]]:
    """(width, height, how known) for each input image, in order."""
    out: list[tuple[int, int, str]] = []
    for i, image in enumerate(request.images):
        if given is not None and i < len(given):
            w, h = given[i]
            out.append((int(w), int(h), "given"))
            continue
        measured = _measure(image.data) if image.data is not None else None
        out.append((*measured, "measured") if measured else (*_UNKNOWN_INPUT_SIZE, "assumed"))
    return out


def _measure(data: bytes) -> tuple[int, int] | None:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:  # reads the header only
            w, h = im.size
        return w, h
    except Exception:  # not an image Pillow knows: fall back like a URL
        return None


def _round16(value: float) -> int:
    return max(16, int(value) // 16 * 16)


def _ratio_pixels(size: str) -> str | None:
    """A ratio like "16:9" at about one megapixel, edges multiples of 16 (an estimate)."""
    a, sep, b = size.partition(":")
    try:
        ra, rb = float(a), float(b)
    except ValueError:
        return None
    if not sep or ra <= 0 or rb <= 0:
        return None
    area = 1024 * 1024
    return f"{_round16(math.sqrt(area * ra / rb))}x{_round16(math.sqrt(area * rb / ra))}"


def _scale(pixels: str, factor: int) -> str:
    """``pixels`` times ``factor``, shrunk to gpt-image-2's edge and area limits."""
    w, h = tokens.parse_size(pixels)
    w, h = w * factor, h * factor
    shrink = min(1.0, _MAX_EDGE / max(w, h), math.sqrt(_MAX_PIXELS / (w * h)))
    return f"{_round16(w * shrink)}x{_round16(h * shrink)}"

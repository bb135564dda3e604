"""Prices: what a request will cost before it runs, and what it cost after.

All prices live in ``providers/prices.toml`` with their sources; this module only
reads them and does exact ``Decimal`` arithmetic (no float anywhere, no rounding:
presentation rounds). Token counts come from :mod:`providers.tokens`.

Amounts are in the provider's own currency (``"USD"`` for OpenAI, ``"credits"`` for
the aggregators) with the USD equivalent alongside, at the provider's credit rate.

How an estimate is split: ``per_image`` is the part that scales with ``n`` (for
OpenAI and EvoLink token pricing: the output image tokens of one image). Prompt text,
input images and the edit overhead are billed once per API call and appear only in
``total`` and ``lines``. So ``total = per_image * n + per-request lines``, and for
per-image pricing simply ``per_image * n``.
"""

from __future__ import annotations

import functools
import io
import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import clock

from . import tokens
from .errors import InvalidRequest
from .types import ImageRequest, JobStatus, ModelCaps

__all__ = [
    "DEFAULT_PRICES_PATH",
    "Catalogue",
    "Cost",
    "CostLine",
    "Estimate",
    "estimate_all",
    "load_catalogue",
]

DEFAULT_PRICES_PATH = Path(__file__).with_name("prices.toml")

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
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


# --- public result types ---------------------------------------------------------------


@dataclass(frozen=True)
class Cost:
    amount: Decimal
    unit: str  # "USD" | "credits"
    usd: Decimal | None  # None only if the provider's credit rate is unknown
    confirmed: bool


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


# --- the parsed catalogue ----------------------------------------------------------------


@dataclass(frozen=True)
class _Price:
    item: str
    price: Decimal
    source: str
    checked: str
    confirmed: bool
    note: str = ""


@dataclass(frozen=True)
class _Model:
    name: str
    pricing: str  # "tokens" | "per_image"
    unit: str  # as written, e.g. "USD per 1M tokens"
    per: Decimal  # tokens covered by one price (tokens pricing)
    by: str  # request field selecting a per-image price: "quality" | "resolution"
    default: str | None
    aliases: tuple[str, ...]
    source: str
    checked: str
    confirmed: bool
    note: str
    prices: Mapping[str, _Price]
    per_image: Mapping[str, Mapping[str, Decimal]]  # published, for cross-checks
    per_image_meta: _Price | None


@dataclass(frozen=True)
class _Rate:
    price: Decimal | None
    approximate: bool
    source: str
    checked: str
    confirmed: bool
    note: str


@dataclass(frozen=True)
class _Provider:
    name: str
    label: str
    currency: str  # "USD" | "credits"
    billed_from: str | None
    billed_keys: tuple[str, ...]
    source: str
    checked: str
    note: str
    rate: _Rate | None
    notes: Mapping[str, str]
    models: Mapping[str, _Model] = field(default_factory=dict)


def _money(raw: object, where: str) -> Decimal:
    # Prices are strings (or ints) in the TOML: a float there would already be inexact.
    if isinstance(raw, bool) or not isinstance(raw, (str, int, Decimal)):
        raise ValueError(f"{where}: price must be a string, got {raw!r}")
    try:
        return Decimal(str(raw))
    except InvalidOperation as exc:
        raise ValueError(f"{where}: {raw!r} is not a number") from exc


def _reported(raw: object) -> Decimal | None:
    """A number a provider reported in JSON. ``str()`` of a float is its shortest
    round-trip text (2.5 -> "2.5"), so no binary noise gets into the Decimal."""
    if raw is None or isinstance(raw, bool):
        return None
    try:
        return Decimal(str(raw))
    except InvalidOperation:
        return None


def _parse_model(name: str, raw: Mapping[str, Any], where: str) -> _Model:
    for key in ("pricing", "unit", "source", "checked", "confirmed"):
        if key not in raw:
            raise ValueError(f"{where}: missing {key}")
    source, checked, confirmed = str(raw["source"]), str(raw["checked"]), bool(raw["confirmed"])
    prices: dict[str, _Price] = {}
    for item, value in raw.get("prices", {}).items():
        at = f"{where}.prices.{item}"
        if isinstance(value, Mapping):
            prices[item] = _Price(
                item,
                _money(value.get("price"), at),
                str(value.get("source", source)),
                str(value.get("checked", checked)),
                bool(value.get("confirmed", confirmed)),
                str(value.get("note", "")),
            )
        else:
            prices[item] = _Price(item, _money(value, at), source, checked, confirmed)
    per_image: dict[str, dict[str, Decimal]] = {}
    per_image_meta = None
    if "per_image" in raw:
        table = raw["per_image"]
        at = f"{where}.per_image"
        per_image_meta = _Price(
            "per_image",
            Decimal(0),
            str(table["source"]),
            str(table["checked"]),
            bool(table["confirmed"]),
            str(table.get("note", "")),
        )
        for size, by_quality in table.items():
            if isinstance(by_quality, Mapping):
                per_image[size] = {q: _money(v, f"{at}.{size}.{q}") for q, v in by_quality.items()}
    return _Model(
        name=name,
        pricing=str(raw["pricing"]),
        unit=str(raw["unit"]),
        per=_money(raw.get("per", "1"), f"{where}.per"),
        by=str(raw.get("by", "quality")),
        default=raw.get("default"),
        aliases=tuple(raw.get("aliases", ())),
        source=source,
        checked=checked,
        confirmed=confirmed,
        note=str(raw.get("note", "")),
        prices=prices,
        per_image=per_image,
        per_image_meta=per_image_meta,
    )


def _parse(data: Mapping[str, Any]) -> dict[str, _Provider]:
    providers: dict[str, _Provider] = {}
    for name, raw in data.items():
        if name == "meta":
            continue
        rate = None
        if "usd_per_credit" in raw:
            r = raw["usd_per_credit"]
            rate = _Rate(
                _money(r["price"], f"{name}.usd_per_credit") if "price" in r else None,
                bool(r.get("approximate", False)),
                str(r["source"]),
                str(r["checked"]),
                bool(r["confirmed"]),
                str(r.get("note", "")),
            )
        providers[name] = _Provider(
            name=name,
            label=str(raw.get("label", name)),
            currency=str(raw["currency"]),
            billed_from=raw.get("billed_from"),
            billed_keys=tuple(raw.get("billed_keys", ())),
            source=str(raw["source"]),
            checked=str(raw["checked"]),
            note=str(raw.get("note", "")),
            rate=rate,
            notes={k: str(v["text"]) for k, v in raw.get("notes", {}).items()},
            models={m: _parse_model(m, v, f"{name}.models.{m}") for m, v in raw.get("models", {}).items()},
        )
    return providers


# --- the catalogue -----------------------------------------------------------------------


class Catalogue:
    """Prices by provider and model, read from ``prices.toml``. Immutable."""

    def __init__(self, providers: Mapping[str, _Provider]) -> None:
        self._providers = dict(providers)

    # -- lookups --------------------------------------------------------------------------
    def providers(self) -> tuple[str, ...]:
        return tuple(self._providers)

    def models(self, provider: str) -> tuple[str, ...]:
        return tuple(self._provider(provider).models)

    def currency(self, provider: str) -> str:
        """What the provider bills in: ``"USD"`` or ``"credits"``."""
        return self._provider(provider).currency

    def usd_per_credit(self, provider: str) -> Decimal | None:
        """USD per credit; None for a provider billing in USD or with no known rate."""
        rate = self._provider(provider).rate
        return None if rate is None else rate.price

    def notes(self, provider: str) -> dict[str, str]:
        """Explanations the app can show (how auto quality and input images are billed...)."""
        return dict(self._provider(provider).notes)

    def source(self, provider: str, model: str | None = None) -> tuple[str, str]:
        """``(source address, checked date)`` of a model's prices, or of the provider's."""
        if model is None:
            p = self._provider(provider)
            return p.source, p.checked
        m = self._model(provider, model)
        return m.source, m.checked

    def published_per_image(self, provider: str, model: str) -> dict[str, dict[str, Decimal]]:
        """Published per-image USD prices by size and quality (OpenAI), for cross-checks."""
        return {s: dict(q) for s, q in self._model(provider, model).per_image.items()}

    def with_overrides(self, usd_per_credit: Mapping[str, Decimal | None]) -> Catalogue:
        """A copy with credit rates set by the person (Settings); None clears a rate."""
        providers = dict(self._providers)
        today = clock.today().isoformat()
        for name, value in usd_per_credit.items():
            p = self._provider(name)
            if p.currency != "credits":
                raise InvalidRequest(
                    f"{p.label} bills in USD: it has no credit rate", field="usd_per_credit", value=name
                )
            if isinstance(value, float):  # a float would make the money inexact
                raise TypeError("usd_per_credit must be a Decimal (or a string), not a float")
            price = None if value is None else _money(value, f"override {name}")
            if price is not None and price < 0:
                raise InvalidRequest(field="usd_per_credit", value=value, allowed="a positive amount")
            rate = _Rate(
                price,
                approximate=False,
                source="set in Settings",
                checked=today,
                # The person's own figure is what they pay: no longer an unconfirmed guess.
                confirmed=price is not None,
                note="Credit value set in Settings.",
            )
            providers[name] = replace(p, rate=rate)
        return Catalogue(providers)

    def rows(self) -> list[dict[str, Any]]:
        """A flat table for the Settings page, one row per price."""
        out: list[dict[str, Any]] = []
        for p in self._providers.values():
            rate = p.rate
            if rate is not None:
                out.append(
                    {
                        "provider": p.name,
                        "model": "",
                        "item": "usd_per_credit" + (" (approximate)" if rate.approximate else ""),
                        "price": rate.price,
                        "unit": "USD per credit",
                        "usd": rate.price,
                        "confirmed": rate.confirmed,
                        "usd_confirmed": rate.confirmed,
                        "source": rate.source,
                        "checked": rate.checked,
                        "note": rate.note,
                    }
                )
            for m in p.models.values():
                for item in m.prices.values():
                    out.append(
                        {
                            "provider": p.name,
                            "model": m.name,
                            "item": item.item,
                            "price": item.price,
                            "unit": m.unit,
                            "usd": self._usd(p, item.price),
                            "confirmed": item.confirmed,
                            "usd_confirmed": item.confirmed and self._rate_confirmed(p),
                            "source": item.source,
                            "checked": item.checked,
                            "note": item.note or m.note,
                        }
                    )
                meta = m.per_image_meta
                for size, by_quality in m.per_image.items():
                    for quality, price in by_quality.items():
                        assert meta is not None
                        out.append(
                            {
                                "provider": p.name,
                                "model": m.name,
                                "item": f"published per image {size} {quality}",
                                "price": price,
                                "unit": "USD per image",
                                "usd": price,
                                "confirmed": meta.confirmed,
                                "usd_confirmed": meta.confirmed,
                                "source": meta.source,
                                "checked": meta.checked,
                                "note": meta.note,
                            }
                        )
        return out

    # -- estimate -------------------------------------------------------------------------
    def estimate(
        self,
        provider: str,
        request: ImageRequest,
        caps: ModelCaps | None = None,
        *,
        input_sizes: Sequence[tuple[int, int]] | None = None,
    ) -> Estimate:
        """What ``request`` will cost at ``provider``: the whole bill, line by line.

        ``caps`` gives the model's pixel sizes and images per call (defaults: the three
        standard sizes, ten images per call). ``input_sizes`` are the edit's input image
        sizes; without them local images are measured from their header and URL
        images are assumed 1024x1024.
        """
        p = self._provider(provider)
        m = self._model(provider, request.model)
        if request.n < 1:
            raise InvalidRequest(field="n", value=request.n, allowed="1 or more", provider=provider)
        if m.pricing == "tokens":
            return self._estimate_tokens(p, m, request, caps, input_sizes)
        if m.pricing == "per_image":
            return self._estimate_per_image(p, m, request)
        raise ValueError(f"{provider}/{m.name}: unknown pricing {m.pricing!r}")

    def _estimate_per_image(self, p: _Provider, m: _Model, request: ImageRequest) -> Estimate:
        key = getattr(request, m.by) or m.default
        if key not in m.prices:
            raise InvalidRequest(
                f"{p.label} {m.name}: no price for {m.by} {key!r}",
                field=m.by,
                value=key,
                allowed=list(m.prices),
                provider=p.name,
            )
        item = m.prices[key]
        confirmed = item.confirmed and self._rate_confirmed(p)
        n = Decimal(request.n)
        line = CostLine(
            label=f"images at {m.by} {key}",
            quantity=n,
            unit="images",
            unit_price=item.price,
            amount=item.price * n,
            usd=self._usd(p, item.price * n),
        )
        per_image = Cost(item.price, p.currency, self._usd(p, item.price), confirmed)
        total = Cost(line.amount, p.currency, line.usd, confirmed)
        notes = [n_ for n_ in (item.note, m.note) if n_] + self._rate_notes(p)
        if m.by != "quality":
            notes.append(f"{m.name} has no quality tiers: the price depends on {m.by} only.")
        return Estimate(
            provider=p.name,
            model=request.model,
            quality=request.quality,
            images=request.n,
            per_image=per_image,
            total=total,
            lines=(line,),
            confirmed=confirmed,
            source=item.source,
            checked=item.checked,
            notes=tuple(notes),
        )

    def _estimate_tokens(
        self,
        p: _Provider,
        m: _Model,
        request: ImageRequest,
        caps: ModelCaps | None,
        input_sizes: Sequence[tuple[int, int]] | None,
    ) -> Estimate:
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
        explain = self._token_notes(p)
        notes: list[str] = [m.note] if m.note else []
        pixels, size_notes = self._output_pixels(m, request, caps)
        notes += size_notes
        if quality == "auto":
            notes.append(explain.get("quality_auto", "quality auto is estimated as high."))
        notes.append(explain.get("output_tokens", ""))

        n = request.n
        per_call = caps.max_images_per_call if caps is not None else _DEFAULT_IMAGES_PER_CALL
        calls = math.ceil(n / max(1, per_call))
        times = f", x {calls} calls" if calls > 1 else ""
        used: list[_Price] = []

        def line(label: str, count: int, item: str) -> CostLine:
            price = self._item(p, m, item)
            used.append(price)
            unit_price = price.price / m.per
            amount = unit_price * count
            return CostLine(label, Decimal(count), "tokens", unit_price, amount, self._usd(p, amount))

        out_tokens = tokens.output_image_tokens(m.name, quality, pixels)
        billed_q = tokens.AUTO_BILLED_AS if quality == "auto" else quality
        q_label = f"auto, estimated as {billed_q}" if quality == "auto" else quality
        of_n = f" x {n} images" if n > 1 else ""
        lines = [line(f"output image tokens ({pixels}, {q_label}){of_n}", out_tokens * n, "image_output")]
        text = tokens.text_tokens(request.prompt)
        lines.append(line(f"prompt text tokens (about 4 characters each){times}", text * calls, "text_input"))
        if request.is_edit:
            lines.append(line(f"edit request overhead text tokens{times}", _EDIT_OVERHEAD_TOKENS * calls, "text_input"))
            notes.append(explain.get("edit_overhead", ""))
            # Only the 1.x family charges extra for high fidelity (gpt-image-2 has no knob).
            high_fidelity = request.input_fidelity == "high" and m.name.startswith(("gpt-image-1", "chatgpt-image"))
            for i, (w, h, how) in enumerate(_input_sizes(request, input_sizes), start=1):
                count = tokens.input_image_tokens(m.name, w, h, request.input_fidelity)
                fid_label = ", high fidelity" if high_fidelity else ""
                lines.append(
                    line(f"input image {i} tokens ({w}x{h} {how}{fid_label}){times}", count * calls, "image_input")
                )
                if how == "assumed":
                    notes.append(f"Input image {i}: size unknown, assumed {w}x{h}.")
            notes.append(explain.get("input_images", ""))
            if high_fidelity:
                notes.append(explain.get("input_fidelity_high", ""))
            if request.mask is not None:
                notes.append(explain.get("mask", ""))
        notes.append(explain.get("text_tokens", ""))
        notes.append(
            "per_image is the output image part; prompt and input image tokens are billed per API call "
            "and appear only in the total."
        )
        notes += self._rate_notes(p)

        out_price = lines[0].unit_price
        confirmed = all(u.confirmed for u in used) and self._rate_confirmed(p)
        per_amount = out_price * out_tokens
        total_amount = sum((ln.amount for ln in lines), Decimal(0))
        return Estimate(
            provider=p.name,
            model=request.model,
            quality=quality,
            images=n,
            per_image=Cost(per_amount, p.currency, self._usd(p, per_amount), confirmed),
            total=Cost(total_amount, p.currency, self._usd(p, total_amount), confirmed),
            lines=tuple(lines),
            confirmed=confirmed,
            source=m.source,
            checked=m.checked,
            notes=tuple(dict.fromkeys(x for x in notes if x)),  # drop blanks and repeats, keep order
        )

    def _output_pixels(self, m: _Model, request: ImageRequest, caps: ModelCaps | None) -> tuple[str, list[str]]:
        """The WxH that output tokens are counted for, and notes on how it was chosen."""
        size = request.size

        def pixels_of(value: str) -> str | None:
            return (
                caps.pixels_for(value)
                if caps is not None
                else (value if "x" in value else _DEFAULT_RATIO_PIXELS.get(value))
            )

        if size == "auto":
            # "auto" lets the model pick among its standard sizes (the ratio presets), not the
            # large custom ones a person can ask for explicitly: estimate the dearest of those.
            standard = [px for _, px in caps.ratio_pixels] if caps is not None else []
            candidates = set(standard) or set(_DEFAULT_RATIO_PIXELS.values())
            dearest = max(sorted(candidates), key=lambda px: tokens.output_image_tokens(m.name, "high", px))
            return dearest, [f"Size auto: estimated at the dearest standard size, {dearest}."]
        pixels = pixels_of(size)
        notes: list[str] = []
        if pixels is None:
            pixels = _ratio_pixels(size)
            if pixels is None:
                raise InvalidRequest(
                    f"No pixel size is known for size {size!r}", field="size", value=size, provider=m.name
                )
            notes.append(f"Size {size}: no pixel size given, estimated as {pixels}.")
        if request.resolution in ("2K", "4K") and "x" not in size:
            scaled = _scale(pixels, _RESOLUTION_FACTOR[request.resolution])
            notes.append(f"Resolution {request.resolution}: the pixel size is not published; estimated as {scaled}.")
            pixels = scaled
        return pixels, notes

    # -- billed ---------------------------------------------------------------------------
    def billed(self, provider: str, request: ImageRequest, status: JobStatus) -> Cost | None:
        """Price what the provider reported for a job; None when it reported nothing."""
        p = self._provider(provider)
        m = self._model(provider, request.model)
        raw = status.billed
        if not isinstance(raw, Mapping):
            return None
        if p.billed_from == "usage":
            usage = raw.get("usage", raw)
            return self._price_usage(p, m, request, usage) if isinstance(usage, Mapping) else None
        for source in (raw, raw.get("usage")):
            if not isinstance(source, Mapping):
                continue
            for key in p.billed_keys:
                credits = _reported(source.get(key))
                if credits is not None:
                    return Cost(credits, p.currency, self._usd(p, credits), self._rate_confirmed(p))
        return None

    def _price_usage(self, p: _Provider, m: _Model, request: ImageRequest, usage: Mapping[str, Any]) -> Cost | None:
        if m.pricing != "tokens":
            return None
        inp = _reported(usage.get("input_tokens"))
        out = _reported(usage.get("output_tokens"))
        if inp is None and out is None:
            return None
        in_details = usage.get("input_tokens_details") or {}
        out_details = usage.get("output_tokens_details") or {}
        text_in = _reported(in_details.get("text_tokens"))
        image_in = _reported(in_details.get("image_tokens"))
        if text_in is None and image_in is None:
            # No split reported: an edit's input is mostly image tokens, the dearer rate.
            whole = inp or Decimal(0)
            text_in, image_in = (Decimal(0), whole) if request.is_edit else (whole, Decimal(0))
        text_out = _reported(out_details.get("text_tokens")) or Decimal(0)
        image_out = _reported(out_details.get("image_tokens"))
        if image_out is None:
            image_out = (out or Decimal(0)) - text_out
        used: list[_Price] = []

        def cost(count: Decimal | None, item: str) -> Decimal:
            if not count:
                return Decimal(0)
            price = self._item(p, m, item)
            used.append(price)
            return price.price / m.per * count

        # A model with no published text output price: price those tokens as image output.
        text_out_item = "text_output" if "text_output" in m.prices else "image_output"
        amount = (
            cost(text_in, "text_input")
            + cost(image_in, "image_input")
            + cost(image_out, "image_output")
            + cost(text_out, text_out_item)
        )
        confirmed = all(u.confirmed for u in used) and self._rate_confirmed(p)
        return Cost(amount, p.currency, self._usd(p, amount), confirmed)

    # -- helpers --------------------------------------------------------------------------
    def _provider(self, provider: str) -> _Provider:
        try:
            return self._providers[provider]
        except KeyError:
            raise InvalidRequest(
                f"No prices are known for provider {provider!r}",
                field="model",
                value=provider,
                allowed=list(self._providers),
            ) from None

    def _model(self, provider: str, model: str) -> _Model:
        p = self._provider(provider)
        # Exact id, a listed alias, then without an "openai/" prefix or a date snapshot suffix.
        base = model.removeprefix("openai/")
        for candidate in dict.fromkeys((model, base, _SNAPSHOT.sub("", base))):
            if candidate in p.models:
                return p.models[candidate]
            for m in p.models.values():
                if candidate in m.aliases:
                    return m
        raise InvalidRequest(
            f"No prices are known for {model!r} at {p.label}",
            field="model",
            value=model,
            allowed=list(p.models),
            provider=provider,
        )

    def _item(self, p: _Provider, m: _Model, item: str) -> _Price:
        try:
            return m.prices[item]
        except KeyError:
            raise ValueError(f"prices.toml: {p.name}/{m.name} has no {item} price") from None

    def _usd(self, p: _Provider, amount: Decimal) -> Decimal | None:
        if p.currency == "USD":
            return amount
        if p.rate is None or p.rate.price is None:
            return None
        return amount * p.rate.price

    def _token_notes(self, p: _Provider) -> Mapping[str, str]:
        # Token counts are OpenAI's wherever tokens are priced (EvoLink too), so are their caveats.
        base = self._providers.get("openai")
        return {**(base.notes if base is not None else {}), **p.notes}

    def _rate_confirmed(self, p: _Provider) -> bool:
        if p.currency == "USD":
            return True
        return p.rate is not None and p.rate.price is not None and p.rate.confirmed

    def _rate_notes(self, p: _Provider) -> list[str]:
        if p.currency == "USD":
            return []
        if p.rate is None or p.rate.price is None:
            return [f"{p.label}'s USD value per credit is unknown: set it in Settings."]
        approx = "about " if p.rate.approximate else ""
        note = f"USD at {approx}${p.rate.price} per credit."
        return [note] + ([p.rate.note] if p.rate.note and not p.rate.confirmed else [])


# --- module helpers ----------------------------------------------------------------------


def _input_sizes(request: ImageRequest, given: Sequence[tuple[int, int]] | None) -> list[tuple[int, int, str]]:
    """(width, height, how known) for each input image, in order."""
    out = []
    for i, image in enumerate(request.images):
        if given is not None and i < len(given):
            w, h = given[i]
            out.append((int(w), int(h), "given"))
            continue
        if image.data is not None:
            try:
                from PIL import Image

                with Image.open(io.BytesIO(image.data)) as im:  # reads the header only
                    w, h = im.size
                out.append((w, h, "measured"))
                continue
            except Exception:  # not an image Pillow knows: fall back like a URL
                pass
        out.append((*_UNKNOWN_INPUT_SIZE, "assumed"))
    return out


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


def load_catalogue(path: Path | None = None) -> Catalogue:
    """The catalogue from ``path`` (default ``providers/prices.toml``, read once)."""
    if path is None:
        return _default_catalogue()
    return _read(Path(path))


@functools.cache
def _default_catalogue() -> Catalogue:
    return _read(DEFAULT_PRICES_PATH)


def _read(path: Path) -> Catalogue:
    with path.open("rb") as f:
        # parse_float=Decimal: even a stray float literal never becomes a binary float.
        data = tomllib.load(f, parse_float=Decimal)
    return Catalogue(_parse(data))


def estimate_all(
    request: ImageRequest,
    rows: Iterable[tuple[str, str]],
    qualities: Sequence[str] = ("low", "medium", "high"),
    *,
    catalogue: Catalogue | None = None,
    caps: Mapping[tuple[str, str], ModelCaps] | None = None,
) -> list[Estimate]:
    """The same request at every (provider, model) and quality, for comparison tables.

    A quality the model's caps do not offer is skipped.
    """
    cat = catalogue or load_catalogue()
    out = []
    for provider, model in rows:
        model_caps = (caps or {}).get((provider, model))
        for quality in qualities:
            if model_caps is not None and quality not in model_caps.qualities:
                continue
            out.append(cat.estimate(provider, request.with_(model=model, quality=quality), model_caps))
    return out

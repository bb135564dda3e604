"""``prices.toml`` read into typed tables: every price with its source, date and status.

Only parsing and the per-provider money rules live here (what currency a provider
bills in, its credit rate, the USD value of an amount). What a request costs is
``providers.estimating``; what a finished job cost is ``providers.billing``; both
work on these tables, and ``providers.catalogue.Catalogue`` is the front door.

Exact ``Decimal`` arithmetic only: a float in the TOML would already be inexact.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

__all__ = [
    "Cost",
    "CreditRate",
    "ModelPrices",
    "PriceItem",
    "ProviderPrices",
    "money",
    "parse",
    "read",
    "reported",
]


@dataclass(frozen=True)
class Cost:
    amount: Decimal
    unit: str  # "USD" | "credits"
    usd: Decimal | None  # None only if the provider's credit rate is unknown
    confirmed: bool


@dataclass(frozen=True)
class PriceItem:
    item: str
    price: Decimal
    source: str
    checked: str
    confirmed: bool
    note: str = ""


@dataclass(frozen=True)
class ModelPrices:
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
    prices: Mapping[str, PriceItem]
    per_image: Mapping[str, Mapping[str, Decimal]]  # published, for cross-checks
    per_image_meta: PriceItem | None

    def item(self, provider: str, item: str) -> PriceItem:
        """A price the estimate needs; its absence is a broken ``prices.toml``, not a bad request."""
        try:
            return self.prices[item]
        except KeyError:
            raise ValueError(f"prices.toml: {provider}/{self.name} has no {item} price") from None


@dataclass(frozen=True)
class CreditRate:
    price: Decimal | None
    approximate: bool
    source: str
    checked: str
    confirmed: bool
    note: str


@dataclass(frozen=True)
class ProviderPrices:
    name: str
    label: str
    currency: str  # "USD" | "credits"
    billed_from: str | None
    billed_keys: tuple[str, ...]
    source: str
    checked: str
    note: str
    rate: CreditRate | None
    notes: Mapping[str, str]
    models: Mapping[str, ModelPrices] = field(default_factory=dict)
    # Image output tokens each streamed preview adds (OpenAI), and the catalogue's note on it.
    partial_image_tokens: int = 0
    partial_image_note: str = ""
    partial_image_confirmed: bool = True

    def usd(self, amount: Decimal) -> Decimal | None:
        """``amount`` (in this provider's currency) in USD; None while the credit rate is unknown."""
        if self.currency == "USD":
            return amount
        if self.rate is None or self.rate.price is None:
            return None
        return amount * self.rate.price

    def cost(self, amount: Decimal, confirmed: bool) -> Cost:
        return Cost(amount, self.currency, self.usd(amount), confirmed)

    @property
    def rate_confirmed(self) -> bool:
        if self.currency == "USD":
            return True
        return self.rate is not None and self.rate.price is not None and self.rate.confirmed

    def rate_notes(self) -> list[str]:
        if self.currency == "USD":
            return []
        if self.rate is None or self.rate.price is None:
            return [f"{self.label}'s USD value per credit is unknown: set it in Settings."]
        approx = "about " if self.rate.approximate else ""
        note = f"USD at {approx}${self.rate.price} per credit."
        return [note] + ([self.rate.note] if self.rate.note and not self.rate.confirmed else [])


def money(raw: object, where: str) -> Decimal:
    # Prices are strings (or ints) in the TOML: a float there would already be inexact.
    if isinstance(raw, bool) or not isinstance(raw, (str, int, Decimal)):
        raise ValueError(f"{where}: price must be a string, got {raw!r}")
    try:
        return Decimal(str(raw))
    except InvalidOperation as exc:
        raise ValueError(f"{where}: {raw!r} is not a number") from exc


def reported(raw: object) -> Decimal | None:
    """A number a provider reported in JSON. ``str()`` of a float is its shortest
    round-trip text (2.5 -> "2.5"), so no binary noise gets into the Decimal."""
    if raw is None or isinstance(raw, bool):
        return None
    try:
        return Decimal(str(raw))
    except InvalidOperation:
        return None


def _prices(raw: Mapping[str, Any], where: str, source: str, checked: str, confirmed: bool) -> dict[str, PriceItem]:
    # A price is a bare amount (inheriting the model's source) or a table with its own.
    prices: dict[str, PriceItem] = {}
    for item, value in raw.items():
        at = f"{where}.prices.{item}"
        if isinstance(value, Mapping):
            prices[item] = PriceItem(
                item,
                money(value.get("price"), at),
                str(value.get("source", source)),
                str(value.get("checked", checked)),
                bool(value.get("confirmed", confirmed)),
                str(value.get("note", "")),
            )
        else:
            prices[item] = PriceItem(item, money(value, at), source, checked, confirmed)
    return prices


def _published(table: Mapping[str, Any], where: str) -> tuple[PriceItem, dict[str, dict[str, Decimal]]]:
    """OpenAI's published per-image table: its provenance, and prices by size and quality."""
    meta = PriceItem(
        "per_image",
        Decimal(0),
        str(table["source"]),
        str(table["checked"]),
        bool(table["confirmed"]),
        str(table.get("note", "")),
    )
    per_image = {
        size: {q: money(v, f"{where}.per_image.{size}.{q}") for q, v in by_quality.items()}
        for size, by_quality in table.items()
        if isinstance(by_quality, Mapping)
    }
    return meta, per_image


def _parse_model(name: str, raw: Mapping[str, Any], where: str) -> ModelPrices:
    for key in ("pricing", "unit", "source", "checked", "confirmed"):
        if key not in raw:
            raise ValueError(f"{where}: missing {key}")
    source, checked, confirmed = str(raw["source"]), str(raw["checked"]), bool(raw["confirmed"])
    prices = _prices(raw.get("prices", {}), where, source, checked, confirmed)
    per_image_meta, per_image = _published(raw["per_image"], where) if "per_image" in raw else (None, {})
    return ModelPrices(
        name=name,
        pricing=str(raw["pricing"]),
        unit=str(raw["unit"]),
        per=money(raw.get("per", "1"), f"{where}.per"),
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


def _parse_rate(raw: Mapping[str, Any], where: str) -> CreditRate:
    return CreditRate(
        money(raw["price"], where) if "price" in raw else None,
        bool(raw.get("approximate", False)),
        str(raw["source"]),
        str(raw["checked"]),
        bool(raw["confirmed"]),
        str(raw.get("note", "")),
    )


def parse(data: Mapping[str, Any]) -> dict[str, ProviderPrices]:
    """Every provider's table from the TOML document (``meta`` is the file's own header)."""
    providers: dict[str, ProviderPrices] = {}
    for name, raw in data.items():
        if name == "meta":
            continue
        rate = _parse_rate(raw["usd_per_credit"], f"{name}.usd_per_credit") if "usd_per_credit" in raw else None
        providers[name] = ProviderPrices(
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
            partial_image_tokens=int(raw.get("partial_images", {}).get("tokens_each", 0)),
            partial_image_note=str(raw.get("partial_images", {}).get("note", "")),
            partial_image_confirmed=bool(raw.get("partial_images", {}).get("confirmed", True)),
        )
    return providers


def read(path: Path) -> dict[str, ProviderPrices]:
    with path.open("rb") as f:
        # parse_float=Decimal: even a stray float literal never becomes a binary float.
        data = tomllib.load(f, parse_float=Decimal)
    return parse(data)

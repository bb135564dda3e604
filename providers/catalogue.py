"""Prices: what a request will cost before it runs, and what it cost after.

All prices live in ``providers/prices.toml`` with their sources. ``Catalogue`` is the
one front door the app uses; the work is done beside it, one job per module:
``providers.price_table`` reads the TOML into typed tables, ``providers.estimating``
writes an estimate line by line, ``providers.billing`` prices what a provider
reported. Exact ``Decimal`` arithmetic throughout (no float, no rounding:
presentation rounds); token counts come from :mod:`providers.tokens`.

Amounts are in the provider's own currency (``"USD"`` for OpenAI, ``"credits"`` for
the aggregators) with the USD equivalent alongside, at the provider's credit rate.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import clock

from . import billing, estimating
from .errors import InvalidRequest
from .estimating import CostLine, Estimate
from .price_table import Cost, CreditRate, ModelPrices, ProviderPrices, money, read
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

_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


class Catalogue:
    """Prices by provider and model, read from ``prices.toml``. Immutable."""

    def __init__(self, providers: Mapping[str, ProviderPrices]) -> None:
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

    def partial_image_tokens(self, provider: str) -> int:
        """Image output tokens one streamed preview adds to the bill (0 where previews are free or absent)."""
        return self._provider(provider).partial_image_tokens

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
            price = None if value is None else money(value, f"override {name}")
            if price is not None and price < 0:
                raise InvalidRequest(field="usd_per_credit", value=value, allowed="a positive amount")
            rate = CreditRate(
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
                            "usd": p.usd(item.price),
                            "confirmed": item.confirmed,
                            "usd_confirmed": item.confirmed and p.rate_confirmed,
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

    # -- estimate and bill ----------------------------------------------------------------
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
        return estimating.estimate(p, m, request, caps, input_sizes=input_sizes, token_notes=self._token_notes(p))

    def billed(self, provider: str, request: ImageRequest, status: JobStatus) -> Cost | None:
        """Price what the provider reported for a job; None when it reported nothing."""
        return billing.billed(self._provider(provider), self._model(provider, request.model), request, status)

    # -- helpers --------------------------------------------------------------------------
    def _provider(self, provider: str) -> ProviderPrices:
        try:
            return self._providers[provider]
        except KeyError:
            raise InvalidRequest(
                f"No prices are known for provider {provider!r}",
                field="model",
                value=provider,
                allowed=list(self._providers),
            ) from None

    def _model(self, provider: str, model: str) -> ModelPrices:
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

    def _token_notes(self, p: ProviderPrices) -> Mapping[str, str]:
        # Token counts are OpenAI's wherever tokens are priced (EvoLink too), so are their caveats.
        base = self._providers.get("openai")
        return {**(base.notes if base is not None else {}), **p.notes}


def load_catalogue(path: Path | None = None) -> Catalogue:
    """The catalogue from ``path`` (default ``providers/prices.toml``, read once)."""
    if path is None:
        return _default_catalogue()
    return _read(Path(path))


@functools.cache
def _default_catalogue() -> Catalogue:
    return _read(DEFAULT_PRICES_PATH)


def _read(path: Path) -> Catalogue:
    return Catalogue(read(path))


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

"""What a whole Studio batch costs, and what the same batch would cost elsewhere.

Pure arithmetic over the price catalogue: no network, no Streamlit. A batch is
one request per prompt (``{{variables}}`` expanded), each with ``n`` images;
its cost is the sum of the catalogue's estimate for each prompt, so the prompt
text tokens of every prompt are counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from providers import registry, validation
from providers.catalogue import Catalogue, CostLine, Estimate
from providers.errors import InvalidRequest
from providers.registry import PROVIDERS, model_for
from providers.types import ImageRequest, ModelCaps

__all__ = ["BatchEstimate", "CompareRow", "batch_estimate", "compare"]


@dataclass(frozen=True)
class BatchEstimate:
    provider: str
    model: str
    quality: str
    prompts: int
    images: int
    amount: Decimal  # in ``unit``
    unit: str  # USD / credits
    usd: Decimal | None  # None when the provider's credit value is unknown
    per_image_amount: Decimal
    per_image_usd: Decimal | None
    confirmed: bool
    source: str
    checked: str
    notes: tuple[str, ...]
    lines: tuple[CostLine, ...]  # summed over the prompts, label by label


def _sum_lines(estimates: Sequence[Estimate]) -> tuple[CostLine, ...]:
    merged: dict[str, CostLine] = {}
    for est in estimates:
        for line in est.lines:
            seen = merged.get(line.label)
            if seen is None:
                merged[line.label] = line
                continue
            usd = None if seen.usd is None or line.usd is None else seen.usd + line.usd
            merged[line.label] = CostLine(
                line.label, seen.quantity + line.quantity, line.unit, line.unit_price, seen.amount + line.amount, usd
            )
    return tuple(merged.values())


def batch_estimate(
    catalogue: Catalogue,
    provider: str,
    request: ImageRequest,
    caps: ModelCaps | None,
    prompts: Sequence[str] | None = None,
    *,
    input_sizes: Sequence[tuple[int, int]] | None = None,
) -> BatchEstimate:
    """The batch's bill at ``provider``; raises ``InvalidRequest`` when it cannot be priced."""
    estimates = [
        catalogue.estimate(provider, request.with_(prompt=p), caps, input_sizes=input_sizes)
        for p in (prompts or [request.prompt])
    ]
    first = estimates[0]
    amount = sum((e.total.amount for e in estimates), Decimal(0))
    usd_parts = [e.total.usd for e in estimates if e.total.usd is not None]
    # One part without a dollar value (a credit of unknown worth) leaves the whole batch without one.
    usd = sum(usd_parts, Decimal(0)) if len(usd_parts) == len(estimates) else None
    return BatchEstimate(
        provider=provider,
        model=request.model,
        quality=request.quality,
        prompts=len(estimates),
        images=sum(e.images for e in estimates),
        amount=amount,
        unit=first.total.unit,
        usd=usd,
        per_image_amount=first.per_image.amount,
        per_image_usd=first.per_image.usd,
        confirmed=all(e.confirmed for e in estimates),
        source=first.source,
        checked=first.checked,
        notes=tuple(dict.fromkeys(n for e in estimates for n in e.notes)),
        lines=_sum_lines(estimates),
    )


@dataclass(frozen=True)
class CompareRow:
    provider: str
    label: str  # provider label
    model: str
    quality: str
    usd: Decimal | None
    amount: Decimal | None
    unit: str | None
    confirmed: bool
    current: bool  # the provider and quality chosen in the form
    cheapest: bool = False
    note: str = ""  # why there is no price


def compare(
    catalogue: Catalogue,
    request: ImageRequest,
    prompts: Sequence[str] | None,
    *,
    current_provider: str,
    providers: Iterable[str] | None = None,
    qualities: Sequence[str] = ("low", "medium", "high"),
    models: Mapping[str, str] | None = None,
) -> list[CompareRow]:
    """The same batch on each provider (its equivalent model) and quality; the cheapest priced row is marked."""
    rows: list[CompareRow] = []
    for name in providers or PROVIDERS:
        label = registry.label(name)
        model = (models or {}).get(name) or model_for(name, request.model)
        caps = PROVIDERS[name].MODELS[model]
        size_note = "" if validation.wire_size(request.size, caps) is not None else f"cannot make {request.size}"
        req = request.with_(model=model, resolution=request.resolution if caps.resolutions else None)
        for quality in qualities:
            current = name == current_provider and quality == request.quality
            if quality not in caps.qualities:
                rows.append(CompareRow(name, label, model, quality, None, None, None, False, current,
                                       note=f"no {quality} quality"))
                continue
            if size_note:
                rows.append(CompareRow(name, label, model, quality, None, None, None, False, current,
                                       note=size_note))
                continue
            try:
                est = batch_estimate(catalogue, name, req.with_(quality=quality), caps, prompts)
            except (InvalidRequest, ValueError, KeyError) as err:
                rows.append(CompareRow(name, label, model, quality, None, None, None, False, current,
                                       note=str(err)))
                continue
            rows.append(
                CompareRow(
                    name, label, model, quality, est.usd, est.amount, est.unit, est.confirmed, current,
                    note="" if est.usd is not None else "credit value unknown (Settings)",
                )
            )
    priced = [r.usd for r in rows if r.usd is not None]
    if priced:
        low = min(priced)
        rows = [
            CompareRow(**{**r.__dict__, "cheapest": r.usd == low}) if r.usd is not None else r for r in rows
        ]
    return rows

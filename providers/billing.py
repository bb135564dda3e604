"""What a finished job cost: the provider's own report, priced with ``prices.toml``.

OpenAI (and EvoLink where it reports them) give token usage, priced here at the
model's token rates; the aggregators report credits under a key the table names
(``billed_keys``). Nothing reported gives None, never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .price_table import Cost, ModelPrices, PriceItem, ProviderPrices, reported
from .types import ImageRequest, JobStatus

__all__ = ["billed"]


def billed(p: ProviderPrices, m: ModelPrices, request: ImageRequest, status: JobStatus) -> Cost | None:
    """Price what the provider reported for a job; None when it reported nothing."""
    raw = status.billed
    if not isinstance(raw, Mapping):
        return None
    if p.billed_from == "usage":
        usage = raw.get("usage", raw)
        return _price_usage(p, m, request, usage) if isinstance(usage, Mapping) else None
    for source in (raw, raw.get("usage")):
        if not isinstance(source, Mapping):
            continue
        for key in p.billed_keys:
            credits = reported(source.get(key))
            if credits is not None:
                return p.cost(credits, p.rate_confirmed)
    return None


def _price_usage(p: ProviderPrices, m: ModelPrices, request: ImageRequest, usage: Mapping[str, Any]) -> Cost | None:
    if m.pricing != "tokens":
        return None
    inp = reported(usage.get("input_tokens"))
    out = reported(usage.get("output_tokens"))
    if inp is None and out is None:
        return None
    in_details = usage.get("input_tokens_details") or {}
    out_details = usage.get("output_tokens_details") or {}
    text_in = reported(in_details.get("text_tokens"))
    image_in = reported(in_details.get("image_tokens"))
    if text_in is None and image_in is None:
        # No split reported: an edit's input is mostly image tokens, the dearer rate.
        whole = inp or Decimal(0)
        text_in, image_in = (Decimal(0), whole) if request.is_edit else (whole, Decimal(0))
    text_out = reported(out_details.get("text_tokens")) or Decimal(0)
    image_out = reported(out_details.get("image_tokens"))
    if image_out is None:
        image_out = (out or Decimal(0)) - text_out
    used: list[PriceItem] = []

    def cost(count: Decimal | None, item: str) -> Decimal:
        if not count:
            return Decimal(0)
        price = m.item(p.name, item)
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
    confirmed = all(u.confirmed for u in used) and p.rate_confirmed
    return p.cost(amount, confirmed)

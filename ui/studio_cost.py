"""Studio: the live cost of the whole batch, how it adds up, and the same batch on every provider.

Everything here is arithmetic over the price catalogue and a read of the
ledger: no provider is called, so it can run on every keystroke.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pandas as pd
import streamlit as st

from core.jobs.submission import Quote
from core.prompts import draft
from core.spend import costs
from core.spend.money import format_amount, format_usd
from providers import registry
from providers.errors import ProviderError
from providers.registry import PROVIDERS
from providers.types import QUALITY_WORDS, ImageRequest, ModelCaps
from ui import format as fmt
from ui import services, text


@dataclass(frozen=True)
class CostView:
    estimate: costs.BatchEstimate | None
    quote: Quote | None
    blocker: str | None  # over budget / cannot be priced against the cap


def _source(est: costs.BatchEstimate) -> str:
    src = est.source.strip()
    where = f"[{src.split('/')[2]}]({src})" if src.startswith("http") and src.count("/") >= 2 else src
    return f"Prices from {where}, checked {est.checked}" if where else f"Prices checked {est.checked}"


def _budget_line(quote: Quote) -> tuple[str | None, str | None]:
    """(a caption about the budget, a reason that blocks Generate)."""
    spend = quote.spend
    caps = spend.caps
    if caps.daily is None and caps.total is None and spend.member_left is None:
        return None, None
    total = quote.total_usd
    if total is None:
        return None, ("This batch cannot be priced in US dollars (a credit value is unknown: set it in Settings), "
                      "so it cannot be checked against your budget.")
    bits = []
    if caps.daily is not None and spend.left_today is not None:
        bits.append(f"{format_usd(spend.left_today)} left today of {format_usd(caps.daily)}")
    if caps.total is not None and spend.left_total is not None:
        bits.append(f"{format_usd(spend.left_total)} left of the {format_usd(caps.total)} total budget")
    if spend.member_left is not None and caps.member_daily is not None:  # a signed-in member's own cap
        bits.append(f"{format_usd(spend.member_left)} of your own {format_usd(caps.member_daily)} left today")
    line = "Budget: " + "; ".join(bits) + "."
    if quote.fits:
        return line, None
    scope = ("your own daily budget" if spend.member_left is not None and total > spend.member_left
             else "today's budget" if spend.left_today is not None and total > spend.left_today
             else "the total budget")
    left = {"your own daily budget": spend.member_left, "today's budget": spend.left_today}.get(
        scope, spend.left_total)
    return line, (f"Over budget: this batch is estimated at {format_usd(total)} and {scope} has "
                  f"{format_usd(left)} left. Lower the quality or the number of images, or "
                  + ("ask an owner to raise your cap." if scope == "your own daily budget" else
                     "raise the cap in Settings."))


def _lines_table(est: costs.BatchEstimate) -> pd.DataFrame:
    rows = []
    for line in est.lines:
        rows.append({
            "Item": line.label,
            "Quantity": f"{line.quantity:,.0f} {line.unit}",
            "Amount": format_amount(line.amount, est.unit),
            "USD": format_usd(line.usd),
        })
    return pd.DataFrame(rows)


def _compare_table(request: ImageRequest, prompts: tuple[str, ...], provider: str) -> str | None:
    """The same batch on every provider and quality, as a Markdown table.

    Markdown, not ``st.table``: a data table makes a first-time visitor's browser fetch a dozen more scripts
    (Arrow, the pandas styler, dates) before the Studio's first screen is ready (issue 17). Every cell goes
    through ``text.md`` (a "$" would start maths, a "|" a new cell); the marks are added after.
    """
    rows = costs.compare(services.catalogue(), request, prompts, current_provider=provider)
    if not rows:
        return None
    qualities = list(dict.fromkeys(r.quality for r in rows))
    table: dict[str, dict[str, str]] = {}
    for r in rows:
        if r.amount is None or r.unit is None:  # not offered there (no such quality, size): say why
            cell = text.md(r.note or "—")
        elif r.usd is None:  # a credit with no known dollar value: say the credits, never a guessed dollar
            cell = text.md(f"{format_amount(r.amount, r.unit)} (value unknown)")
        else:
            cell = text.md(format_usd(r.usd) + ("" if r.confirmed else " ?"))
            if r.cheapest:
                cell = f":green-background[★\u00a0{cell}]"  # the star stays with its price
        if r.current:
            cell = f"**● {cell}**"
        # The row says the model only where it is not the one chosen in the form.
        name = r.label if r.model == request.model else f"{r.label} ({PROVIDERS[r.provider].MODELS[r.model].label})"
        table.setdefault(text.md(name), {})[r.quality] = cell
    head = "| | " + " | ".join(text.md(QUALITY_WORDS.get(q, q)) for q in qualities) + " |"
    rule = "|---" * (len(qualities) + 1) + "|"
    body = [f"| {name} | " + " | ".join(cells.get(q, "—") for q in qualities) + " |" for name, cells in table.items()]
    return "\n".join([head, rule, *body])


def render(
    provider: str, caps: ModelCaps, request: ImageRequest, batch: draft.Batch, endpoint: str,
    input_sizes: tuple[tuple[int, int], ...] = (),
) -> CostView:
    who = registry.label(provider)
    prompts = batch.prompts or (request.prompt,)
    try:
        est = costs.batch_estimate(services.catalogue(), provider, request, caps, prompts,
                                   input_sizes=input_sizes or None)
    except (ProviderError, ValueError, KeyError) as err:
        st.warning(f"No price is known for this combination: {text.md(err)}", icon=":material/money_off:")
        return CostView(None, None, f"This request cannot be priced: {err}")
    # The runner's Quote, built here from the estimate and the ledger: runner.quote would construct a
    # provider client (and start the emulator) on every keystroke, and the figures are the same.
    quote = Quote(jobs=est.prompts, images=est.images, estimates=(), total_usd=est.usd,
                  spend=services.store().spend(endpoint, member=services.member_id()))

    c1, c2 = st.columns(2)  # "≈ $0.0527" per image was cut off in a narrower second column
    unconfirmed = "" if est.confirmed else " (unconfirmed)"
    # A credit with no known dollar value is said in credits, never as a guessed dollar figure.
    c1.metric(
        "Estimated total",
        format_usd(est.usd) if est.usd is not None else format_amount(est.amount, est.unit),
        help=f"The whole batch: {est.images} image{'s' if est.images != 1 else ''} from {est.prompts} "
        f"prompt{'s' if est.prompts != 1 else ''} on {who}{unconfirmed}.",
    )
    # The total's share: per image × images is the total beside it (prompt text and inputs included).
    per = (fmt.per_image(est.usd, est.images) if est.usd is not None
           else format_amount(est.amount / max(1, est.images), est.unit))
    c2.metric(
        "Per image",
        per,
        help="The total divided by the number of images: prompt text and input images, billed per request, "
        "are shared out. ≈ marks a share rounded to four decimals.",
    )
    what = [f"{est.images} image{'s' if est.images != 1 else ''}"]
    if est.prompts > 1:
        what[0] += f" from {est.prompts} prompts"
    if est.unit != "USD":
        what.append(f"{format_amount(est.amount.quantize(Decimal('0.01')).normalize(), est.unit)} at {who}")
    badge = " · :orange-badge[unconfirmed price]" if not est.confirmed else ""
    st.caption(f"{' · '.join(what)} · {_source(est)}{badge}")
    if est.usd is None and est.unit != "USD":
        st.caption(f":orange-badge[credit value unknown] {who} does not publish what a credit costs in dollars. "
                   "Set what you pay per credit in Settings to see this in dollars.")

    budget_line, blocker = (None, None) if quote is None else _budget_line(quote)
    if budget_line:
        st.caption(budget_line)

    return CostView(est, quote, blocker)


def details(provider: str, request: ImageRequest, batch: draft.Batch, view: CostView) -> None:
    """The breakdown line by line, and the same batch on every provider and quality."""
    est = view.estimate
    if est is None:
        return
    breakdown = st.expander("How it adds up", key="studio_breakdown_open", on_change="rerun")
    if breakdown.open:  # collapsed: no data grid for the browser to build on every run (issue 17)
        with breakdown:
            st.dataframe(_lines_table(est), hide_index=True, width="stretch")
            for note in est.notes:
                st.caption(f"• {text.md(note)}")
    table = _compare_table(request, batch.prompts or (request.prompt,), provider)
    if table is not None:
        st.markdown("**The same batch elsewhere**")
        # A table wraps its cells to the form's column; a data grid there would scroll sideways.
        st.container(key="studio_compare_table").markdown(table)  # sized by ui/studio_form's style
        st.caption("★ cheapest · ● your choice · ? price not confirmed by the provider. "
                   "Credits are converted at each provider's credit value.")

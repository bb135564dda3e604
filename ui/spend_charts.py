"""The Spend page's Altair charts, one function per chart, fed by ``core.history.analytics`` frames.

Money reads as everywhere else in the app: tooltips show text made by
``format_usd``, and axis ticks follow the same rule (``vega_usd``).
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from core.spend.money import format_usd, vega_usd
from providers import registry
from providers.registry import PROVIDERS
from providers.types import QUALITY_ORDER, QUALITY_WORDS

# One colour per provider on every chart, so a provider is recognised at a glance.
_PALETTE = ["#4c6ef5", "#12b886", "#f59f00", "#e64980", "#7950f2", "#868e96"]
# Jobs deleted from the history keep their ledger row, under "(deleted)": it sorts last.
# Qualities as the Studio names them ("Medium", not "medium"), in the Studio's order.
_QUALITIES = [*(QUALITY_WORDS.get(q, q) for q in QUALITY_ORDER), "(deleted)"]


def _worded(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(quality=df["quality"].map(lambda q: QUALITY_WORDS.get(q, q)))


# Every chart lists providers in the registry's order (then anything else, e.g. "(deleted)"), never alphabetically.
_PROVIDER_ORDER = [registry.label(p) for p in PROVIDERS]


def _providers(df: pd.DataFrame) -> alt.Scale:
    """Providers with data only (no legend entries for absent ones), each in its own fixed colour."""
    labels = [registry.label(p) for p in PROVIDERS]
    colour = dict(zip(labels, _PALETTE, strict=False))
    present = [p for p in labels if p in set(df["provider"])] + sorted(set(df["provider"]) - set(labels))
    return alt.Scale(domain=present, range=[colour.get(p, _PALETTE[-1]) for p in present])


def _usd_axis(title: str = "USD") -> alt.Axis:
    return alt.Axis(title=title, labelExpr=vega_usd(), labelFlush=False)


def _with_text(df: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """``df`` with a ``<column>_text`` beside each money column, written by the app's one formatter."""
    out = df.copy()
    for column in columns:
        out[f"{column}_text"] = [format_usd(float(v)) for v in out[column]]
    return out


def spend_per_day(df: pd.DataFrame) -> alt.Chart:
    # One row per day and provider (analytics.spend_per_day), so the tooltip's text is that bar's own.
    chart: alt.Chart = (
        alt.Chart(_with_text(df, "usd"))
        .mark_bar()
        .encode(
            # Ordinal days: one labelled band per day (a time axis puts ticks between the bars).
            x=alt.X("yearmonthdate(day):O", title=None, axis=alt.Axis(format="%b %d", labelAngle=0)),
            y=alt.Y("sum(usd):Q", axis=_usd_axis(), stack=True),
            color=alt.Color("provider:N", scale=_providers(df), legend=alt.Legend(title=None, orient="top")),
            tooltip=[
                alt.Tooltip("yearmonthdate(day):T", title="Day", format="%Y-%m-%d"),
                alt.Tooltip("provider:N", title="Provider"),
                alt.Tooltip("usd_text:N", title="USD"),
                alt.Tooltip("sum(jobs):Q", title="Jobs"),
            ],
        )
        .properties(height=280)
    )
    return chart


def cost_by_quality(df: pd.DataFrame) -> alt.Chart:
    df = _worded(df)
    order = [q for q in _QUALITIES if q in set(df["quality"])] + sorted(set(df["quality"]) - set(_QUALITIES))
    # Only providers with data get a slot, in the app's provider order (no empty gaps between bars).
    present = [label for label in map(registry.label, PROVIDERS) if label in set(df["provider"])]
    chart: alt.Chart = (
        alt.Chart(_with_text(df, "usd_per_job", "usd"))
        .mark_bar()
        .encode(
            x=alt.X("quality:N", sort=order, title=None, axis=alt.Axis(labelAngle=0)),
            xOffset=alt.XOffset("provider:N", scale=alt.Scale(domain=present)),
            y=alt.Y("usd_per_job:Q", axis=_usd_axis("USD per image")),
            color=alt.Color("provider:N", scale=_providers(df), legend=alt.Legend(title=None, orient="top")),
            tooltip=[
                alt.Tooltip("quality:N", title="Quality"),
                alt.Tooltip("provider:N", title="Provider"),
                alt.Tooltip("usd_per_job_text:N", title="Per image"),
                alt.Tooltip("usd_text:N", title="Total"),
                alt.Tooltip("jobs:Q", title="Jobs"),
            ],
        )
        .properties(height=280)
    )
    return chart


def estimate_vs_billed(df: pd.DataFrame) -> alt.Chart:
    long = df.melt(id_vars=["provider", "jobs"], value_vars=["estimated", "billed"], var_name="what",
                   value_name="usd")
    long["what"] = long["what"].map({"estimated": "Estimated", "billed": "Billed"})
    chart: alt.Chart = (
        alt.Chart(_with_text(long, "usd"))
        .mark_bar()
        .encode(
            x=alt.X("provider:N", title=None, sort=_PROVIDER_ORDER, axis=alt.Axis(labelAngle=0)),
            xOffset=alt.XOffset("what:N", sort=["Estimated", "Billed"]),
            y=alt.Y("usd:Q", axis=_usd_axis()),
            color=alt.Color("what:N", sort=["Estimated", "Billed"],
                            scale=alt.Scale(domain=["Estimated", "Billed"], range=["#adb5bd", "#4c6ef5"]),
                            legend=alt.Legend(title=None, orient="top")),
            tooltip=[
                alt.Tooltip("provider:N", title="Provider"),
                alt.Tooltip("what:N", title=""),
                alt.Tooltip("usd_text:N", title="USD"),
                alt.Tooltip("jobs:Q", title="Jobs billed"),
            ],
        )
        .properties(height=280)
    )
    return chart


def latency(df: pd.DataFrame) -> alt.LayerChart:
    """p50 as a bar, p95 as a tick above it, per provider and quality."""
    df = _worded(df)
    order = [q for q in _QUALITIES if q in set(df["quality"])]
    base = alt.Chart(df).encode(
        x=alt.X("provider:N", title=None, sort=_PROVIDER_ORDER, axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("quality:N", sort=order),
        tooltip=[
            alt.Tooltip("provider:N", title="Provider"),
            alt.Tooltip("quality:N", title="Quality"),
            alt.Tooltip("p50:Q", title="Median (p50) s", format=".1f"),
            alt.Tooltip("p95:Q", title="Slow (p95) s", format=".1f"),
            alt.Tooltip("jobs:Q", title="Jobs"),
        ],
    )
    bars = base.mark_bar(opacity=0.85).encode(
        y=alt.Y("p50:Q", title="Seconds (bar: median, line: p95)"),
        color=alt.Color("quality:N", sort=order, scale=alt.Scale(scheme="blues"),
                        legend=alt.Legend(title=None, orient="top")),
    )
    rules = base.mark_rule(color="#495057").encode(y="p50:Q", y2="p95:Q")
    ticks = base.mark_tick(color="#495057", thickness=2, size=10).encode(y="p95:Q")
    layered: alt.LayerChart = (bars + rules + ticks).properties(height=280)
    return layered


def failures(df: pd.DataFrame) -> alt.Chart:
    order = df.groupby("kind")["jobs"].sum().sort_values(ascending=False).index.tolist()
    chart: alt.Chart = (
        alt.Chart(df)
        .mark_bar()
        .encode(
            y=alt.Y("kind:N", sort=order, title=None),
            x=alt.X("sum(jobs):Q", title="Jobs", axis=alt.Axis(tickMinStep=1, format="d")),
            # Legend on the right: a top legend squeezes a horizontal bar chart to a sliver in Streamlit.
            color=alt.Color("provider:N", scale=_providers(df), legend=alt.Legend(title=None)),
            tooltip=[
                alt.Tooltip("kind:N", title="What happened"),
                alt.Tooltip("provider:N", title="Provider"),
                alt.Tooltip("sum(jobs):Q", title="Jobs"),
            ],
        )
        .properties(height=40 * len(order))
    )
    return chart

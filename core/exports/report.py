"""A stakeholder report: one self-contained HTML file of results, for people without the app.

Images are inlined as downscaled JPEG data URIs (long side 512 px) so the file
opens anywhere, offline, and stays small enough to mail. Every text is escaped (and
redacted), and a Content-Security-Policy lets the file load nothing from anywhere.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

import clock
from core.history.views import ImageView, JobView
from core.jobs.lifecycle import STATE_WORDS
from core.review.results import Results, candidate_words
from core.spend.money import format_usd
from providers import imagegate, registry
from providers.errors import InvalidRequest
from providers.redact import redact

__all__ = ["REPORT_LONG_SIDE", "GridLayout", "ReportItem", "build_report", "review_section"]

REPORT_LONG_SIDE = 512

@dataclass(frozen=True)
class ReportItem:
    job: JobView
    image: ImageView | None
    heading: str = ""  # e.g. the grid cell's label
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GridLayout:
    row_title: str
    col_title: str
    row_labels: tuple[str, ...]
    col_labels: tuple[str, ...]
    cells: Mapping[tuple[int, int], int]  # (row, col) -> index into the items


def _esc(value: object) -> str:
    """Every text in the report: HTML-escaped, and with no key in it."""
    return html.escape(redact("" if value is None else str(value)) or "", quote=True)


# The report holds only its own inline pictures and styles: nothing in it may load anything from anywhere.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def _data_uri(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        imagegate.check(path.read_bytes(), "The image")  # sized from its header before it is decoded
        with Image.open(path) as img:
            img.load()
            if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
                rgba = img.convert("RGBA")
                flat = Image.new("RGB", rgba.size, (255, 255, 255))
                flat.paste(rgba, mask=rgba.getchannel("A"))
            else:
                flat = img.convert("RGB")
            flat.thumbnail((REPORT_LONG_SIDE, REPORT_LONG_SIDE), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            flat.save(out, format="JPEG", quality=80, optimize=True, progressive=True)
    except (FileNotFoundError, UnidentifiedImageError, OSError, ValueError, InvalidRequest,
            Image.DecompressionBombError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _stars(rating: int | None) -> str:
    if not rating:
        return '<span class="muted">not rated</span>'
    return f'<span class="stars" title="{rating} of 5">' + "★" * rating + "☆" * (5 - rating) + "</span>"


def _cost(job: JobView) -> tuple[Decimal | None, str]:
    if job.billed is not None and job.billed.usd is not None and not job.billed.estimated:
        return job.billed.usd, "billed"
    if job.billed is not None and job.billed.usd is not None:
        return job.billed.usd, "estimate (no bill reported)"
    return (job.estimate.usd if job.estimate else None), "estimate"


def _seconds(job: JobView) -> str:
    if job.submitted_at is None or job.finished_at is None:
        return "—"
    s = (job.finished_at - job.submitted_at).total_seconds()
    return f"{s:.1f} s" if s < 60 else f"{int(s // 60)} min {int(s % 60):02d} s"


def _picture(item: ReportItem, cache: dict[str, str | None]) -> str:
    image = item.image
    if image is None:
        status = STATE_WORDS.get(item.job.status, item.job.status)
        why = _esc(item.job.error_message or "")
        return f'<div class="noimg"><strong>{_esc(status)}</strong><br><span>{why}</span></div>'
    key = image.sha256
    if key not in cache:
        cache[key] = _data_uri(image.path) or _data_uri(image.thumb_path)
    uri = cache[key]
    if uri is None:
        return '<div class="noimg">Image file missing</div>'
    alt = _esc(item.job.prompt[:120])
    return f'<img src="{uri}" alt="{alt}" loading="lazy">'


def _rating(item: ReportItem) -> int | None:
    if item.image is not None and item.image.rating is not None:
        return item.image.rating
    return item.job.rating


def _card(item: ReportItem, cache: dict[str, str | None], *, compact: bool = False) -> str:
    job = item.job
    winner = bool(item.image and item.image.winner)
    cost, how = _cost(job)
    provider = registry.label(job.provider)
    model = registry.model_label(job.model, job.provider)
    sim = ' <span class="tag sim">simulated</span>' if job.endpoint == "emulator" else ""
    badge = '<div class="winner">★ Winner</div>' if winner else ""
    head = f"<h3>{_esc(item.heading)}</h3>" if item.heading and not compact else ""
    facts = (
        f'<div class="facts"><span class="cost">{_esc(format_usd(cost))}</span> <span class="muted">{_esc(how)}</span>'
        f" · {_esc(_seconds(job))} · {_stars(_rating(item))}</div>"
    )
    who = f'<div class="who">{_esc(provider)} · {_esc(model)} · {_esc(job.quality)} · {_esc(job.size)}{sim}</div>'
    body = ""
    if not compact:
        first = ("provider", "model", "quality", "size")
        ordered = [k for k in first if k in item.params] + [k for k in item.params if k not in first]
        params = "".join(
            f"<tr><th>{_esc(k.replace('_', ' '))}</th><td>{_esc(item.params[k])}</td></tr>"
            for k in ordered
            if item.params[k] not in (None, "", [], {}) and k not in ("prompt", "images", "mask")
        )
        body = (
            f'<blockquote>{_esc(job.prompt)}</blockquote>'
            + (f'<table class="params">{params}</table>' if params else "")
        )
    classes = "card winnercard" if winner else "card"
    return f'<div class="{classes}">{badge}{_picture(item, cache)}{head}{who}{facts}{body}</div>'


_CSS = """
*{box-sizing:border-box}body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,
sans-serif;margin:0;background:#f6f7f9;color:#212529;line-height:1.45}
header{background:#fff;border-bottom:1px solid #e3e6ea;padding:28px 40px}
h1{margin:0 0 4px;font-size:26px}h2{font-size:19px;margin:32px 0 12px}h3{font-size:15px;margin:10px 0 2px}
main{padding:8px 40px 40px;max-width:1500px}
.sub{color:#6c757d}.summary{display:flex;gap:14px;flex-wrap:wrap;margin-top:18px}
.kpi{background:#f1f3f6;border-radius:10px;padding:10px 16px;min-width:130px}
.kpi b{display:block;font-size:20px}.kpi span{color:#6c757d;font-size:13px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:18px}
.card{background:#fff;border:1px solid #e3e6ea;border-radius:12px;padding:12px;position:relative}
.card img{width:100%;height:auto;border-radius:8px;display:block;background:#f1f3f6}
.winnercard{border:3px solid #d69e2e}
.winner{position:absolute;top:18px;left:18px;background:#d69e2e;color:#fff;font-weight:600;
padding:3px 10px;border-radius:999px;font-size:13px}
.noimg{aspect-ratio:1/1;display:flex;flex-direction:column;align-items:center;justify-content:center;
text-align:center;background:#f1f3f6;border-radius:8px;color:#6c757d;padding:16px;font-size:14px}
.noimg strong{color:#c0392b}
.who{font-size:13px;color:#495057;margin-top:8px}.facts{font-size:14px;margin-top:2px}
.cost{font-weight:600}.muted{color:#6c757d;font-size:12px}.stars{color:#d69e2e;letter-spacing:1px}
blockquote{margin:10px 0 6px;padding:8px 12px;background:#f6f7f9;border-left:3px solid #ced4da;
font-size:14px;white-space:pre-wrap;word-break:break-word}
table.params{font-size:12px;border-collapse:collapse;width:100%}
table.params th{text-align:left;color:#6c757d;font-weight:500;padding:1px 8px 1px 0;white-space:nowrap}
table.params td{padding:1px 0;word-break:break-word}
.tag{font-size:11px;padding:1px 7px;border-radius:999px;margin-left:4px}.sim{background:#fff3cd;color:#856404}
table.grid{border-collapse:separate;border-spacing:12px}table.grid th{font-size:14px;text-align:left;
vertical-align:bottom;color:#495057}table.grid th.row{vertical-align:top;max-width:220px;font-weight:500;
white-space:pre-wrap}table.grid td{vertical-align:top;width:300px}
.axis{color:#6c757d;font-size:13px;font-weight:400}
footer{color:#6c757d;font-size:12px;padding:0 40px 32px}
"""


def build_report(
    title: str,
    items: Sequence[ReportItem],
    *,
    subtitle: str = "",
    grid: GridLayout | None = None,
    generated_at: datetime | None = None,
    reviews: Sequence[tuple[str, Results]] = (),
) -> str:
    """The whole report as one HTML document (``reviews``: blind reviews of these results, name and results)."""
    cache: dict[str, str | None] = {}
    when = (generated_at or clock.local_now()).strftime("%Y-%m-%d %H:%M")
    costs = [c for c, _ in (_cost(i.job) for i in items) if c is not None]
    total = sum(costs, Decimal(0))
    made = sum(1 for i in items if i.image is not None)
    providers = sorted({registry.label(i.job.provider) for i in items})
    simulated = any(i.job.endpoint == "emulator" for i in items)
    winner = next((i for i in items if i.image is not None and i.image.winner), None)
    all_simulated = bool(items) and all(i.job.endpoint == "emulator" for i in items)
    cost_label = "simulated cost" if all_simulated else "total cost (incl. simulated)" if simulated else "total cost"
    kpis = [
        (str(made), "images"),
        (format_usd(total), cost_label),
        (", ".join(providers) or "—", "providers"),
    ]
    if winner is not None:
        kpis.append((winner.heading or registry.label(winner.job.provider), "winner"))
    summary = "".join(f'<div class="kpi"><b>{_esc(v)}</b><span>{_esc(k)}</span></div>' for v, k in kpis)
    note = (
        '<p class="sub">Results marked <span class="tag sim">simulated</span> came from the built-in '
        "emulator: stand-in pictures, nothing billed.</p>"
        if simulated
        else ""
    )
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        "<meta name='referrer' content='no-referrer'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{_esc(title)}</h1><div class='sub'>{_esc(subtitle)}{' · ' if subtitle else ''}"
        f"{_esc(when)}</div><div class='summary'>{summary}</div>{note}</header><main>",
    ]
    parts.extend(review_section(name, res) for name, res in reviews)
    if grid is not None and items:
        parts.append(_grid_table(grid, items, cache))
        parts.append("<h2>Details</h2>")
    parts.append('<div class="cards">')
    parts.extend(_card(item, cache) for item in items)
    parts.append("</div></main>")
    parts.append("<footer>Made with Image Studio. Costs are in USD; an estimate is shown where the provider "
                 "reported no bill.</footer></body></html>")
    return "".join(parts)


def _grid_table(grid: GridLayout, items: Sequence[ReportItem], cache: dict[str, str | None]) -> str:
    has_rows = any(grid.row_labels)
    head = "<tr>" + (f'<th class="axis">{_esc(grid.row_title)} ↓ {_esc(grid.col_title)} →</th>' if has_rows else "")
    head += "".join(f"<th>{_esc(c)}</th>" for c in grid.col_labels) + "</tr>"
    body = []
    for r, row_label in enumerate(grid.row_labels):
        cells = []
        for c in range(len(grid.col_labels)):
            index = grid.cells.get((r, c))
            cells.append("<td>" + ("" if index is None else _card(items[index], cache, compact=True)) + "</td>")
        row_head = f'<th class="row">{_esc(row_label)}</th>' if has_rows else ""
        body.append(f"<tr>{row_head}{''.join(cells)}</tr>")
    return f'<h2>At a glance</h2><table class="grid">{head}{"".join(body)}</table>'


def review_section(name: str, res: Results) -> str:
    """A blind review's verdict: per candidate its rating, win rate, votes and cost per winning image."""
    head = ("<tr><th>Candidate</th><th>Rating</th><th>95% interval</th><th>Win rate</th><th>Votes</th>"
            "<th>Price per image</th><th>Cost per winning image</th></tr>")
    rows = []
    for c in res.candidates:
        best = ' <span class="tag">best value</span>' if c.best_value else ""
        rows.append(
            f"<tr><td>{_esc(candidate_words(c))}{best}</td><td>{c.score:.0f} ± {(c.high - c.low) / 2:.0f}</td>"
            f"<td>{c.low:.0f}–{c.high:.0f}</td><td>{_esc(f'{c.win_rate:.0%}' if c.votes else '–')}</td>"
            f"<td>{c.votes}</td><td>{_esc(format_usd(c.price) if c.price is not None else 'unknown')}</td>"
            f"<td>{_esc(format_usd(c.cost_per_win) if c.cost_per_win is not None else 'no wins')}</td></tr>"
        )
    voters = f"{res.votes} votes from {res.voters} voter{'s' if res.voters != 1 else ''}"
    return (f'<h2>Blind review: {_esc(name)}</h2><p class="sub">{_esc(voters)}. Rating: Bradley–Terry on the Elo '
            "scale, ± half its 95% interval; “can't tell” counts half a win. Cost per winning image: price per "
            'image ÷ win rate.</p><table class="grid">' + head + "".join(rows) + "</table>")

"""Small wording helpers shared by the History and Compare pages (labels, costs, times, stars)."""

from __future__ import annotations

import functools
import io
from datetime import datetime
from decimal import Decimal

import clock
from core.history.views import ImageView, JobView
from core.spend.money import format_usd

# The words for each state are core.jobs.lifecycle.STATE_WORDS; this is only the page's icon for each.
# Material icons rather than emoji: they render the same in every browser and font setup.
STATUS_ICON: dict[str, str] = {
    "queued": ":material/hourglass_top:",
    "submitting": ":material/upload:",
    "submitted": ":material/hourglass_top:",
    "running": ":material/hourglass_top:",
    "succeeded": ":material/check_circle:",
    "failed": ":material/error:",
    "canceled": ":material/cancel:",
    "unknown": ":material/help:",
}


def short(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def stars(rating: int | None) -> str:
    return "★" * rating + "☆" * (5 - rating) if rating else ""


def rating_of(job: JobView, image: ImageView | None) -> int | None:
    if image is not None and image.rating is not None:
        return image.rating
    return job.rating


def cost_text(job: JobView) -> str:
    """The one cost a tile shows: billed when reported, else the estimate, said as such."""
    if job.billed is not None and not job.billed.estimated:
        if job.billed.usd == 0:
            return "not charged"
        return format_usd(job.billed.usd)
    if job.billed is not None and job.billed.usd is not None:
        return f"{format_usd(job.billed.usd)} est."
    if job.estimate is not None and job.estimate.usd is not None:
        return f"{format_usd(job.estimate.usd)} est."
    return "cost unknown"


def cost_value(job: JobView) -> Decimal | None:
    if job.billed is not None and job.billed.usd is not None:
        return job.billed.usd
    return job.estimate.usd if job.estimate else None


def took(job: JobView) -> float | None:
    if job.submitted_at is None or job.finished_at is None:
        return None
    return max(0.0, (job.finished_at - job.submitted_at).total_seconds())


def when(moment: datetime | None, now: datetime | None = None) -> str:
    """"3 min ago", "today 14:02", "yesterday 09:15", "12 Nov 14:02", "12 Nov 2025" (local time)."""
    if moment is None:
        return "—"
    local = moment.astimezone()
    now_local = (now or clock.local_now()).astimezone()
    seconds = (now_local - local).total_seconds()
    if 0 <= seconds < 60:
        return "just now"
    if 0 <= seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    days = (now_local.date() - local.date()).days
    if days == 0:
        return f"today {local:%H:%M}"
    if days == 1:
        return f"yesterday {local:%H:%M}"
    if local.year == now_local.year:
        return f"{local.day} {local:%b %H:%M}"
    return f"{local.day} {local:%b %Y}"


def stamp(moment: datetime | None) -> str:
    return "—" if moment is None else f"{moment.astimezone():%Y-%m-%d %H:%M:%S}"


_PLACEHOLDER = {
    # status: (background, mark colour, mark)
    "failed": ((253, 236, 234), (192, 57, 43), "!"),
    "unknown": ((255, 243, 205), (176, 122, 0), "?"),
    "canceled": ((238, 240, 243), (108, 117, 125), "×"),
}


@functools.lru_cache(maxsize=16)
def placeholder(status: str, width: int = 384, height: int = 384) -> bytes:
    """A soft square standing in for a job with no image, so a gallery row keeps its rhythm."""
    from PIL import Image, ImageDraw, ImageFont

    bg, ink, mark = _PLACEHOLDER.get(status, ((238, 240, 243), (108, 117, 125), "…"))
    img = Image.new("RGB", (width, height), bg)
    draw = ImageDraw.Draw(img)
    r = min(width, height) // 6
    cx, cy = width // 2, height // 2
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=ink, width=max(3, r // 8))
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont
    try:
        font = ImageFont.truetype("DejaVuSans-Bold.ttf", int(r * 1.2))
    except OSError:
        font = ImageFont.load_default(size=int(r * 1.2))
    draw.text((cx, cy), mark, fill=ink, font=font, anchor="mm")
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()

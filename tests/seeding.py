"""Seed a history store with realistic jobs backed by real (small) image files.

``seed_jobs`` goes through the store's own API (``create_run`` then ``finish``),
so runs, jobs, images, thumbnails and the ledger are exactly what the app
writes; a few hundred take about a second. ``bulk_seed`` writes thousands of
rows straight into the tables in one transaction, sharing a handful of image
files, for the "stays fast with 10,000 jobs" tests (then ``budget.recount``
makes the ledger's totals true; the search index follows by its triggers).

Jobs vary by index: provider, quality and aspect cycle; every 4th is on the
emulator; every 10th (offset 7) failed; every 25th (offset 11) was canceled;
every 7th is rated. Jobs are spaced ``spacing`` apart ending at ``end``, so
the last one seeded is the newest.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from PIL import Image, ImageDraw

import clock
from core import db
from core.history.files import ImageInfo
from core.history.store import Store
from core.history.views import Billing, JobError, Money, NewJob
from core.jobs.claims import JobClaims
from core.spend import budget
from core.spend.money import usd_to_nanos
from providers.registry import PROVIDERS
from providers.types import ImageRequest

PROVIDER_NAMES = tuple(PROVIDERS)
QUALITIES = ("low", "medium", "high")
SIZES = ("1:1", "3:2", "2:3")
PROMPTS = (
    "A lighthouse on a cliff at dawn, watercolor",
    "Product shot of a ceramic mug on oak, soft light",
    "Isometric city block with tiny people, pastel",
    "Portrait of a red fox in autumn leaves",
    "Minimal poster: 'Spring Design Festival', bold type",
    "봄 축제 포스터, 벚꽃과 한글 타이포그래피",
    "A cozy reading nook with rain on the window",
    "Logo concept for a coffee roaster, flat vector",
)
ERROR_KINDS = (
    ("moderation", "The request was blocked by the provider's safety system."),
    ("timeout", "The provider did not finish the job in time."),
    ("job_failed", "The provider reported that the job failed."),
)
PRICE = {"low": Decimal("0.011"), "medium": Decimal("0.042"), "high": Decimal("0.167")}
COLOURS = ((231, 111, 81), (42, 157, 143), (233, 196, 106), (38, 70, 83), (244, 162, 97), (106, 76, 147))


def make_image(i: int, size: tuple[int, int] = (96, 96), fmt: str = "PNG") -> bytes:
    """A small, distinct picture: a two-colour diagonal with a number."""
    a, b = COLOURS[i % len(COLOURS)], COLOURS[(i + 2) % len(COLOURS)]
    img = Image.new("RGB", size, a)
    draw = ImageDraw.Draw(img)
    w, h = size
    draw.polygon([(0, h), (w, 0), (w, h)], fill=b)
    draw.text((8, 8), str(i), fill=(255, 255, 255))
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


@dataclass
class Seeded:
    store: Store
    job_ids: list[str] = field(default_factory=list)  # in seeding order: oldest first
    images: list[ImageInfo] = field(default_factory=list)

    @property
    def newest_first(self) -> list[str]:
        return list(reversed(self.job_ids))


def _kind(i: int) -> str:
    if i % 25 == 11:
        return "canceled"
    if i % 10 == 7:
        return "failed"
    return "succeeded"


def _attrs(i: int) -> dict:
    provider = PROVIDER_NAMES[i % len(PROVIDER_NAMES)]
    quality = QUALITIES[i % len(QUALITIES)]
    return {
        "provider": provider,
        "model": PROVIDERS[provider].default_model,
        "quality": quality,
        "size": SIZES[(i // 3) % len(SIZES)],
        "endpoint": "emulator" if i % 4 == 3 else "live",
        "prompt": PROMPTS[i % len(PROMPTS)],
        "status": _kind(i),
        "estimate": PRICE[quality],
        "rating": (i % 5) + 1 if i % 7 == 0 else None,
        "latency": 5.0 + (i % 9) * 2.5 + (10.0 if provider == "coretoday" else 0.0),
    }


def seed_jobs(
    store: Store,
    count: int = 300,
    *,
    end: datetime | None = None,
    spacing: timedelta = timedelta(minutes=37),
    distinct_images: int = 6,
    experiment_id: str | None = None,
    start_index: int = 0,
    image_size: tuple[int, int] = (96, 96),
) -> Seeded:
    """``count`` finished jobs through the store API, sharing ``distinct_images`` image files."""
    end = end or clock.now()
    seeded = Seeded(store)
    seeded.images = [store.files.put(make_image(k, image_size), "png") for k in range(distinct_images)]
    timings: list[dict] = []
    for n in range(count):
        i = start_index + n
        a = _attrs(i)
        queued = end - spacing * (count - 1 - n)
        request = ImageRequest(prompt=a["prompt"], model=a["model"], size=a["size"], quality=a["quality"])
        _, (job_id,) = store.create_run(
            provider=a["provider"],
            endpoint=a["endpoint"],
            request=request,
            jobs=[NewJob(prompt=a["prompt"], n=1, quality=a["quality"], size=a["size"],
                         estimate=Money(usd=a["estimate"], amount=a["estimate"], unit="USD"))],
            experiment_id=experiment_id,
            now=queued,
        )
        finished = queued + timedelta(seconds=a["latency"] + 1)
        if a["status"] == "succeeded":
            billing = (
                Billing("billed", usd=a["estimate"] * Decimal("0.96"), amount=a["estimate"], unit="USD")
                if a["provider"] == "openai"
                else Billing("estimated")
            )
            JobClaims(store.engine).finish(job_id, None, status="succeeded", billing=billing,
                                           images=[(seeded.images[i % distinct_images], None)], now=finished)
        elif a["status"] == "failed":
            kind, message = ERROR_KINDS[i % len(ERROR_KINDS)]
            JobClaims(store.engine).finish(job_id, None, status="failed", billing=Billing("released"),
                                           error=JobError(kind, message, f"{kind}: seeded failure"), now=finished)
        else:
            JobClaims(store.engine).finish(job_id, None, status="canceled", billing=Billing("released"),
                                           error=JobError("canceled", "Canceled before it was sent."), now=finished)
        if a["rating"] is not None and a["status"] == "succeeded":
            store.set_rating(job_id, a["rating"], idx=0)
        timings.append({"jid": job_id, "sent": queued + timedelta(seconds=1)})
        seeded.job_ids.append(job_id)
    with db.write(store.engine) as conn:
        conn.execute(
            db.jobs.update().where(db.jobs.c.id == sa.bindparam("jid")).values(submitted_at=sa.bindparam("sent")),
            timings,
        )
    return seeded


def bulk_seed(
    store: Store,
    count: int = 10_000,
    *,
    end: datetime | None = None,
    spacing: timedelta = timedelta(minutes=3),
    distinct_images: int = 8,
) -> Seeded:
    """``count`` finished jobs written with bulk inserts in one transaction (seconds for 10,000)."""
    end = end or clock.now()
    seeded = Seeded(store)
    seeded.images = [store.files.put(make_image(k), "png") for k in range(distinct_images)]
    runs, jobs, links, ledger = [], [], [], []
    for i in range(count):
        a = _attrs(i)
        queued = end - spacing * (count - 1 - i)
        sent = queued + timedelta(seconds=1)
        finished = sent + timedelta(seconds=a["latency"])
        run_id, job_id = uuid.uuid4().hex, uuid.uuid4().hex
        ok = a["status"] == "succeeded"
        nanos = usd_to_nanos(a["estimate"], round_up=True)
        runs.append({
            "id": run_id, "created_at": queued, "kind": "generate", "provider": a["provider"], "model": a["model"],
            "endpoint": a["endpoint"], "prompt": a["prompt"], "template": None, "variables": None,
            "params": {"prompt": a["prompt"], "model": a["model"], "size": a["size"], "quality": a["quality"],
                       "n": 1, "output_format": "png"},
            "n": 1, "label": None, "experiment_id": None, "parent_job_id": None,
        })
        kind, message = ERROR_KINDS[i % len(ERROR_KINDS)] if a["status"] == "failed" else (None, None)
        if a["status"] == "canceled":
            kind, message = "canceled", "Canceled before it was sent."
        jobs.append({
            "id": job_id, "run_id": run_id, "seq": 0, "provider": a["provider"], "model": a["model"],
            "quality": a["quality"], "size": a["size"], "endpoint": a["endpoint"], "prompt": a["prompt"],
            "variables": None, "n": 1, "status": a["status"], "provider_job_id": f"seed-{i}",
            "idempotency_key": f"imagestudio-{job_id}", "progress": 100.0 if ok else None,
            "expected_seconds": None, "can_cancel": False, "cancel_requested": False, "attempts": 1,
            "queued_at": queued, "submitted_at": sent, "finished_at": finished, "updated_at": finished,
            "error_kind": kind, "error_message": message, "error_detail": None,
            "estimate_usd_nanos": nanos, "estimate_amount": str(a["estimate"]), "estimate_unit": "USD",
            "billed_usd_nanos": nanos if ok else 0, "billed_amount": None, "billed_unit": None,
            "billed_estimated": ok, "billed_raw": None, "claimed_by": None, "claim_expires_at": None,
            "rating": None, "parent_job_id": None,
        })
        if ok:
            links.append({"job_id": job_id, "idx": 0, "sha256": seeded.images[i % distinct_images].sha256,
                          "source_url": None, "rating": a["rating"], "winner": False})
        ledger.append({
            "job_id": job_id, "run_id": run_id, "provider": a["provider"], "endpoint": a["endpoint"],
            "created_at": queued, "updated_at": finished, "state": "estimated" if ok else "released",
            "reserved_usd_nanos": nanos, "usd_nanos": nanos if ok else 0, "billed_amount": None, "billed_unit": None,
        })
        seeded.job_ids.append(job_id)
    now = clock.now()
    with db.write(store.engine) as conn:
        for info in seeded.images:
            exists = conn.execute(sa.select(db.images.c.sha256).where(db.images.c.sha256 == info.sha256)).first()
            if exists is None:
                conn.execute(db.images.insert(), [{
                    "sha256": info.sha256, "format": info.format, "width": info.width, "height": info.height,
                    "bytes": info.bytes, "path": info.path, "thumb_path": info.thumb_path, "created_at": now,
                }])
        conn.execute(db.runs.insert(), runs)
        conn.execute(db.jobs.insert(), jobs)
        if links:
            conn.execute(db.job_images.insert(), links)
        conn.execute(db.ledger.insert(), ledger)
        budget.recount(conn)  # the rows went around budget's own writes: its totals are summed afresh
    return seeded


def attach_image(store: Store, job_id: str, data: bytes, *, idx: int = 0) -> ImageInfo:
    """Give an existing job one more (or a specific) image file: for delete tests with unshared files."""
    info = store.files.put(data, "png")
    with db.write(store.engine) as conn:
        exists = conn.execute(sa.select(db.images.c.sha256).where(db.images.c.sha256 == info.sha256)).first()
        if exists is None:
            conn.execute(db.images.insert(), [{
                "sha256": info.sha256, "format": info.format, "width": info.width, "height": info.height,
                "bytes": info.bytes, "path": info.path, "thumb_path": info.thumb_path, "created_at": clock.now(),
            }])
        conn.execute(db.job_images.delete().where(db.job_images.c.job_id == job_id, db.job_images.c.idx == idx))
        conn.execute(db.job_images.insert(), [{"job_id": job_id, "idx": idx, "sha256": info.sha256,
                                               "source_url": None, "rating": None, "winner": False}])
    return info


class InstantRunner:
    """Stands in for the job runner: stores each submission and finishes it at once with a picture.

    Enough for pages and exports that read experiments back, without threads or an emulator.
    """

    def __init__(self, store: Store, *, endpoint_images: int = 4) -> None:
        self.store = store
        self.images = [store.files.put(make_image(k, (128, 128)), "png") for k in range(endpoint_images)]
        self.calls = 0

    def submit(self, provider, request, *, endpoint="live", api_key=None, label=None, experiment_id=None,
               parent_job_id=None, **_kw):
        from core.jobs.submission import Submitted

        price = PRICE.get(request.quality, Decimal("0.05"))
        run_id, ids = self.store.create_run(
            provider=provider, endpoint=endpoint, request=request,
            jobs=[NewJob(prompt=request.prompt, n=1, quality=request.quality, size=request.size,
                         estimate=Money(usd=price, amount=price, unit="USD"))],
            label=label, experiment_id=experiment_id, parent_job_id=parent_job_id,
        )
        finished = clock.now()
        JobClaims(self.store.engine).finish(ids[0], None, status="succeeded", billing=Billing("estimated"),
                                            images=[(self.images[self.calls % len(self.images)], None)], now=finished)
        with db.write(self.store.engine) as conn:
            conn.execute(db.jobs.update().where(db.jobs.c.id == ids[0])
                         .values(submitted_at=finished - timedelta(seconds=3 + self.calls)))
        self.calls += 1
        return Submitted(run_id, tuple(ids), price)


def seed_experiment(store: Store, *, rows=("low", "high"), cols=("openai", "evolink"), name: str | None = None,
                    endpoint: str = "emulator") -> str:
    """A finished quality x provider grid experiment, made through the Compare page's own planner."""
    from core.compare import experiments as ex
    from providers.catalogue import load_catalogue

    base = ImageRequest(prompt="A lighthouse on a cliff at dawn, watercolor", model="gpt-image-2", size="1:1")
    plan = ex.plan_grid(base, cols[0], ex.Axis("quality", tuple(rows)), ex.Axis("provider", tuple(cols)))
    quote = ex.quote_plan(plan, catalogue=load_catalogue(), endpoint_for=lambda _p: endpoint, spend_for=store.spend)
    return ex.run_plan(plan, quote, runner=InstantRunner(store), store=store, name=name).experiment_id


def seed_edit_chain(store: Store, first_job_id: str, steps: int = 2) -> list[str]:
    """Edits made one from another, starting at ``first_job_id``; returns the new job ids oldest first."""
    runner = InstantRunner(store)
    parent, out = first_job_id, []
    for i in range(steps):
        request = ImageRequest(prompt=f"Make it more dramatic, step {i + 1}", model="gpt-image-2", size="1:1",
                               quality="medium")
        done = runner.submit("openai", request, endpoint="live", parent_job_id=parent, label="Edit")
        parent = done.job_ids[0]
        out.append(parent)
    return out

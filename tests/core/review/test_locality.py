"""Edit locality: the spill of a masked edit measured once when its result is stored, on images with
known spills (0% and 10% of the pixels outside the mask) and through the emulator's masked edit."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from core_fakes import wait_for
from PIL import Image, ImageDraw
from store_helpers import new_run

from core import db
from core.history.store import Store
from core.history.views import Billing
from core.jobs.claims import JobClaims
from core.jobs.runner import JobRunner
from core.review import locality
from emulator import Emulator
from providers import registry
from providers.types import ImageRequest, InputImage

SIZE = (100, 100)
EDIT_BOX = (0, 0, 50, 40)  # 2,000 pixels to edit; 8,000 outside the mask


def _png(im: Image.Image) -> bytes:
    out = io.BytesIO()
    im.save(out, "PNG")
    return out.getvalue()


def _mask() -> bytes:
    m = Image.new("RGBA", SIZE, (0, 0, 0, 255))  # opaque: keep
    ImageDraw.Draw(m).rectangle((EDIT_BOX[0], EDIT_BOX[1], EDIT_BOX[2] - 1, EDIT_BOX[3] - 1), fill=(0, 0, 0, 0))
    return _png(m)


def _original() -> Image.Image:
    return Image.new("RGB", SIZE, (90, 120, 150))


def _edited(spilled_rows: int) -> bytes:
    """The edit box repainted, and ``spilled_rows`` full rows below it (100 pixels each, all outside)."""
    im = _original()
    draw = ImageDraw.Draw(im)
    draw.rectangle((EDIT_BOX[0], EDIT_BOX[1], EDIT_BOX[2] - 1, EDIT_BOX[3] - 1), fill=(250, 20, 20))
    if spilled_rows:
        draw.rectangle((0, 60, SIZE[0] - 1, 60 + spilled_rows - 1), fill=(10, 250, 10))
    return _png(im)


def _request(mask: bool = True) -> ImageRequest:
    return ImageRequest(prompt="a red box", model="m1", images=(InputImage(data=_png(_original()), mime="image/png"),),
                        mask=InputImage(data=_mask(), mime="image/png") if mask else None)


@pytest.fixture
def store(db_url: str, data_dir: Path) -> Store:
    return Store(db_url, data_dir)


def _stored_edit(store: Store, request: ImageRequest, outputs: list[bytes]) -> str:
    _, (job_id,) = new_run(store, request=request)
    JobClaims(store.engine).finish(job_id, None, status="succeeded", billing=Billing("estimated"),
                                   images=[(store.files.put(o, "png"), None) for o in outputs])
    return job_id


def test_no_spill_and_ten_percent_spill_are_measured_and_stored(store: Store) -> None:
    outputs = [_edited(0), _edited(8)]  # 8 rows x 100 = 800 of the 8,000 pixels outside: 10%
    job_id = _stored_edit(store, _request(), outputs)
    assert locality.record(store.engine, job_id, _request(), outputs) == 2
    spill = locality.spill_for(store.engine, [job_id])
    clean, spilled = spill[(job_id, 0)], spill[(job_id, 1)]
    assert (clean.changed, clean.total, clean.fraction, clean.mean_change) == (0, 8000, 0.0, 0.0)
    assert not clean.high
    assert (spilled.changed, spilled.total) == (800, 8000) and spilled.fraction == pytest.approx(0.10)
    assert spilled.percent == 10.0 and spilled.high
    # The mean change outside: 800 pixels at a largest channel difference of 140 (90,120,150 -> 10,250,10).
    assert spilled.mean_change == pytest.approx(800 * 140 / 255 / 8000, rel=1e-3)


def test_measured_once_and_unmasked_edits_get_no_score(store: Store) -> None:
    job_id = _stored_edit(store, _request(), [_edited(8)])
    locality.record(store.engine, job_id, _request(), [_edited(8)])
    locality.record(store.engine, job_id, _request(), [_edited(0)])  # a second call changes nothing
    assert locality.spill_for(store.engine, [job_id])[(job_id, 0)].percent == 10.0
    plain = _stored_edit(store, _request(mask=False), [_edited(8)])
    assert locality.record(store.engine, plain, _request(mask=False), [_edited(8)]) == 0
    generated = _stored_edit(store, ImageRequest(prompt="a red box", model="m1"), [_edited(8)])
    assert locality.record(store.engine, generated, ImageRequest(prompt="a red box", model="m1"), [_edited(8)]) == 0
    assert locality.spill_for(store.engine, [plain, generated]) == {}
    # Deleting the job takes its score with it.
    store.delete_jobs([job_id])
    with db.read(store.engine) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.edit_spill)).scalar() == 0


# --- through the runner, the OpenAI adapter and the emulator's masked edit -------------------------
@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emulator]:
    emulator = Emulator(data_dir=tmp_path / "emu", latency=0.2).start()
    yield emulator
    emulator.stop()


def test_the_emulators_masked_edit_is_scored_when_stored(emu: Emulator, sqlite_url: str, data_dir: Path) -> None:
    def factory(name: str, endpoint: str, api_key: str | None = None):
        return registry.create(name, api_key=api_key or "emulator-key", base_url=emu.url(name), uploader=emu.upload)

    store = Store(sqlite_url, data_dir)
    runner = JobRunner(store, factory, scan_seconds=0.05, lease_seconds=30.0, retry_backoff=0.1).start()
    try:
        model = registry.provider_class("openai").default_model
        source = Image.new("RGB", (1024, 1024), (40, 90, 160))
        ImageDraw.Draw(source).ellipse((100, 100, 900, 900), fill=(230, 200, 60))
        mask = Image.new("RGBA", (1024, 1024), (0, 0, 0, 255))
        ImageDraw.Draw(mask).rectangle((300, 300, 700, 700), fill=(0, 0, 0, 0))
        image = InputImage(data=_png(source), mime="image/png", name="source.png")
        masked = runner.submit("openai", ImageRequest(prompt="a flower", model=model, size="1024x1024",
                                                      images=(image,), mask=InputImage(data=_png(mask),
                                                                                       mime="image/png")),
                               endpoint="emulator")
        unmasked = runner.submit("openai", ImageRequest(prompt="a flower", model=model, size="1024x1024",
                                                        images=(image,)), endpoint="emulator")
        ids = [*masked.job_ids, *unmasked.job_ids]
        jobs = wait_for(lambda: (js := store.get_jobs(ids)) and all(j.done for j in js) and js, 30)
        assert [j.status for j in jobs] == ["succeeded", "succeeded"], [j.error_message for j in jobs]
        spill = wait_for(lambda: locality.spill_for(store.engine, ids) or None, 10)
        assert set(spill) == {(masked.job_ids[0], 0)}  # the unmasked edit has none
        score = spill[(masked.job_ids[0], 0)]
        # The emulator keeps the input outside the mask: (almost) nothing spilled, and all of it was measured.
        assert score.total == 1024 * 1024 - 401 * 401 and score.fraction < 0.01 and not score.high
    finally:
        runner.stop()


def test_the_metadata_csv_carries_the_spill_of_masked_edits_only(store: Store) -> None:
    import csv
    import zipfile

    from core.exports.downloads import build_zip

    masked = _stored_edit(store, _request(), [_edited(8)])
    locality.record(store.engine, masked, _request(), [_edited(8)])
    plain = _stored_edit(store, _request(mask=False), [_edited(8)])
    with zipfile.ZipFile(io.BytesIO(build_zip(store, [masked, plain]))) as zf:
        rows = list(csv.DictReader(io.StringIO(zf.read("metadata.csv").decode())))
    by_job = {r["job_id"]: r["edit_spill_percent"] for r in rows}
    assert by_job == {masked: "10.0", plain: ""}

"""The edit-spill line beside a masked edit's result in the job panel, and the keep-outside offer."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from core import db
from core.history.store import Store
from core.history.views import Billing, Money, NewJob
from core.jobs.claims import JobClaims
from core.review import locality
from providers.types import ImageRequest, InputImage


def _png(im: Image.Image) -> bytes:
    out = io.BytesIO()
    im.save(out, "PNG")
    return out.getvalue()


def _edit(store: Store, *, spilled_rows: int, masked: bool = True) -> str:
    original = Image.new("RGB", (100, 100), (90, 120, 150))
    mask = Image.new("RGBA", (100, 100), (0, 0, 0, 255))
    ImageDraw.Draw(mask).rectangle((0, 0, 49, 39), fill=(0, 0, 0, 0))
    edited = original.copy()
    ImageDraw.Draw(edited).rectangle((0, 0, 49, 39), fill=(250, 20, 20))
    if spilled_rows:
        ImageDraw.Draw(edited).rectangle((0, 60, 99, 60 + spilled_rows - 1), fill=(10, 250, 10))
    request = ImageRequest(prompt="a red box", model="gpt-image-1", images=(
        InputImage(data=_png(original), mime="image/png"),),
        mask=InputImage(data=_png(mask), mime="image/png") if masked else None)
    _, (job_id,) = store.create_run(provider="openai", endpoint="emulator", request=request, jobs=[
        NewJob(prompt="a red box", n=1, quality="low", size="auto", estimate=Money(None))])
    out = _png(edited)
    JobClaims(store.engine).finish(job_id, None, status="succeeded", billing=Billing("estimated"),
                                   images=[(store.files.put(out, "png"), None)])
    locality.record(store.engine, job_id, store.load_request(job_id), [out])
    return job_id


def _panel(job_id: str) -> AppTest:
    def script(job_id: str) -> None:
        from ui import jobs

        jobs.live_panel([job_id], key="t")

    return AppTest.from_function(script, args=(job_id,), default_timeout=60).run()


def test_a_high_spill_is_said_and_the_original_can_be_kept_outside_the_mask():
    store = Store()
    job_id = _edit(store, spilled_rows=8)
    at = _panel(job_id)
    assert not at.exception, [e.value for e in at.exception]
    captions = [c.value for c in at.caption]
    assert any("Edit spill: 10% of the pixels outside the mask changed" in c for c in captions), captions
    offer = [b for b in at.button if b.label == "Keep the original outside the mask"]
    assert len(offer) == 1
    offer[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    captions = [c.value for c in at.caption]
    assert any("Original kept outside the mask" in c for c in captions), captions
    assert not [b for b in at.button if b.label == "Keep the original outside the mask"]


def test_a_local_edit_is_said_without_an_offer_and_an_unmasked_edit_gets_no_line():
    store = Store()
    local = _panel(_edit(store, spilled_rows=0))
    assert any("Edit spill: 0% of the pixels" in c.value for c in local.caption)
    assert not [b for b in local.button if b.label == "Keep the original outside the mask"]
    unmasked = _panel(_edit(store, spilled_rows=8, masked=False))
    assert not any("Edit spill" in c.value for c in unmasked.caption)


def test_compare_cells_show_the_spill_of_masked_edits():
    store = Store()
    exp_id = store.create_experiment("Edits")
    masked = _edit(store, spilled_rows=8)
    plain = _edit(store, spilled_rows=8, masked=False)
    with db.write(store.engine) as conn:
        conn.execute(db.runs.update().where(db.runs.c.id.in_([j.run_id for j in store.get_jobs([masked, plain])]))
                     .values(experiment_id=exp_id))

    def script(exp_id: str) -> None:
        from ui import compare_results

        compare_results.render(exp_id)

    at = AppTest.from_function(script, args=(exp_id,), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    spills = [c.value for c in at.caption if "Edit spill" in c.value]
    assert len(spills) == 1 and "10%" in spills[0], spills
    assert not [b for b in at.button if b.label == "Keep the original outside the mask"]  # offered in Studio only

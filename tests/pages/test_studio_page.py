"""The Studio page through AppTest: live cost, uploads, generating on the emulator, budget, page changes."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.images import recipe
from core.spend.money import format_usd
from providers.catalogue import load_catalogue
from providers.registry import PROVIDERS
from providers.types import ImageRequest
from tests.ports import free_port
from ui import studio_state as ss

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
# The page on its own draws the sidebar itself. Used where a test changes the provider: under st.navigation,
# AppTest (1.67) drops the sidebar's widgets from its tree after the first run, so their values reset.
PAGE = str(ROOT / "app_pages" / "studio.py")
PROMPT = "A lighthouse on a cliff at dusk, watercolour"


@pytest.fixture(autouse=True)
def _emulator(monkeypatch):
    """A fast emulator on its own port; stopped after the test so the next one starts fresh in its data dir."""
    from core import services as emulator_service

    monkeypatch.setenv("IMAGE_STUDIO_EMULATOR_LATENCY", "0.3")
    monkeypatch.setenv("IMAGE_STUDIO_EMULATOR_PORT", str(free_port()))
    emulator_service.stop_emulator()
    yield
    import streamlit as st

    st.cache_resource.clear()  # stops the runner before its emulator goes
    emulator_service.stop_emulator()


def _png(w: int = 640, h: int = 480, color=(30, 120, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "PNG")
    return buf.getvalue()


def _app(script: str = APP) -> AppTest:
    at = AppTest.from_file(script, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _expected_total(quality: str, size: str = "1:1", n: int = 1, prompt: str = PROMPT) -> str:
    caps = PROVIDERS["openai"].MODELS["gpt-image-2"]
    # The form asks OpenAI for its default number of streamed previews (ui/previews.DEFAULT).
    req = ImageRequest(prompt=prompt, model="gpt-image-2", size=size, quality=quality, n=n, partial_images=2)
    return format_usd(load_catalogue().estimate("openai", req, caps).total.usd)


def _wait_for_images(at: AppTest, count: int = 1, timeout: float = 30.0) -> None:
    # The runner works in background threads; run_every fragments do not fire in AppTest, so rerun by hand.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        if len(_result_images(at)) >= count:
            return
        time.sleep(0.3)
    raise AssertionError(f"no {count} result images after {timeout} s: {[c.value for c in at.caption]}")


def _result_images(at: AppTest) -> list:
    return [b for b in at.button if b.key and b.key.endswith("_edit")]


def test_cost_follows_quality_and_matches_the_catalogue():
    at = _app()
    at.text_area(key=ss.PROMPT).set_value(PROMPT).run()
    medium = _metric(at, "Estimated total")
    assert medium == _expected_total("medium")

    at.segmented_control(key=ss.QUALITY).set_value("high").run()
    high = _metric(at, "Estimated total")
    assert high == _expected_total("high")
    assert high != medium
    assert "$" in at.button(key=ss.GENERATE).label and high in at.button(key=ss.GENERATE).label


def test_variables_make_a_batch_and_the_cost_covers_it():
    at = _app()
    at.text_area(key=ss.PROMPT).set_value("A poster that says {{word}}").run()
    at.text_area(key=ss.var_key("word")).set_value("Hello\nBonjour\n\nHello").run()  # blank and repeat dropped
    label = at.button(key=ss.GENERATE).label
    assert label.startswith("Generate 2 images")
    captions = " ".join(c.value for c in at.caption)
    assert "2 word values × 1 image per prompt = 2 images" in captions
    total = load_catalogue()
    caps = PROVIDERS["openai"].MODELS["gpt-image-2"]
    expected = sum(
        total.estimate("openai", ImageRequest(prompt=f"A poster that says {w}", model="gpt-image-2", size="1:1",
                                              quality="medium", partial_images=2), caps).total.usd
        for w in ("Hello", "Bonjour")
    )
    assert _metric(at, "Estimated total") == format_usd(expected)


def test_template_fills_prompt_and_variable_defaults():
    at = _app()
    at.selectbox(key=ss.TEMPLATE).set_value("Bilingual event poster").run()
    assert "{{headline}}" in at.text_area(key=ss.PROMPT).value
    assert at.text_area(key=ss.var_key("headline")).value == "Spring Design Festival"
    assert at.selectbox(key=ss.SIZE).value == "3:2"
    assert not at.button(key=ss.GENERATE).disabled


def test_uploaded_png_shows_a_thumbnail_with_its_size():
    at = _app()
    at.file_uploader(key=ss.UPLOAD).set_value(("r.png", _png(), "image/png")).run()
    assert not at.exception
    assert len(at.get("image")) >= 1
    captions = " ".join(c.value for c in at.caption)
    assert "640×480" in captions and "r.png" in captions
    assert not at.error


def test_a_big_upload_is_hashed_once_not_on_every_rerun(monkeypatch):
    # Issue 17: the tray hashed a photo's whole bytes several times on every rerun (its sha256 for the tray, the
    # cache keys of its thumbnail and its preparation), ~20 ms each for a 12-MB phone photo.
    import hashlib
    import os

    noise = Image.frombytes("RGB", (1200, 900), os.urandom(1200 * 900 * 3))
    buf = io.BytesIO()
    noise.save(buf, "PNG")
    photo = buf.getvalue()
    assert len(photo) > 3_000_000
    hashed = {"bytes": 0}
    real_new, real_sha256 = hashlib.new, hashlib.sha256

    class Counted:
        def __init__(self, inner):
            self._inner = inner

        def update(self, data):
            if len(data) >= 1_000_000:
                hashed["bytes"] += len(data)
            self._inner.update(data)

        def __getattr__(self, name):
            return getattr(self._inner, name)

    def sha256(data=b"", **kw):
        h = Counted(real_sha256(**kw))
        h.update(data)
        return h

    monkeypatch.setattr(hashlib, "new", lambda name, data=b"", **kw: Counted(real_new(name, data, **kw)))
    monkeypatch.setattr(hashlib, "sha256", sha256)
    at = _app()
    at.file_uploader(key=ss.UPLOAD).set_value(("photo.png", photo, "image/png")).run()
    assert not at.exception and "1200×900" in " ".join(c.value for c in at.caption)
    first = hashed["bytes"]
    assert 0 < first <= 2 * len(photo)  # its content hash, once (and the upload's own bookkeeping at most)
    for quality in ("high", "low", "medium"):
        at.segmented_control(key=ss.QUALITY).set_value(quality).run()
        assert not at.exception
    assert hashed["bytes"] == first, (first, hashed["bytes"], len(photo))
    assert "1200×900" in " ".join(c.value for c in at.caption)


def test_text_file_named_png_is_refused_with_the_providers_limits():
    at = _app()
    at.file_uploader(key=ss.UPLOAD).set_value(("r.png", b"just some notes, not a picture\n" * 20, "image/png")).run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "r.png" in errors and "text" in errors
    assert "OpenAI takes up to 16 images" in errors
    assert not at.get("image")


def test_generate_on_the_emulator_shows_the_image_and_its_cost():
    at = _app()
    at.text_area(key=ss.PROMPT).set_value(PROMPT).run()
    at.button(key=ss.GENERATE).click().run()
    assert not at.exception, [e.value for e in at.exception]
    _wait_for_images(at)
    assert at.get("image")
    captions = " ".join(c.value for c in at.caption)
    assert "Estimated $" in captions and "billed $" in captions
    assert "1 image ready" in captions


def test_a_second_click_on_the_batch_just_sent_is_held_back_and_can_be_sent_on_purpose(monkeypatch):
    # Issue 17: with a room on the app a card could take seconds to appear, and a second click paid for the same
    # batch twice. The same batch within AGAIN_SECONDS is held back (and said); a changed one goes at once.
    from core import services as app_services
    from ui import studio_form

    store = app_services.store()
    at = _app()
    at.text_area(key=ss.PROMPT).set_value(PROMPT).run()
    at.button(key=ss.GENERATE).click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.session_state[ss.RUNS]) == 1 and store.count_jobs() == 1

    at.button(key=ss.GENERATE).click().run()  # the double click
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.session_state[ss.RUNS]) == 1 and store.count_jobs() == 1
    assert any("Not sent again" in w.value and "1 job" in w.value for w in at.warning), [w.value for w in at.warning]
    at.button(key=ss.SEND_AGAIN).click().run()  # on purpose: it goes, and is paid for, once more
    assert len(at.session_state[ss.RUNS]) == 2 and store.count_jobs() == 2
    assert not any("Not sent again" in w.value for w in at.warning)

    at.segmented_control(key=ss.QUALITY).set_value("low").run()  # another batch: no question asked
    at.button(key=ss.GENERATE).click().run()
    assert len(at.session_state[ss.RUNS]) == 3 and store.count_jobs() == 3

    real = studio_form._monotonic
    monkeypatch.setattr(studio_form, "_monotonic", lambda: real() + studio_form.AGAIN_SECONDS)
    at.button(key=ss.GENERATE).click().run()  # the same batch, but long enough after: a new one
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.session_state[ss.RUNS]) == 4 and store.count_jobs() == 4


def test_over_budget_disables_generate_and_says_why(monkeypatch):
    monkeypatch.setenv("IMAGE_STUDIO_BUDGET_USD_DAILY", "0.02")  # a low draft with its two previews is $0.0119
    at = _app()
    at.text_area(key=ss.PROMPT).set_value(PROMPT).run()
    at.segmented_control(key=ss.QUALITY).set_value("high").run()
    button = at.button(key=ss.GENERATE)
    assert button.disabled
    reasons = " ".join(c.value for c in at.caption)
    assert "Over budget" in reasons and _expected_total("high") in reasons and "$0.0200 left" in reasons
    at.segmented_control(key=ss.QUALITY).set_value("low").run()
    assert not at.button(key=ss.GENERATE).disabled  # a low draft fits


def test_a_page_change_while_jobs_run_loses_nothing(monkeypatch):
    monkeypatch.setenv("IMAGE_STUDIO_EMULATOR_LATENCY", "2")
    at = _app()
    at.text_area(key=ss.PROMPT).set_value(PROMPT).run()
    at.segmented_control(key=ss.QUALITY).set_value("low").run()
    at.file_uploader(key=ss.UPLOAD).set_value(("r.png", _png(), "image/png")).run()
    at.button(key=ss.GENERATE).click().run()
    runs = at.session_state[ss.RUNS]
    assert len(runs) == 1

    at.switch_page("app_pages/history.py").run()
    assert not at.exception, [e.value for e in at.exception]
    at.switch_page("app_pages/studio.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.text_area(key=ss.PROMPT).value == PROMPT
    assert at.segmented_control(key=ss.QUALITY).value == "low"
    assert at.session_state[ss.RUNS] == runs
    assert any("640×480" in c.value for c in at.caption), "the uploaded image was lost"
    _wait_for_images(at)


def test_moderation_block_says_what_was_refused_and_that_it_was_not_billed():
    from core import services as emulator_service

    at = _app()
    at.text_area(key=ss.PROMPT).set_value(PROMPT).run()
    emulator_service.get_emulator().emulator.inject("openai", "moderation", stage="input")
    at.button(key=ss.GENERATE).click().run()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        at.run()
        if any("safety filter" in w.value for w in at.warning):
            break
        time.sleep(0.3)
    text = " ".join(w.value for w in at.warning)
    assert "refused the prompt" in text
    assert any("Not charged" in c.value or "does not bill it" in c.value for c in at.caption)
    assert at.expander and any(e.label == "The provider's own words" for e in at.expander)
    assert not at.exception


def test_an_image_with_a_recipe_restores_the_form():
    from core.prompts import draft

    req = ImageRequest(prompt="A teapot shaped like a whale", model="gpt-image-2", size="2:3", quality="high")
    data = recipe.embed(_png(), "png", draft.recipe_for(provider="openai", request=req))
    at = _app()
    at.file_uploader(key=ss.UPLOAD).set_value(("made-here.png", data, "image/png")).run()
    at.button(key="studio_recipe_restore").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.text_area(key=ss.PROMPT).value == "A teapot shaped like a whale"
    assert at.segmented_control(key=ss.QUALITY).value == "high"
    assert at.selectbox(key=ss.SIZE).value == "2:3"
    assert not at.get("image"), "the recipe's carrier image should not stay as an input"


def test_url_only_provider_on_the_emulator_takes_uploads():
    at = _app(PAGE)
    at.selectbox(key="provider").set_value("evolink").run()
    assert not at.exception
    assert at.text_area(key=ss.URLS) is not None
    at.text_area(key=ss.PROMPT).set_value(PROMPT).run()
    at.file_uploader(key=ss.UPLOAD).set_value(("r.png", _png(1024, 1024), "image/png")).run()
    assert not at.button(key=ss.GENERATE).disabled
    # EvoLink offers no quality auto and no file-format choice: the form does not offer them either.
    assert "auto" not in at.segmented_control(key=ss.QUALITY).options
    assert not [s for s in at.selectbox if s.key == ss.FORMAT]


def test_history_hands_a_job_over_at_high_quality():
    at = _app()
    at.text_area(key=ss.PROMPT).set_value(PROMPT).run()
    at.segmented_control(key=ss.QUALITY).set_value("low").run()
    at.button(key=ss.GENERATE).click().run()
    _wait_for_images(at)
    job_id = at.session_state[ss.RUNS][0]["job_ids"][0]

    at.text_area(key=ss.PROMPT).set_value("something else").run()
    at.session_state["studio_prefill"] = {"job_id": job_id, "mode": "high"}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.text_area(key=ss.PROMPT).value == PROMPT
    assert at.segmented_control(key=ss.QUALITY).value == "high"
    assert _metric(at, "Estimated total") == _expected_total("high")


def test_re_render_at_high_sends_the_same_request_at_high():
    at = _app()
    at.text_area(key=ss.PROMPT).set_value(PROMPT).run()
    at.segmented_control(key=ss.QUALITY).set_value("low").run()
    at.button(key=ss.GENERATE).click().run()
    _wait_for_images(at)
    high = next(b for b in at.button if b.key and b.key.endswith("_high"))
    assert _expected_total("high") in high.label
    high.click().run()
    assert not at.exception, [e.value for e in at.exception]
    runs = at.session_state[ss.RUNS]
    assert len(runs) == 2
    from ui import services

    job = services.store().get_job(runs[0]["job_ids"][0])
    assert job.quality == "high" and job.prompt == PROMPT and job.parent_job_id == runs[1]["job_ids"][0]


def test_a_queued_or_running_job_can_be_canceled_where_the_provider_allows(monkeypatch):
    monkeypatch.setenv("IMAGE_STUDIO_EMULATOR_LATENCY", "20")
    at = _app(PAGE)
    at.selectbox(key="provider").set_value("coretoday").run()
    at.text_area(key=ss.PROMPT).set_value(PROMPT).run()
    at.button(key=ss.GENERATE).click().run()
    cancel = next(b for b in at.button if b.key and b.key.endswith("_cancel"))
    cancel.click().run()
    from ui import services

    job_id = at.session_state[ss.RUNS][0]["job_ids"][0]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and services.store().get_job(job_id).status != "canceled":
        time.sleep(0.2)
    at.run()
    assert services.store().get_job(job_id).status == "canceled"
    assert any("Canceled" in i.value for i in at.info)


def test_prompt_builder_and_save_as_template():
    at = _app()
    at.text_input(key=ss.BUILDER_PREFIX + "subject").set_value("a paper boat on a puddle").run()
    at.text_input(key=ss.BUILDER_PREFIX + "text").set_value("Rainy Days").run()
    at.text_input(key=ss.BUILDER_PREFIX + "language").set_value("English").run()
    at.button(key="studio_builder_write").click().run()
    prompt = at.text_area(key=ss.PROMPT).value
    assert prompt.startswith("A paper boat on a puddle.") and '"Rainy Days"' in prompt

    at.text_input(key="studio_tpl_name").set_value("Boat poster").run()
    at.button(key="studio_tpl_save").click().run()
    assert not at.exception
    assert any("Boat poster" in s.value for s in at.success)
    assert "Boat poster" in at.selectbox(key=ss.TEMPLATE).options[-1]


def test_pure_pieces():
    from core.history import explain
    from core.prompts import draft
    from core.spend import costs

    openai = PROVIDERS["openai"].MODELS["gpt-image-2"]
    values = [o.value for o in draft.size_options(openai)]
    assert values[:3] == ["1:1", "3:2", "2:3"] and "2048x2048" in values and values[-1] == draft.CUSTOM_SIZE
    rows = costs.compare(load_catalogue(), ImageRequest(prompt="x", model="gpt-image-2", size="3:2",
                                                        quality="medium"), None, current_provider="openai")
    assert sum(r.cheapest for r in rows) >= 1 and any(r.current for r in rows)
    assert explain.provider_words('{"error": {"message": "No.", "code": "moderation_blocked"}}') == (
        "No. (code: moderation_blocked)"
    )
    # An unsure outcome is explained from its kind; the wait in the provider's words is never scraped from them
    # (a rate limit's wait comes from its retry_after field: tests/core/history/test_explain.py).
    why = explain.explain(status="unknown", error_kind="unknown", error_message="lost contact",
                          error_detail="rate_limited: Slow down. Wait about 20 s and try again.\n{}",
                          provider="openai", had_input_images=False)
    assert why.title == "Outcome unknown" and "dashboard" in why.hint and "20 s" not in why.hint
    assert why.detail == "rate_limited: Slow down. Wait about 20 s and try again.\n{}"


def test_edit_this_chains_the_next_request_to_the_result():
    at = _app()
    at.text_area(key=ss.PROMPT).set_value(PROMPT).run()
    at.segmented_control(key=ss.QUALITY).set_value("low").run()
    at.button(key=ss.GENERATE).click().run()
    _wait_for_images(at)
    first_job = at.session_state[ss.RUNS][0]["job_ids"][0]
    _result_images(at)[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state[ss.PARENT] == first_job
    assert [i.source for i in at.session_state[ss.KEPT]] == ["result"]
    assert any("Continues the edit" in c.value for c in at.caption)

    at.text_area(key=ss.PROMPT).set_value("Make the sky stormy").run()
    at.button(key=ss.GENERATE).click().run()
    from ui import services

    job = services.store().get_job(at.session_state[ss.RUNS][0]["job_ids"][0])
    assert job.parent_job_id == first_job
    assert services.store().load_request(job.id).images, "the result went in as the input image"


def test_too_many_or_damaged_files_name_the_providers_limit():
    at = _app()
    files = [(f"p{i}.png", _png(64, 64, (i * 10, 80, 120)), "image/png") for i in range(17)]
    at.file_uploader(key=ss.UPLOAD).set_value(files).run()
    assert not at.exception
    assert at.button(key=ss.GENERATE).disabled
    text = " ".join(e.value for e in at.error) + " ".join(c.value for c in at.caption)
    assert "17 input images given; OpenAI takes at most 16" in text

    broken = _png()[:300]
    at.file_uploader(key=ss.UPLOAD).set_value(("cut.png", broken, "image/png")).run()
    errors = " ".join(e.value for e in at.error)
    assert "cut.png" in errors and "damaged" in errors and "OpenAI takes up to 16 images" in errors


def test_a_route_whose_model_may_be_gone_is_flagged_before_any_call():
    # EvoLink still lists GPT Image 1, which OpenAI shut down on 2026-10-23: say so before Generate.
    at = _app(PAGE)
    at.selectbox(key="provider").set_value("evolink").run()
    at.selectbox(key="model").set_value("gpt-image-1").run()
    assert not at.exception
    warnings = [w.value for w in at.warning if "not confirmed" in w.value]
    assert len(warnings) >= 2  # beside the model and beside Generate
    assert all("2026-10-23" in w for w in warnings)
    at.selectbox(key="model").set_value("gpt-image-2").run()
    assert not [w for w in at.warning if "not confirmed" in w.value]


def test_apiframe_estimates_say_the_credit_value_is_unknown():
    at = _app(PAGE)
    at.selectbox(key="provider").set_value("apiframe").run()
    at.text_area(key=ss.PROMPT).set_value(PROMPT).run()
    assert not at.exception
    assert _metric(at, "Estimated total").endswith("credits") and "$" not in _metric(at, "Estimated total")
    assert any("credit value unknown" in c.value and "Settings" in c.value for c in at.caption)
    button = next(b for b in at.button if b.key == ss.GENERATE)
    assert "$" not in button.label  # no confident dollar amount on the button either


def test_retired_models_say_what_openai_recommends_beside_what_the_app_picks():
    at = _app(PAGE)
    assert "gpt-image-1.5" not in at.selectbox(key="model").options  # shut down on the suite's day
    retired = next(c.value for c in at.caption if c.value.startswith("Retired:"))
    assert "OpenAI recommends gpt-image-2.6-sunburst or gpt-image-2.6-flare" in retired
    assert "this app switches to gpt-image-2" in retired

"""Issue 15 on the Studio through AppTest: a reload keeps the draft and the results, Edit this keeps the
quality and drops a {{variable}} batch, provider and model live in the settings card, per image × images is
the total, the cards speak the quality words."""

from __future__ import annotations

import re
from decimal import Decimal

from providers.types import QUALITY_WORDS
from tests.pages.test_studio_page import (  # the same fast emulator per test, and the same helpers
    PROMPT,
    _app,
    _emulator,  # noqa: F401  (autouse fixture)
    _metric,
    _result_images,
    _wait_for_images,
)
from ui import studio_state as ss


def _usd(text: str) -> Decimal:
    return Decimal(re.sub(r"[^0-9.]", "", text))


def test_a_reload_brings_back_the_draft_and_this_sessions_results():
    first = _app()
    first.text_area(key=ss.PROMPT).set_value(PROMPT).run()
    first.segmented_control(key=ss.QUALITY).set_value("low").run()
    first.button(key=ss.GENERATE).click().run()
    _wait_for_images(first)
    run_id = first.session_state[ss.RUNS][0]["run_id"]
    assert first.query_params[ss.URL_RUNS] in (run_id, [run_id])

    # A reload is a new session with the same address: the draft and the runs come from the URL.
    from streamlit.testing.v1 import AppTest

    again = AppTest.from_file(first._script_path, default_timeout=60)
    again.query_params.update({ss.PROMPT: PROMPT, ss.QUALITY: "low", ss.URL_RUNS: run_id})
    again.run()
    assert not again.exception, [e.value for e in again.exception]
    assert again.text_area(key=ss.PROMPT).value == PROMPT
    assert again.segmented_control(key=ss.QUALITY).value == "low"
    assert [r["run_id"] for r in again.session_state[ss.RUNS]] == [run_id]
    assert _result_images(again), "the result of the session before the reload is not shown"


def test_an_address_bar_with_junk_restores_nothing_it_should_not():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(_app()._script_path, default_timeout=60)
    at.query_params.update({ss.URL_RUNS: "../../etc,DROP TABLE runs," + "f" * 32, ss.N: "999",
                            "provider": "nowhere"})
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state[ss.RUNS] == []  # malformed ids never reach the store; a well-formed unknown one is gone
    assert at.selectbox(key="provider").value == "openai"
    assert at.number_input(key=ss.N).value == 1


def test_edit_this_keeps_high_and_drops_the_variable_batch():
    at = _app()
    at.text_area(key=ss.PROMPT).set_value("A poster that says {{word}}").run()
    at.text_area(key=ss.var_key("word")).set_value("Hello\nBonjour").run()
    at.segmented_control(key=ss.QUALITY).set_value("high").run()
    at.button(key=ss.GENERATE).click().run()
    _wait_for_images(at, count=2)
    _result_images(at)[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.segmented_control(key=ss.QUALITY).value == "high"
    prompt = at.text_area(key=ss.PROMPT).value
    assert "{{" not in prompt and prompt.startswith("A poster that says "), prompt
    assert at.button(key=ss.GENERATE).label.startswith("Generate 1 image")
    said = " ".join(m.value for m in [*at.info, *at.toast])
    assert "now the input, at High quality" in said


def test_provider_and_model_are_in_the_settings_card_not_the_sidebar():
    at = _app()
    assert not [s for s in at.sidebar.selectbox if s.label in ("Provider", "Model")]
    assert at.selectbox(key="provider").value == "openai" and at.selectbox(key="model").value == "gpt-image-2"
    # The simulated notice is in the main area too (a phone folds the sidebar away).
    assert any("Simulated" in c.value and "no API key" in c.value for c in at.main.caption)


def test_per_image_times_images_is_the_total_and_cards_use_the_quality_words():
    at = _app()
    at.text_area(key=ss.PROMPT).set_value(PROMPT).run()
    at.number_input(key=ss.N).set_value(3).run()
    total, each = _metric(at, "Estimated total"), _metric(at, "Per image")
    if each.startswith("≈"):
        assert abs(_usd(each) * 3 - _usd(total)) < Decimal("0.0003")
    else:
        assert _usd(each) * 3 == _usd(total), (each, total)
    at.number_input(key=ss.N).set_value(1).run()
    assert _metric(at, "Per image") == _metric(at, "Estimated total")

    at.button(key=ss.GENERATE).click().run()
    _wait_for_images(at)
    lines = [m.value for m in at.markdown if "1024×1024" in m.value]
    assert any(f"· {QUALITY_WORDS['medium']} ·" in v for v in lines), lines
    assert not any("· medium ·" in v for v in lines)

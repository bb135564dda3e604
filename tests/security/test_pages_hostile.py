"""Issue 13, cases 3, 6 and 8 on the pages, through AppTest.

- 8: a non-image named ``.png`` showed a red error, yet Generate stayed enabled and ran a
  plain text-to-image at full price. An input the person meant to send that cannot be
  sent now blocks Generate, with the reason beside it, until it is removed.
- 3: an image link to a private address typed for a URL-only provider is refused on the
  page, before any call, naming why.
- 6: prompts, names and notes are handed to Streamlit's Markdown escaped, so an image or
  link in them is shown as text (the browser test counts the requests it would make).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.history.store import Store
from tests.ports import free_port
from tests.security.apptext import page_text
from tests.security.fakes import hostile_job, png
from ui import studio_state as ss

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
STUDIO = str(ROOT / "app_pages" / "studio.py")  # the page alone draws its own sidebar (to change provider)
PIXEL = "A fox ![p](http://127.0.0.1:9/pixel.png) and [a link](http://127.0.0.1:9/x) <img src=x> :red[boo]"
# Markdown that would make the browser load something: an image, an autolink, raw HTML.
UNESCAPED = re.compile(r"(?<!\\)!(?<!\\)\[[^\]]*\]\(|(?<!\\)<img|(?<!\\)<https?:")


@pytest.fixture(autouse=True)
def emulator(monkeypatch):
    from core import services

    monkeypatch.setenv("IMAGE_STUDIO_EMULATOR_PORT", str(free_port()))
    monkeypatch.setenv("IMAGE_STUDIO_EMULATOR_LATENCY", "0.2")
    services.stop_emulator()
    yield
    services.stop_emulator()


def studio(script: str = APP) -> AppTest:
    at = AppTest.from_file(script, default_timeout=60).run()
    at.text_area(key=ss.PROMPT).set_value("Make the sky stormy").run()
    assert not at.button(key=ss.GENERATE).disabled
    return at


@pytest.mark.parametrize(
    ("name", "data", "said"),
    [
        ("notes.png", b"just some notes, not a picture\n" * 20, "it looks like text"),
        ("drawing.png", b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
        ("report.png", b"%PDF-1.7\n" + b"0" * 200, "PDF"),
        ("empty.png", b"", "empty"),
        ("cut.png", png(400, 300)[:300], "damaged"),
    ],
    ids=["text", "svg", "pdf", "empty", "cut-short"],
)
def test_an_unusable_upload_blocks_generate_until_it_is_removed(name, data, said):
    at = studio()
    at.file_uploader(key=ss.UPLOAD).set_value((name, data, "image/png")).run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert name.replace(".", "\\.") in errors or name in errors
    assert said in errors and "Remove it" in errors
    assert at.button(key=ss.GENERATE).disabled
    assert any("Remove it from the uploads" in c.value for c in at.caption)  # said beside the button too
    at.file_uploader(key=ss.UPLOAD).set_value([]).run()
    assert not at.button(key=ss.GENERATE).disabled


def test_a_good_upload_beside_a_bad_one_still_blocks():
    at = studio()
    at.file_uploader(key=ss.UPLOAD).set_value([("ok.png", png(512, 512), "image/png"),
                                               ("bad.png", b"hello", "image/png")]).run()
    assert at.button(key=ss.GENERATE).disabled


@pytest.mark.parametrize("provider", ["evolink", "apiframe"])
@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://127.0.0.1:5432/x.png", "127.0.0.1 is this machine: a provider can never fetch it"),
        ("https://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("https://10.0.0.5/x.png", "private-network address"),
        ("https://localhost/x.png", "this machine"),
        ("http://example.com/x.png", "only https links"),
    ],
)
def test_a_private_image_link_is_refused_on_the_page(provider, url, said):
    at = studio(STUDIO)
    at.selectbox(key="provider").set_value(provider).run()
    at.text_area(key=ss.URLS).set_value(url).run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert said.replace(".", "\\.") in errors or said in errors or said.replace(":", "\\:") in errors
    assert at.button(key=ss.GENERATE).disabled


def test_a_public_https_image_link_is_not_refused(monkeypatch):
    from ui import studio_inputs

    monkeypatch.setattr(studio_inputs.urlpolicy, "_system_resolve", lambda host, port: ["93.184.216.34"])
    at = studio(STUDIO)
    at.selectbox(key="provider").set_value("evolink").run()
    at.text_area(key=ss.URLS).set_value("https://cdn.example.com/photo.png").run()
    assert not at.error
    assert not at.button(key=ss.GENERATE).disabled


def test_compare_refuses_an_unusable_upload_before_pricing():
    at = AppTest.from_file(str(ROOT / "app_pages" / "compare.py"), default_timeout=60).run()
    at.text_area(key="compare_prompt").set_value("Make the sky stormy").run()
    at.file_uploader(key="compare_uploads").set_value(("notes.png", b"plain text " * 40, "image/png")).run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "notes" in errors and "text" in errors and "Remove it" in errors
    assert not [b for b in at.button if b.key == "compare_run"]


def test_user_text_reaches_markdown_escaped_on_history_and_compare():
    store = Store()
    exp_id = store.create_experiment(PIXEL)
    hostile_job(store, PIXEL, experiment_id=exp_id, label=PIXEL)
    history = AppTest.from_file(str(ROOT / "app_pages" / "history.py"), default_timeout=60).run()
    assert not history.exception
    shown = [c.value for c in history.caption] + [m.value for m in history.markdown]
    assert any("pixel" in s for s in shown), "the prompt should be on the page, as text"
    assert not [s for s in shown if UNESCAPED.search(s)], [s for s in shown if UNESCAPED.search(s)]
    compare = AppTest.from_file(str(ROOT / "app_pages" / "compare.py"), default_timeout=60)
    compare.session_state["compare_mode"] = "Past experiments"
    compare.run()
    assert not compare.exception
    texts = [m.value for m in compare.markdown] + [c.value for c in compare.caption]
    assert any("pixel" in t for t in texts)
    assert not [t for t in texts if UNESCAPED.search(t)]


def test_the_job_detail_shows_the_prompt_and_the_providers_words_as_text():
    from core.history.views import JobError

    store = Store()
    job_id = hostile_job(store, PIXEL, status="failed",
                         error=JobError("job_failed", f"OpenAI said: {PIXEL}", detail=PIXEL))
    at = AppTest.from_file(str(ROOT / "app_pages" / "history.py"), default_timeout=60)
    at.query_params["job"] = job_id
    at.run()
    assert not at.exception
    markdowns = [e.value for e in (*at.subheader, *at.caption, *at.markdown, *at.error, *at.warning)]
    assert not [m for m in markdowns if UNESCAPED.search(m)]
    assert PIXEL in page_text(at)  # in full where it is text only: the prompt box, the provider's words

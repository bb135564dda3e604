"""Issue 13: one table of hostile inputs (files, masks, links, prompts, provider answers), each with its clear message.

For every row: the message a person reads names the problem (``says``); nothing is
charged that should not be (a refusal before any call reserves nothing; a failure
the provider made after doing the work keeps its estimate, flagged "may have been
charged"); nothing is stored that should not be (no job for a refused request, no
image file for a refused result, no key, no internal body); no listener standing
for an internal service is reached; and no page shows a traceback.

Files go through the Studio and Compare pages (AppTest); masks and links through the
real runner's ``submit`` and the Studio page; prompts through Studio and, when they
are accepted, the runner and the History page; provider answers through the real
adapters and runner against a fake provider of the test's own on 127.0.0.1, then the
History page's detail of the job.
"""

from __future__ import annotations

import base64
import io
import re
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.history.store import Store
from core.history.views import JobFilter
from core.jobs.runner import JobRunner
from providers.errors import InvalidRequest
from providers.types import ImageRequest, InputImage
from tests.ports import free_port
from tests.security.apptext import page_text
from tests.security.conftest import FAST, fake_factory
from tests.security.fakes import (
    FakeProvider,
    FakeServer,
    Seen,
    echo_key,
    jpeg_claiming,
    json_answer,
    png,
    png_of_size,
    webp_claiming,
)
from ui import studio_state as ss

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-proj-TABLE0123456789abcdefghijkl"
UNESCAPED = re.compile(r"(?<!\\)!(?<!\\)\[[^\]]*\]\(|(?<!\\)<(?:img|script|https?:)")


@dataclass(frozen=True)
class Case:
    id: str
    says: str  # what the message must say (Markdown escapes removed before comparing)
    make: Callable[..., Any]  # the hostile input (some take the listeners)
    billing: str = "none"  # none: nothing reserved | released: not charged | estimated: may have been, flagged


def _bytes(fmt: str, size: tuple[int, int] = (64, 64), **kw: Any) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 90, 160)).save(buf, fmt, **kw)
    return buf.getvalue()


def _zero_width_png() -> bytes:
    data = bytearray(png(8, 8))
    data[16:20] = struct.pack(">I", 0)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _rgba_png(w: int, h: int) -> bytes:
    return png(w, h, mode="RGBA")


# --- files: uploads on Studio and Compare -------------------------------------------------------------
FILES = [
    Case("text-named-png", "it looks like text", lambda: ("notes.png", b"meeting notes, not a picture\n" * 40)),
    Case("svg-named-png", "SVG drawing", lambda: ("logo.png", b'<?xml version="1.0"?><svg xmlns="x"></svg>' * 3)),
    Case("pdf-named-png", "PDF document", lambda: ("scan.png", b"%PDF-1.7\n%\xe2\xe3\n" + b"0" * 300)),
    Case("html-named-jpg", "looks like text", lambda: ("photo.jpg", b"<html><script>alert(1)</script></html>" * 5)),
    Case("zip-named-png", "ZIP archive", lambda: ("photos.png", b"PK\x03\x04" + b"\x00" * 300)),
    Case("heic-named-jpg", "HEIC/AVIF", lambda: ("IMG_1.jpg", b"\x00\x00\x00\x18ftypheic" + b"\x00" * 300)),
    Case("empty-file", "empty", lambda: ("empty.png", b"")),
    Case("one-byte", "not a picture this app can read", lambda: ("x.png", b"\x89")),
    Case("truncated-png", "damaged", lambda: ("cut.png", png(400, 300)[:200])),
    Case("bomb-30000", "30000×30000, 900 MP; the limit is 50 MP", lambda: ("bomb.png", png_of_size(30000, 30000))),
    Case("bomb-12000", "12000×12000, 144 MP; the limit is 50 MP", lambda: ("big.png", png_of_size(12000, 12000))),
    Case("jpeg-claims-65000", "65000×65000", lambda: ("claim.jpg", jpeg_claiming(65000, 65000))),
    Case("webp-claims-16384", "16384×16384, 268 MP", lambda: ("claim.webp", webp_claiming(16384, 16384))),
    Case("zero-width-png", "it is damaged", lambda: ("flat.png", _zero_width_png())),
    Case("gif", "GIF image", lambda: ("anim.gif", _bytes("GIF"))),
    Case("bmp", "BMP image", lambda: ("old.bmp", _bytes("BMP"))),
    Case("tiff", "TIFF image", lambda: ("scan.tif", _bytes("TIFF"))),
]


@pytest.fixture(autouse=True)
def emulator(monkeypatch):
    from core import services

    monkeypatch.setenv("IMAGE_STUDIO_EMULATOR_PORT", str(free_port()))
    monkeypatch.setenv("IMAGE_STUDIO_EMULATOR_LATENCY", "0.2")
    services.stop_emulator()
    yield
    services.stop_emulator()


def _plain(text: str) -> str:
    """Page text with Markdown escapes taken out, to compare with what a person reads."""
    return re.sub(r"\\(.)", r"\1", text)


def _nothing_stored() -> None:
    store = Store()
    assert store.count_jobs(JobFilter()) == 0
    assert store.spend("live").total == Decimal(0) and store.spend("emulator").total == Decimal(0)
    assert not list((store.data_dir / "images").rglob("*.*")) if (store.data_dir / "images").exists() else True


def _no_traceback(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert "Traceback" not in page_text(at)


@pytest.mark.parametrize("case", FILES, ids=[c.id for c in FILES])
def test_hostile_files(case: Case):
    name, data = case.make()
    studio = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    studio.text_area(key=ss.PROMPT).set_value("Make the sky stormy").run()
    studio.file_uploader(key=ss.UPLOAD).set_value((name, data, "image/png")).run()
    _no_traceback(studio)
    said = _plain(" ".join(e.value for e in studio.error))
    assert name in said and case.says in said, said
    assert studio.button(key=ss.GENERATE).disabled
    compare = AppTest.from_file(str(ROOT / "app_pages" / "compare.py"), default_timeout=60).run()
    compare.text_area(key="compare_prompt").set_value("Make the sky stormy").run()
    compare.file_uploader(key="compare_uploads").set_value((name, data, "image/png")).run()
    _no_traceback(compare)
    assert not [b for b in compare.button if b.key == "compare_run"]
    assert case.says.split(";")[0].split(" (")[0] in _plain(" ".join(e.value for e in compare.error)) or (
        "image" in _plain(" ".join(e.value for e in compare.error)))
    _nothing_stored()


# --- masks and image links: refused by the runner before any call, and on the page ---------------------
MASKS = [
    Case("mask-bomb", "The mask is 30000×30000, 900 MP; the limit is 50 MP", lambda: png_of_size(30000, 30000)),
    Case("mask-not-png", "The mask must be a PNG file", lambda: _bytes("JPEG")),
    Case("mask-no-alpha", "no transparency", lambda: png(64, 64)),
    Case("mask-wrong-size", "must be the same size", lambda: _rgba_png(32, 32)),
    Case("mask-text", "The mask must be a PNG file", lambda: b"not a mask at all" * 10),
]

LINKS = [
    Case("link-loopback-port", "127.0.0.1 is this machine: a provider can never fetch it",
         lambda internal: f"http://127.0.0.1:{internal.port}/admin"),
    Case("link-localhost", "localhost is this machine", lambda internal: f"https://localhost:{internal.port}/"),
    Case("link-ipv6-loopback", "::1 is this machine", lambda internal: f"http://[::1]:{internal.port}/x.png"),
    Case("link-metadata-v4", "cloud metadata", lambda internal: "https://169.254.169.254/latest/meta-data/"),
    Case("link-metadata-v6", "cloud metadata", lambda internal: "https://[fd00:ec2::254]/latest/"),
    Case("link-metadata-name", "cloud metadata", lambda internal: "https://metadata.google.internal/v1/"),
    Case("link-private-10", "private-network address", lambda internal: "https://10.0.0.5/x.png"),
    Case("link-decimal-loopback", "this machine", lambda internal: "https://2130706433/x.png"),
    Case("link-mapped-v6", "this machine", lambda internal: "https://[::ffff:127.0.0.1]/x.png"),
    Case("link-cgnat", "carrier-grade NAT", lambda internal: "https://100.64.0.1/x.png"),
    Case("link-plain-http", "only https links", lambda internal: "http://cdn.example.com/x.png"),
    Case("link-userinfo", "user name or password", lambda internal: "https://me:pw@cdn.example.com/x.png"),
    Case("link-file-scheme", "must start with https", lambda internal: "file:///etc/passwd"),
    Case("link-javascript", "must start with https", lambda internal: "javascript:alert(document.cookie)"),
]


def _submit_refused(provider: str, request: ImageRequest, fake: FakeProvider) -> str:
    runner = JobRunner(Store(), fake_factory(fake), **FAST).start()
    try:
        with pytest.raises(InvalidRequest) as info:
            runner.submit(provider, request, endpoint="live")
    finally:
        runner.stop()
    return str(info.value)


@pytest.mark.parametrize("case", MASKS, ids=[c.id for c in MASKS])
def test_hostile_masks(case: Case, fake: FakeProvider):
    first = InputImage(data=png(64, 64), mime="image/png", name="photo.png")
    request = ImageRequest(prompt="edit", model="gpt-image-2", images=(first,),
                           mask=InputImage(data=case.make(), mime="image/png", name="mask.png"))
    said = _submit_refused("openai", request, fake)
    assert case.says in said, said
    assert fake.hits == 0
    _nothing_stored()


@pytest.mark.parametrize("case", LINKS, ids=[c.id for c in LINKS])
def test_hostile_links(case: Case, fake: FakeProvider, internal: FakeServer):
    url = case.make(internal)
    request = ImageRequest(prompt="edit", model="gpt-image-2", images=(InputImage(url=url),))
    said = _submit_refused("evolink", request, fake)
    assert case.says in said and "public https link" in said, said
    page = AppTest.from_file(str(ROOT / "app_pages" / "studio.py"), default_timeout=60).run()
    page.selectbox(key="provider").set_value("evolink").run()
    page.text_area(key=ss.PROMPT).set_value("Make it blue").run()
    page.text_area(key=ss.URLS).set_value(url).run()
    _no_traceback(page)
    assert case.says in _plain(" ".join(e.value for e in page.error))
    assert page.button(key=ss.GENERATE).disabled
    assert fake.hits == 0 and internal.hits == 0
    _nothing_stored()


# --- prompts ---------------------------------------------------------------------------------------
PROMPTS_REFUSED = [
    Case("prompt-empty", "Write a prompt", lambda: "   \n\t  "),
    Case("prompt-too-long", "The prompt is too long", lambda: "a fox " * 20000),
    Case("prompt-broken-braces", "Check the braces", lambda: "A poster saying {{headline"),
]
PROMPTS_ACCEPTED = [
    Case("prompt-markdown-image", "shown as text", lambda internal: f"A fox ![p](http://127.0.0.1:{internal.port}/p.png)"),
    Case("prompt-html", "shown as text", lambda internal: "<script>alert(1)</script><img src=x onerror=alert(1)>"),
    Case("prompt-directives", "shown as text", lambda internal: ":red[urgent] :material/warning: $x^2$ **bold**"),
    Case("prompt-formula", "shown as text", lambda internal: '=HYPERLINK("http://127.0.0.1:9/?"&A1,"click")'),
    Case("prompt-rtl-override", "shown as text", lambda internal: "A cat \u202egnp.exe\u202c in a hat"),
    Case("prompt-key-inside", "shown as text", lambda internal: f"A poster, use key {KEY} for it"),
]


@pytest.mark.parametrize("case", PROMPTS_REFUSED, ids=[c.id for c in PROMPTS_REFUSED])
def test_hostile_prompts_refused(case: Case):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.text_area(key=ss.PROMPT).set_value(case.make()).run()
    _no_traceback(at)
    assert at.button(key=ss.GENERATE).disabled
    reasons = _plain(" ".join(c.value for c in at.caption))
    assert case.says in reasons, reasons
    _nothing_stored()


def _run_live(fake: FakeProvider, provider: str, request: ImageRequest, key: str = KEY):
    store = Store()
    runner = JobRunner(store, fake_factory(fake, key), **FAST).start()
    try:
        (job_id,) = runner.submit(provider, request, endpoint="live").job_ids
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            job = store.get_job(job_id)
            if job is not None and job.done:
                return store, job
            time.sleep(0.05)
    finally:
        runner.stop()
    raise AssertionError("the job did not finish")


def _detail_page(job_id: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app_pages" / "history.py"), default_timeout=60)
    at.query_params["job"] = job_id
    at.run()
    _no_traceback(at)
    return at


def _markdown_of(at: AppTest) -> list[str]:
    return [e.value for e in (*at.subheader, *at.caption, *at.markdown, *at.error, *at.warning, *at.info)]


@pytest.mark.parametrize("case", PROMPTS_ACCEPTED, ids=[c.id for c in PROMPTS_ACCEPTED])
def test_hostile_prompts_accepted_are_shown_as_text(case: Case, fake: FakeProvider, internal: FakeServer):
    from core.exports import downloads

    prompt = case.make(internal)
    store, job = _run_live(fake, "openai", ImageRequest(prompt=prompt, model="gpt-image-2", quality="low"))
    assert job.status == "succeeded" and job.prompt == prompt  # a prompt is the person's: kept as given
    detail = _detail_page(job.id)
    assert not [m for m in _markdown_of(detail) if UNESCAPED.search(m)]
    gallery = AppTest.from_file(str(ROOT / "app_pages" / "history.py"), default_timeout=60).run()
    _no_traceback(gallery)
    assert not [m for m in _markdown_of(gallery) if UNESCAPED.search(m)]
    assert KEY not in page_text(detail) and KEY not in page_text(gallery)
    cell = downloads.csv_cell(prompt)
    assert not str(cell).startswith(("=", "+", "-", "@")) and KEY not in str(cell)
    assert internal.hits == 0


# --- provider answers ------------------------------------------------------------------------------------
def _results(*urls: str) -> Callable[[Seen], Any]:
    return lambda seen: json_answer({"id": "task-1", "status": "completed", "results": list(urls)})


def _script(fake: FakeProvider, internal: FakeServer, how: str) -> None:
    files = fake.files
    bomb = png_of_size(30000, 30000)
    scripts: dict[str, Callable[[], None]] = {
        "result-loopback": lambda: setattr(fake, "result_url", f"http://127.0.0.1:{internal.port}/secret"),
        "result-metadata": lambda: setattr(fake, "result_url", "https://169.254.169.254/latest/meta-data/"),
        "result-file-scheme": lambda: setattr(fake, "result_url", "file:///etc/passwd"),
        "result-userinfo": lambda: setattr(fake, "result_url", "https://a:b@cdn.example.com/x.png"),
        "result-redirect-inside": lambda: files.__setitem__(
            "/files/out.png", (302, {"Location": f"http://127.0.0.1:{internal.port}/x"}, b"")),
        "result-redirect-loop": lambda: files.__setitem__("/files/out.png", (302, {"Location": "/files/out.png"}, b"")),
        "result-bomb": lambda: files.__setitem__("/files/out.png", (200, {"Content-Type": "image/png"}, bomb)),
        "result-html": lambda: files.__setitem__(
            "/files/out.png", (200, {"Content-Type": "text/html"}, b"<html>INTERNAL-SECRET</html>")),
        "result-gone": lambda: files.__setitem__("/files/out.png", (404, {"Content-Type": "text/plain"}, b"gone")),
        "result-none": lambda: setattr(fake, "status", _results()),
        "status-failed-markdown": lambda: setattr(fake, "status", lambda seen: json_answer(
            {"id": "task-1", "status": "failed",
             "error": {"code": "x", "message": f"![p](http://127.0.0.1:{internal.port}/p.png) <script>x</script>"}})),
        "create-echoes-key": lambda: setattr(fake, "create", echo_key),
        "create-500": lambda: setattr(fake, "create", lambda seen: json_answer(
            {"error": {"message": "The server had an error while processing your request."}}, 500)),
        "create-502-html": lambda: setattr(fake, "create", lambda seen: (
            502, {"Content-Type": "text/html"}, b"<html><h1>502 Bad Gateway</h1></html>")),
        "create-not-json": lambda: setattr(fake, "create", lambda seen: (
            200, {"Content-Type": "application/json"}, b'{"data": [{"b64_json": "iVBOR')),
        "create-quota": lambda: setattr(fake, "create", lambda seen: json_answer(
            {"error": {"message": "You exceeded your quota", "code": "insufficient_quota"}}, 429)),
        "create-400-markdown": lambda: setattr(fake, "create", lambda seen: json_answer(
            {"error": {"message": f"Bad size ![p](http://127.0.0.1:{internal.port}/p.png)", "param": "size"}}, 400)),
        "create-b64-bomb": lambda: setattr(fake, "create", lambda seen: json_answer(
            {"data": [{"b64_json": base64.b64encode(bomb).decode()}]})),
        "create-b64-not-image": lambda: setattr(fake, "create", lambda seen: json_answer(
            {"data": [{"b64_json": base64.b64encode(b"<html>INTERNAL-SECRET</html>").decode()}]})),
        "create-no-data": lambda: setattr(fake, "create", lambda seen: json_answer({"created": 1, "data": []})),
    }
    scripts[how]()


ANSWERS = [
    # (case, provider): what the provider answered, and what the job then says.
    (Case("result-loopback", "was not taken in", None, "estimated"), "evolink"),
    (Case("result-metadata", "cloud metadata", None, "estimated"), "evolink"),
    (Case("result-file-scheme", "must start with https", None, "estimated"), "evolink"),
    (Case("result-userinfo", "user name or password", None, "estimated"), "evolink"),
    (Case("result-redirect-inside", "this machine", None, "estimated"), "evolink"),
    (Case("result-redirect-loop", "more than 5 times", None, "estimated"), "evolink"),
    (Case("result-bomb", "30000×30000, 900 MP; the limit is 50 MP", None, "estimated"), "evolink"),
    (Case("result-html", "is not an image", None, "estimated"), "evolink"),
    (Case("result-gone", "expired or is gone (HTTP 404)", None, "estimated"), "evolink"),
    (Case("result-none", "reported success but sent no image", None, "estimated"), "evolink"),
    (Case("status-failed-markdown", "EvoLink could not make the image", None, "released"), "evolink"),
    (Case("create-echoes-key", "refused the API key (HTTP 401)", None, "released"), "openai"),
    (Case("create-500", "server error (HTTP 500)", None, "estimated"), "openai"),
    (Case("create-502-html", "server error (HTTP 502)", None, "estimated"), "evolink"),
    (Case("create-not-json", "something this app cannot read", None, "estimated"), "openai"),
    (Case("create-quota", "out of credits", None, "released"), "openai"),
    (Case("create-400-markdown", "rejected the request", None, "released"), "openai"),
    (Case("create-b64-bomb", "30000×30000, 900 MP; the limit is 50 MP", None, "estimated"), "openai"),
    (Case("create-b64-not-image", "is not an image", None, "estimated"), "openai"),
    (Case("create-no-data", "answered without any image", None, "estimated"), "openai"),
]


@pytest.mark.parametrize(("case", "provider"), ANSWERS, ids=[c.id for c, _ in ANSWERS])
def test_hostile_provider_answers(case: Case, provider: str, fake: FakeProvider, internal: FakeServer):
    _script(fake, internal, case.id)
    request = ImageRequest(prompt="a lighthouse", model="gpt-image-2", quality="low")
    store, job = _run_live(fake, provider, request)
    assert job.status in ("failed", "unknown"), (job.status, job.error_message)
    said = f"{job.error_message} {job.error_detail or ''}"
    assert case.says in said, said
    # Charged as the facts say: refused before any work is released, work the provider did stays flagged.
    assert job.billed is not None
    if case.billing == "released":
        assert job.billed.usd == 0 and not job.billed.estimated
    else:
        assert job.billed.estimated and job.billed.usd and job.billed.usd > 0
    # Nothing stored that should not be: no image file, no key, nothing the internal service said.
    assert not job.images and not list((store.data_dir / "images").rglob("*.*"))
    assert KEY not in said and "INTERNAL-SECRET" not in said
    assert internal.hits == 0
    detail = _detail_page(job.id)
    shown = page_text(detail)
    assert KEY not in shown and "INTERNAL-SECRET" not in shown
    assert not [m for m in _markdown_of(detail) if UNESCAPED.search(m)]


def test_the_table_has_at_least_40_rows():
    rows = len(FILES) + len(MASKS) + len(LINKS) + len(PROMPTS_REFUSED) + len(PROMPTS_ACCEPTED) + len(ANSWERS)
    assert rows >= 40, rows
    ids = [c.id for c in FILES + MASKS + LINKS + PROMPTS_REFUSED + PROMPTS_ACCEPTED] + [c.id for c, _ in ANSWERS]
    assert len(set(ids)) == rows, "every row has its own id"

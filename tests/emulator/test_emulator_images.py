"""The emulator's pictures tell the story: the provider shows in the palette and composition, the
quality in the detail, the prompt in the headline and motifs, and an edit keeps what its mask keeps.

Provider, model, quality and price are never drawn (blind reviews show these images), and the
same request always gives the same bytes. A contact sheet of what this draws is kept in
test-artifacts/emulator_images_contact_sheet.png for people to look at.
"""

from __future__ import annotations

import base64
import io
import itertools
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from core.images.mask import mask_report
from emulator import images
from providers import registry
from tests.conftest import ARTIFACTS

PROVIDERS = ("openai", "coretoday", "apiframe", "evolink")
QUALITIES = ("low", "medium", "high", "xhigh", "max")
PROMPT = "A lighthouse on a rocky coast at dusk, gulls overhead. Oil painting, warm light."
EDIT = "/v1/images/edits"


def render(**kw: object) -> bytes:
    args = {"width": 1024, "height": 1024, "fmt": "png", "prompt": PROMPT, "provider": "openai", "quality": "high"}
    return images.render(**(args | kw))  # type: ignore[arg-type]


def rgb(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def below_band(img: Image.Image) -> Image.Image:
    """The scene: everything under the headline band (which takes well under a third)."""
    return img.crop((0, img.height // 3, img.width, img.height))


def edge_energy(img: Image.Image) -> float:
    """Mean absolute difference between neighbouring pixels (grey), across and down."""
    g = np.asarray(below_band(img).convert("L"), dtype=np.float32)
    return float(np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean())


def small(img: Image.Image) -> np.ndarray:
    return np.asarray(below_band(img).resize((32, 32), Image.Resampling.BOX), dtype=np.float32)


def mask_png(size: tuple[int, int], box: tuple[int, int, int, int] | None) -> bytes:
    """OpenAI's convention: opaque = keep, alpha 0 = edit here (an ellipse in ``box``; None keeps all)."""
    m = Image.new("RGBA", size, (0, 0, 0, 255))
    if box is not None:
        ImageDraw.Draw(m).ellipse(box, fill=(0, 0, 0, 0))
    out = io.BytesIO()
    m.save(out, "PNG")
    return out.getvalue()


def inverted(mask: bytes) -> bytes:
    """The same mask with edit and keep swapped: mask_report then measures the change inside."""
    m = Image.open(io.BytesIO(mask)).convert("RGBA")
    m.putalpha(m.getchannel("A").point(lambda v: 255 - v))
    out = io.BytesIO()
    m.save(out, "PNG")
    return out.getvalue()


# --- the same request, the same bytes ----------------------------------------------------------


def test_the_same_request_gives_identical_bytes():
    source = render(provider="coretoday")
    mask = mask_png((1024, 1024), (300, 300, 800, 800))
    for kw in (
        {},
        {"fmt": "jpeg", "quality": "low"},
        {"fmt": "webp", "transparent": True, "provider": "apiframe"},
        {"width": 1536, "height": 1024, "provider": "evolink", "quality": "max"},
        {"inputs": [source], "prompt": "add a red sun"},
        {"inputs": [source], "mask": mask, "prompt": "a flower garden", "quality": "medium"},
    ):
        assert render(**kw) == render(**kw), kw
    assert render(index=1) != render()


# --- providers look different ------------------------------------------------------------------


@pytest.mark.parametrize("prompt", [PROMPT, "a red fox in snow", "Quarterly report cover"])
def test_providers_differ_in_palette_and_composition(prompt):
    shots = {p: small(rgb(render(provider=p, prompt=prompt))) for p in PROVIDERS}
    for a, b in itertools.combinations(PROVIDERS, 2):
        colour = float(np.linalg.norm(shots[a].mean(axis=(0, 1)) - shots[b].mean(axis=(0, 1))))
        per_pixel = float(np.abs(shots[a] - shots[b]).mean())
        structure = float(np.corrcoef(shots[a].mean(axis=2).ravel(), shots[b].mean(axis=2).ravel())[0, 1])
        assert colour > 30, (a, b, colour)  # a different palette
        assert per_pixel > 40, (a, b, per_pixel)
        assert structure < 0.6, (a, b, structure)  # a different composition, not a recolouring


def test_an_unknown_provider_still_gets_a_picture():
    img = rgb(render(provider="someone-new", model="x"))
    assert img.size == (1024, 1024) and edge_energy(img) > 1


# --- quality reads at a glance -----------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_quality_raises_detail_step_by_step(provider):
    energy = [edge_energy(rgb(render(provider=provider, quality=q))) for q in QUALITIES]
    for (lo, a), (hi, b) in itertools.pairwise(zip(QUALITIES, energy, strict=True)):
        assert b > a * 1.15, f"{provider}: {hi} {b:.2f} is not clearly more detailed than {lo} {a:.2f}"
    assert energy[2] > 4 * energy[0]  # high against low: obvious, not a nuance


def test_low_is_blocky_and_auto_is_drawn_as_high():
    img = rgb(render(quality="low"))
    low = img.crop((0, (img.height // 3 + 7) // 8 * 8, img.width, img.height))  # whole 8 px blocks, below the band
    blocks = low.resize((low.width // 8, low.height // 8), Image.Resampling.NEAREST)
    assert blocks.resize(low.size, Image.Resampling.NEAREST).tobytes() == low.tobytes()
    assert render(quality="auto") == render(quality="high") == render(quality="")


# --- the headline, legible; no names ------------------------------------------------------------


@pytest.fixture
def drawn(monkeypatch):
    """Every string the renderer writes into pixels, with its size and place (the one text seam)."""
    calls: list[tuple[str, int, tuple[float, float]]] = []
    original = images._text

    def spy(draw, xy, text, size, fill):
        calls.append((text, size, xy))
        original(draw, xy, text, size, fill)

    monkeypatch.setattr(images, "_text", spy)
    return calls


def test_the_headline_is_large_wrapped_and_inside_the_image(drawn):
    prompt = "An isometric night market in Taipei with lanterns, food stalls and scooters in drizzle"
    render(prompt=prompt)
    texts = [t for t, _, _ in drawn]
    assert texts[0] == images.MARK
    lines = drawn[1:]
    assert len(lines) >= 2  # wrapped, not cut at the edge
    assert " ".join(t for t, _, _ in lines) == images.headline(prompt) == prompt
    for text, size, (x, _) in lines:
        assert size >= 40  # at 1024²: about 12 px or more on a 300 px thumbnail
        assert x >= 0 and x + images._width(text, size) <= 1024
    assert drawn[0][1] * 300 / 1024 >= 10  # the SIMULATED mark reads on a thumbnail too


def test_a_long_prompt_gives_a_headline_with_an_ellipsis(drawn):
    prompt = " ".join(["word"] * 40) + ". Second sentence."
    render(prompt=prompt, width=1024, height=1536)
    shown = " ".join(t for t, _, _ in drawn[1:])
    assert shown.endswith("…") and len(shown.split()) == images.HEADLINE_WORDS
    render(prompt="Supercalifragilisticexpialidocious" * 3)  # one word wider than the image: broken, not cut
    assert all(x + images._width(t, s) <= 1024 for t, s, (x, _) in drawn)


def test_the_headline_is_in_the_pixels():
    a, b = rgb(render(prompt="a quiet harbour")), rgb(render(prompt="a busy harbour at night"))
    band = (0, 0, 1024, 200)
    white = np.asarray(a.crop(band)).min(axis=2) > 235
    assert white.mean() > 0.02  # white type on the dark band
    assert np.abs(np.asarray(a.crop(band), dtype=int) - np.asarray(b.crop(band), dtype=int)).max(axis=2).mean() > 5


@pytest.mark.parametrize("provider", PROVIDERS)
def test_no_provider_model_quality_or_price_is_drawn(drawn, provider):
    source = render(provider="openai")
    for model, quality in (("gpt-image-2", "high"), ("gpt-image-1.5", "low"), ("gpt-image-2.5", "max")):
        render(provider=provider, model=model, quality=quality)
        render(provider=provider, model=model, quality=quality, inputs=[source], prompt="add a red sun")
        render(provider=provider, model=model, quality=quality, inputs=[source], prompt="add a boat",
               mask=mask_png((1024, 1024), (100, 400, 900, 1000)))
    headlines = [images.headline(p) for p in (PROMPT, "add a red sun", "add a boat")]
    forbidden = {provider, registry.label(provider).lower(), "gpt-image", "quality", "$", "usd", "credit"}
    forbidden |= set(QUALITIES)
    assert drawn
    for text, _, _ in drawn:
        assert text == images.MARK or any(text in h for h in headlines), text  # only the mark and the headline
        assert not any(word in text.lower() for word in forbidden), text


# --- edits -------------------------------------------------------------------------------------


def test_an_edit_without_a_mask_restyles_its_input():
    source = render(provider="coretoday", prompt="A quiet harbour with boats at noon")
    before = rgb(source)
    everything = mask_png((1024, 1024), None)  # keeps all: mask_report counts every changed pixel
    for provider in PROVIDERS:
        edited = render(provider=provider, prompt="add a red sun", inputs=[source])
        after = rgb(edited)
        kinship = float(np.corrcoef(small(after).mean(axis=2).ravel(), small(before).mean(axis=2).ravel())[0, 1])
        assert mask_report(source, edited, everything).fraction > 0.3, provider  # visibly restyled
        assert kinship > 0.4, (provider, kinship)  # still the input underneath


def test_a_masked_edit_keeps_everything_outside_the_mask():
    source = render(provider="apiframe", prompt="A city skyline with stars")
    mask = mask_png((1024, 1024), (380, 360, 980, 960))
    for provider, quality in (("openai", "high"), ("evolink", "low"), ("coretoday", "medium")):
        result = render(provider=provider, quality=quality, prompt="a flower garden", inputs=[source], mask=mask)
        assert mask_report(source, result, mask).changed_outside == 0
        assert mask_report(source, result, inverted(mask)).fraction > 0.5  # and inside, something new


def test_a_tiny_mask_still_marks_the_picture_simulated(drawn):
    source = render(provider="openai")
    result = render(inputs=[source], mask=mask_png((1024, 1024), (500, 500, 540, 540)), prompt="a star")
    assert images.MARK in [t for t, _, _ in drawn[-2:]]  # the corner mark, drawn after the edit
    assert mask_report(source, result, mask_png((1024, 1024), (500, 500, 540, 540))).fraction < 0.02


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_an_emulated_openai_masked_edit_keeps_the_unmasked_part(api, fmt):
    original = render(provider="coretoday", prompt="A quiet harbour with boats at noon")
    mask = mask_png((1024, 1024), (420, 380, 980, 940))
    resp = api.post(
        "openai",
        EDIT,
        data={"model": "gpt-image-2", "prompt": "Replace the boats with a flower garden", "output_format": fmt},
        files=[("image", ("a.png", original, "image/png")), ("mask", ("m.png", mask, "image/png"))],
    )
    assert resp.status_code == 200, resp.text[:300]
    result = base64.b64decode(resp.json()["data"][0]["b64_json"])
    spill = mask_report(original, result, mask)
    assert spill.fraction < 0.02 and not spill.resized
    assert mask_report(original, result, inverted(mask)).fraction > 0.5
    unmasked = api.post(
        "openai",
        EDIT,
        data={"model": "gpt-image-2", "prompt": "Replace the boats with a flower garden", "output_format": fmt},
        files=[("image", ("a.png", original, "image/png"))],
    )
    changed = base64.b64decode(unmasked.json()["data"][0]["b64_json"])
    assert mask_report(original, changed, mask).fraction > 0.3  # without the mask the whole picture changes


# --- speed -------------------------------------------------------------------------------------


def test_renders_stay_fast():
    render()  # warm the font cache
    started = time.perf_counter()
    render()
    assert time.perf_counter() - started < 0.5  # typically ~50 ms
    started = time.perf_counter()
    render(width=3840, height=2160, quality="max", provider="evolink")
    assert time.perf_counter() - started < 2.0  # typically ~0.3 s


# --- for people: a contact sheet ---------------------------------------------------------------


def test_contact_sheet_for_people():
    """4 providers × 3 qualities of one prompt, and one edit before and after (kept for review)."""
    thumb, gap, head = 300, 12, 34
    font = ImageFont.load_default(size=18)
    cols = ("low", "medium", "high")
    sheet = Image.new("RGB", (gap + (thumb + gap) * 4, head + (thumb + gap) * 5 + gap), (246, 246, 248))
    draw = ImageDraw.Draw(sheet)
    for r, provider in enumerate(PROVIDERS):
        for c, quality in enumerate(cols):
            x, y = gap + c * (thumb + gap), head + r * (thumb + gap)
            sheet.paste(rgb(render(provider=provider, quality=quality)).resize((thumb, thumb)), (x, y))
            if r == 0:
                draw.text((x, 8), quality, font=font, fill=(30, 30, 30))
        draw.text((gap + 3 * (thumb + gap), head + r * (thumb + gap) + thumb // 2), registry.label(provider),
                  font=font, fill=(30, 30, 30))
    source = render(provider="coretoday", prompt="A quiet harbour with boats at noon")
    mask = mask_png((1024, 1024), (420, 380, 980, 940))
    shown = Image.open(io.BytesIO(source)).convert("RGBA")
    outline = Image.new("RGBA", shown.size, (0, 0, 0, 0))
    ImageDraw.Draw(outline).ellipse((420, 380, 980, 940), outline=(255, 255, 255, 255), width=6)
    shown.alpha_composite(outline)
    steps = [
        ("before, mask outlined", shown.convert("RGB")),
        ("edit, no mask", rgb(render(provider="openai", prompt="Add a red sun in the sky", inputs=[source]))),
        ("masked edit (OpenAI)", rgb(render(provider="openai", prompt="Replace the boats with a flower garden",
                                            inputs=[source], mask=mask))),
        ("masked edit (Apiframe)", rgb(render(provider="apiframe", prompt="Replace the boats with a flower garden",
                                              inputs=[source], mask=mask))),
    ]
    y = head + 4 * (thumb + gap)
    for c, (caption, img) in enumerate(steps):
        x = gap + c * (thumb + gap)
        sheet.paste(img.resize((thumb, thumb)), (x, y))
        draw.text((x + 4, y + thumb - 24), caption, font=font, fill=(255, 255, 255), stroke_width=2,
                  stroke_fill=(0, 0, 0))
    ARTIFACTS.mkdir(exist_ok=True)
    sheet.save(ARTIFACTS / "emulator_images_contact_sheet.png")

"""core.images.recipe: recipes embedded in PNG/JPEG/WEBP and read back, without touching pixels or secrets."""

from __future__ import annotations

import datetime as dt
import io
import random
from decimal import Decimal

import pytest
from PIL import Image

from core.images import recipe
from providers.errors import InvalidRequest

RECIPE = {
    "prompt": 'A bilingual poster: "Spring Design Festival" / 春のデザインフェスティバル <clean> & bold',
    "provider": "openai",
    "model": "gpt-image-2",
    "params": {"size": "3:2", "quality": "medium", "output_format": "png", "n": 1},
    "cost": {"usd": "0.0412", "estimated": True},
}


def encode(im: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt.upper(), **params)
    return out.getvalue()


def picture(mode="RGB", size=(96, 64)) -> Image.Image:
    im = Image.linear_gradient("L").resize(size).convert(mode)
    if mode == "RGBA":
        im.putalpha(Image.linear_gradient("L").rotate(90).resize(size))
    return im


def pixels(data: bytes) -> bytes:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im.tobytes()


CASES = [
    ("png", "RGB", {}),
    ("png", "RGBA", {}),
    ("jpeg", "RGB", {"quality": 90}),
    ("webp", "RGB", {"quality": 80}),  # simple lossy (VP8)
    ("webp", "RGBA", {"quality": 80}),  # extended (VP8X + ALPH)
    ("webp", "RGBA", {"lossless": True}),  # simple lossless (VP8L) with alpha
]


@pytest.mark.parametrize(("fmt", "mode", "params"), CASES)
def test_round_trip_keeps_recipe_and_pixels(fmt, mode, params):
    original = encode(picture(mode), fmt, **params)
    embedded = recipe.embed(original, fmt, RECIPE)
    assert recipe.extract(embedded) == RECIPE
    assert pixels(embedded) == pixels(original)  # spliced into the container, not re-encoded
    im = Image.open(io.BytesIO(embedded))
    assert im.format.lower() == fmt and im.mode == mode


@pytest.mark.parametrize(("fmt", "mode", "params"), CASES)
def test_embedding_again_replaces_the_recipe(fmt, mode, params):
    once = recipe.embed(encode(picture(mode), fmt, **params), fmt, RECIPE)
    twice = recipe.embed(once, fmt, {"prompt": "second"})
    assert recipe.extract(twice) == {"prompt": "second"}
    assert twice.count(b"image-studio") == 1 or fmt != "png"
    assert twice.count(recipe.XMP_NAMESPACE.encode()) <= 1


def test_secrets_never_go_in():
    dirty = {
        **RECIPE,
        "api_key": "sk-live-abcdefghijklmnopqrstuvwxyz",
        "headers": {"Authorization": "Bearer abcdefghijklmnop", "X-API-Key": "cdt_abcdefghijklmnop"},
        "provider_settings": {"client_secret": "hunter2", "base_url": "https://api.openai.com"},
        "note": "pasted by mistake: sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX",
    }
    out = recipe.extract(recipe.embed(encode(picture(), "png"), "png", dirty))
    text = repr(out)
    assert "api_key" not in out and "hunter2" not in text and "abcdefghijklmnop" not in text
    assert "ABCDEFGHIJKLMNOPQRSTUVWX" not in text and "[redacted]" in out["note"]
    assert out["headers"] == {}
    assert out["provider_settings"] == {"base_url": "https://api.openai.com"}
    assert out["prompt"] == RECIPE["prompt"]


def test_sanitize_makes_values_json_friendly():
    clean = recipe.sanitize(
        {
            "cost": Decimal("0.0412"),
            "created": dt.datetime(2026, 5, 1, 12, 30),
            "tags": ("a", "b"),
            "image": b"\x89PNG...",
        }
    )
    assert clean == {"cost": "0.0412", "created": "2026-05-01T12:30:00", "tags": ["a", "b"], "image": "<7 bytes>"}


def test_jpeg_keeps_exif_icc_and_c2pa_segments():
    exif = Image.Exif()
    exif[0x010F] = "Camera Maker"
    icc = b"\x00" * 128  # opaque to Pillow; only has to survive
    data = encode(picture(), "jpeg", exif=exif.tobytes(), icc_profile=icc)
    # A C2PA manifest lives in APP11 JUMBF boxes; fake one after the header segments.
    payload = b"JP\x00\x01jumbc2pa"
    c2pa = b"\xff\xeb" + (2 + len(payload)).to_bytes(2, "big") + payload
    data = data[:2] + c2pa + data[2:]
    assert recipe.has_c2pa(data)
    embedded = recipe.embed(data, "jpg", RECIPE)
    im = Image.open(io.BytesIO(embedded))
    assert im.getexif()[0x010F] == "Camera Maker"
    assert im.info.get("icc_profile") == icc
    assert c2pa in embedded and recipe.has_c2pa(embedded)
    assert recipe.extract(embedded) == RECIPE


def test_jpeg_merges_into_existing_xmp():
    foreign = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" dc:format="image/jpeg"/>'
        b"</rdf:RDF></x:xmpmeta>"
    )
    embedded = recipe.embed(encode(picture(), "jpeg", xmp=foreign), "jpeg", RECIPE)
    assert recipe.extract(embedded) == RECIPE
    assert b'dc:format="image/jpeg"' in embedded


def test_long_prompts_fit_jpeg_compressed_or_shortened():
    long_prompt = ("静かな工房で茶碗を手に取る年配の陶芸家、柔らかな午後の光。" * 1100)[:32000]
    embedded = recipe.embed(encode(picture(), "jpeg"), "jpeg", {**RECIPE, "prompt": long_prompt})
    assert recipe.extract(embedded)["prompt"] == long_prompt  # zlib makes repetitive text fit

    rng = random.Random(1)
    noisy = "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(32000))  # incompressible
    out = recipe.extract(recipe.embed(encode(picture(), "jpeg"), "jpeg", {**RECIPE, "prompt": noisy}))
    assert out["prompt_truncated"] is True
    assert noisy.startswith(out["prompt"]) and len(out["prompt"]) > 1000
    assert out["model"] == "gpt-image-2"


def test_png_and_webp_take_long_prompts_whole():
    long_prompt = "x" * 40000
    for fmt in ("png", "webp"):
        data = recipe.embed(encode(picture(), fmt), fmt, {"prompt": long_prompt})
        assert recipe.extract(data) == {"prompt": long_prompt}


def test_png_keeps_other_text_chunks():
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Software", "Some tool")
    embedded = recipe.embed(encode(picture(), "png", pnginfo=info), "png", RECIPE)
    im = Image.open(io.BytesIO(embedded))
    assert im.info["Software"] == "Some tool"
    assert im.info[recipe.KEYWORD]  # Pillow sees our iTXt chunk too


def test_content_decides_the_format():
    png = encode(picture(), "png")
    assert recipe.extract(recipe.embed(png, "webp", RECIPE)) == RECIPE


def test_extract_returns_none_without_a_recipe():
    assert recipe.extract(encode(picture(), "png")) is None
    assert recipe.extract(encode(picture(), "jpeg")) is None
    assert recipe.extract(encode(picture(), "webp")) is None
    assert recipe.extract(b"hello") is None
    assert recipe.extract(b"\x89PNG\r\n\x1a\n\x00\x00garbage") is None


def test_embed_refuses_what_is_not_an_image():
    with pytest.raises(InvalidRequest):
        recipe.embed(b"plain text", "png", RECIPE)

"""validation.validate: every refusal names the field and says what to do."""

from __future__ import annotations

import io
from datetime import date

import pytest
from PIL import Image

from providers.apiframe import MODELS as APIFRAME
from providers.coretoday import MODELS as CORETODAY
from providers.errors import InvalidRequest, ModelUnavailable
from providers.evolink import MODELS as EVOLINK
from providers.openai import MODELS as OPENAI
from providers.types import ImageRequest, InputImage
from providers.validation import check_free_size, is_experimental_size, sniff_format, validate, wire_size

TODAY = date(2026, 11, 22)
GPT2 = OPENAI["gpt-image-2"]


def png(w: int = 64, h: int = 64, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h), (10, 20, 30, 0) if mode == "RGBA" else (10, 20, 30)[: len(mode)]).save(buf, "PNG")
    return buf.getvalue()


def encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 10, 10)).save(buf, fmt)
    return buf.getvalue()


def req(**kw) -> ImageRequest:
    base = {"prompt": "a red fox in the snow", "model": "gpt-image-2", "size": "1024x1024"}
    base.update(kw)
    return ImageRequest(**base)


def refused(request: ImageRequest, caps=GPT2, **kw) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        validate(request, caps, today=TODAY, **kw)
    return info.value


def test_a_plain_request_passes_everywhere():
    validate(req(), GPT2, today=TODAY)
    validate(req(size="3:2"), CORETODAY["gpt-image-2"], today=TODAY)
    validate(req(size="2:3"), APIFRAME["gpt-image-2"], today=TODAY)
    validate(req(size="16:9", resolution="2K"), EVOLINK["gpt-image-2"], today=TODAY)


@pytest.mark.parametrize("prompt", ["", "   \n"])
def test_empty_prompt(prompt):
    err = refused(req(prompt=prompt))
    assert err.field == "prompt"
    assert "empty" in str(err) and "describe" in str(err)


def test_prompt_over_a_character_limit_says_by_how_much():
    err = refused(req(prompt="x" * 2001), APIFRAME["gpt-image-2"])
    assert err.field == "prompt"
    assert "2,001 characters" in str(err) and "2,000" in str(err) and "Shorten" in str(err)
    validate(req(prompt="x" * 2000, size="1:1"), APIFRAME["gpt-image-2"], today=TODAY, can_upload=False)


def test_prompt_token_limit_is_about_four_characters_a_token():
    caps = EVOLINK["gpt-image-1"]
    validate(req(model="gpt-image-1", size="1:1", prompt="x" * 8000), caps, today=TODAY)
    err = refused(req(model="gpt-image-1", size="1:1", prompt="x" * 8004), caps)
    assert "tokens" in str(err)


def test_quality_not_offered_lists_the_choices():
    err = refused(req(quality="xhigh"))
    assert err.field == "quality" and err.value == "xhigh"
    assert "low, medium, high" in str(err)
    validate(req(quality="xhigh"), OPENAI["gpt-image-2.5-flare"], today=TODAY)


def test_quality_auto_is_accepted_where_the_provider_has_no_auto():
    validate(req(quality="auto", size="1:1"), EVOLINK["gpt-image-1"], today=TODAY)


@pytest.mark.parametrize(
    ("size", "why"),
    [
        ("1000x1000", "multiples of 16"),
        ("4096x1024", "at most 3840"),
        ("3840x1024", "3 times"),
        ("800x800", "at least 655,360"),
        ("1024x1024x", "a custom size like 1536x864"),
    ],
)
def test_gpt_image_2_free_size_rules(size, why):
    err = refused(req(size=size))
    assert err.field == "size"
    assert why in str(err)


def test_free_size_limits():
    assert check_free_size("1536x864") is None
    assert check_free_size("3840x2160") is None
    assert check_free_size("2160x3840") is None
    assert check_free_size("1024x640") is None  # exactly 655,360 px
    assert "multiples of 16" in check_free_size("1030x1024")
    assert is_experimental_size("3840x2160") and not is_experimental_size("2560x1440")
    validate(req(size="3840x2160"), GPT2, today=TODAY)  # experimental, still allowed


def test_older_models_take_only_the_three_sizes():
    caps = OPENAI["gpt-image-1.5"]
    err = refused(req(model="gpt-image-1.5", size="2048x2048"), caps)
    assert err.field == "size" and "1024x1024" in str(err)


def test_ratios_and_pixels_translate_where_the_provider_speaks_the_other():
    assert wire_size("1:1", GPT2) == "1024x1024"
    assert wire_size("3:2", OPENAI["gpt-image-1.5"]) == "1536x1024"
    assert wire_size("1536x1024", CORETODAY["gpt-image-2"]) == "3:2"
    assert wire_size("16:9", GPT2) is None
    assert wire_size("16:9", EVOLINK["gpt-image-2"]) == "16:9"
    assert wire_size("2048x1152", EVOLINK["gpt-image-2"]) == "2048x1152"
    assert wire_size("2048x1152", CORETODAY["gpt-image-2"]) is None
    err = refused(req(size="16:9"), CORETODAY["gpt-image-2"])
    assert "1:1, 3:2, 2:3" in str(err)


def test_resolution_only_where_offered_and_only_with_a_ratio():
    err = refused(req(size="1:1", resolution="2K"), CORETODAY["gpt-image-2"])
    assert err.field == "resolution"
    err = refused(req(size="1536x1024", resolution="2K"), EVOLINK["gpt-image-2"])
    assert err.field == "resolution" and "ratio" in str(err)
    err = refused(req(size="1:1", resolution="8K"), EVOLINK["gpt-image-2"])
    assert "1K, 2K, 4K" in str(err)


def test_background_transparent_needs_png_or_webp_and_a_model_that_offers_it():
    err = refused(req(background="transparent"))
    assert err.field == "background"  # gpt-image-2: transparent is preview-only, not offered
    caps = OPENAI["gpt-image-1.5"]
    validate(req(model="gpt-image-1.5", background="transparent"), caps, today=TODAY)
    err = refused(req(model="gpt-image-1.5", background="transparent", output_format="jpeg"), caps)
    assert err.field == "background" and "png or webp" in str(err)


def test_output_format_and_compression():
    err = refused(req(output_format="gif"))
    assert err.field == "output_format"
    err = refused(req(output_compression=80))
    assert err.field == "output_compression" and "JPEG and WebP" in str(err)
    err = refused(req(output_format="jpeg", output_compression=101))
    assert "0 to 100" in str(err)
    validate(req(output_format="webp", output_compression=0), GPT2, today=TODAY)
    err = refused(req(output_format="jpeg", output_compression=50, size="1:1"), APIFRAME["gpt-image-2"])
    assert err.field == "output_compression"


def test_a_parameter_the_provider_does_not_take_accepts_only_its_neutral_value():
    caps = EVOLINK["gpt-image-2"]
    validate(req(size="1:1", background="auto", moderation="auto", output_format="png"), caps, today=TODAY)
    err = refused(req(size="1:1", background="opaque"), caps)
    assert err.field == "background" and "does not let you choose" in str(err)
    err = refused(req(size="1:1", moderation="low"), caps)
    assert err.field == "moderation"


def test_moderation_on_openai_edits_is_accepted_and_not_sent():
    image = InputImage(data=png(), mime="image/png")
    validate(req(moderation="low", images=(image,)), GPT2, today=TODAY)
    err = refused(req(moderation="strict"))
    assert err.field == "moderation"


def test_n_range():
    err = refused(req(n=11))
    assert err.field == "n" and "1 to 10" in str(err)
    refused(req(n=0))


def test_input_fidelity():
    image = InputImage(data=png(), mime="image/png")
    validate(req(model="gpt-image-1.5", images=(image,), input_fidelity="high"), OPENAI["gpt-image-1.5"], today=TODAY)
    err = refused(req(model="gpt-image-1-mini", images=(image,), input_fidelity="high"), OPENAI["gpt-image-1-mini"])
    assert err.field == "input_fidelity"
    # The openai package 3.57: mini "supports only low"; "For gpt-image-2, omit this parameter".
    mini = OPENAI["gpt-image-1-mini"]
    validate(req(model="gpt-image-1-mini", images=(image,), input_fidelity="low"), mini, today=TODAY)
    for fidelity in ("low", "high"):
        assert refused(req(images=(image,), input_fidelity=fidelity), GPT2).field == "input_fidelity"


def test_input_images_by_magic_bytes_not_name():
    gif = InputImage(data=encoded("GIF"), mime="image/png", name="looks-like.png")
    err = refused(req(images=(gif,)))
    assert err.field == "images" and "GIF" in str(err) and "Convert" in str(err)
    jpeg = InputImage(data=encoded("JPEG"), mime="image/png", name="really.png")
    validate(req(images=(jpeg,)), GPT2, today=TODAY)
    junk = InputImage(data=b"hello world", name="x.png")
    assert "not an image" in str(refused(req(images=(junk,))))
    assert sniff_format(encoded("WEBP")) == "webp"


def test_input_image_count_and_size():
    image = InputImage(data=png(), mime="image/png")
    err = refused(req(images=(image,) * 17))
    assert err.field == "images" and "at most 16" in str(err)
    big = InputImage(data=png() + b"\0" * (10 * 1024 * 1024), mime="image/png")
    err = refused(req(model="gpt-image-1", size="1:1", images=(big,)), EVOLINK["gpt-image-1"], can_upload=True)
    assert "10 MB" in str(err)


def test_local_files_on_a_url_only_provider_without_an_uploader():
    image = InputImage(data=png(), mime="image/png")
    err = refused(req(size="1:1", images=(image,)), APIFRAME["gpt-image-2"], can_upload=False)
    assert str(err).startswith("Apiframe accepts images only as public URLs")
    assert "emulator" in str(err)
    validate(req(size="1:1", images=(image,)), APIFRAME["gpt-image-2"], can_upload=True, today=TODAY)
    url = InputImage(url="https://example.com/input.jpg")
    validate(req(size="1:1", images=(url,)), APIFRAME["gpt-image-2"], can_upload=False, today=TODAY)
    err = refused(req(size="1:1", images=(InputImage(url="ftp://x/y.png"),)), APIFRAME["gpt-image-2"])
    assert "https://" in str(err)


def test_mask_rules():
    image = InputImage(data=png(64, 64), mime="image/png")
    good = InputImage(data=png(64, 64, "RGBA"), mime="image/png")
    validate(req(images=(image,), mask=good), GPT2, today=TODAY)
    assert "no transparency" in str(refused(req(images=(image,), mask=InputImage(data=png(64, 64)))))
    err = refused(req(images=(image,), mask=InputImage(data=png(32, 64, "RGBA"))))
    assert "32x64" in str(err) and "64x64" in str(err) and "same size" in str(err)
    err = refused(req(images=(image,), mask=InputImage(data=encoded("JPEG"))))
    assert "PNG" in str(err)
    assert "needs an image" in str(refused(req(mask=good)))
    err = refused(req(size="1:1", images=(image,), mask=good), APIFRAME["gpt-image-2"])
    assert err.field == "mask" and "does not take a mask" in str(err)
    big = InputImage(data=png(64, 64, "RGBA") + b"\0" * (4 * 1024 * 1024))
    assert "under 4 MB" in str(refused(req(images=(image,), mask=big)))


def test_a_retired_model_names_its_replacement():
    with pytest.raises(ModelUnavailable) as info:
        validate(req(model="gpt-image-1", size="1024x1024"), OPENAI["gpt-image-1"], today=TODAY)
    assert info.value.replacement == "gpt-image-2"
    assert "2026-10-23" in str(info.value) and "gpt-image-2" in str(info.value)
    assert "OpenAI recommends gpt-image-2.5-sunburst or gpt-image-2.5-flare" in str(info.value)
    caps = OPENAI["gpt-image-1.5"]
    validate(req(model="gpt-image-1.5"), caps, today=date(2026, 11, 30))
    with pytest.raises(ModelUnavailable) as info:
        validate(req(model="gpt-image-1.5"), caps, today=date(2026, 12, 1))
    # The message says what OpenAI recommends and what this app picks, so it never contradicts OpenAI.
    assert str(info.value) == (
        "GPT Image 1.5 was shut down on 2026-12-01. OpenAI recommends gpt-image-2.6-sunburst or "
        "gpt-image-2.6-flare; this app switches to gpt-image-2, whose price is confirmed."
    )


def test_errors_carry_field_value_and_allowed():
    err = refused(req(quality="ultra"))
    assert (err.field, err.value) == ("quality", "ultra")
    assert list(err.allowed) == list(GPT2.qualities)
    assert err.sent is False

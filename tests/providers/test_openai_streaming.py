"""OpenAIProvider streaming against the emulator (real sockets): previews, the final image, a cut stream."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageChops, ImageStat

from providers.catalogue import load_catalogue
from providers.errors import InvalidRequest, ProviderUnavailable
from providers.openai import MODELS
from providers.types import ImageRequest, InputImage, PartialImage
from providers.validation import validate


def gen(**kw) -> ImageRequest:
    base = {"prompt": "a lighthouse at dusk, watercolour", "model": "gpt-image-2", "size": "1024x1024",
            "quality": "low", "partial_images": 2}
    base.update(kw)
    return ImageRequest(**base)


def last_job(emu):
    return max(emu.store.jobs.values(), key=lambda j: j.created_at)


def distance(data: bytes, final: bytes) -> float:
    """Mean pixel difference from the final image: each preview is closer to it than the last."""
    with Image.open(io.BytesIO(data)) as a, Image.open(io.BytesIO(final)) as b:
        return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean)


def test_previews_arrive_before_the_final_image_and_sharpen(make, emu):
    seen: list[PartialImage] = []
    status = make("openai").submit_streaming(gen(), on_preview=seen.append)
    assert [p.index for p in seen] == [0, 1] and all(p.format == "png" for p in seen)
    assert status.state == "succeeded" and len(status.images) == 1
    final = status.images[0].data
    far, near = (distance(p.data, final) for p in seen)
    assert far > near > 0, (far, near)
    assert status.raw["previews_received"] == 2
    request = last_job(emu).request
    assert request["stream"] is True and request["partial_images"] == 2


def test_the_usage_bills_each_preview_as_the_catalogue_says(make, emu):
    plain = make("openai").submit(gen(partial_images=0))
    streamed = make("openai").submit_streaming(gen(), on_preview=lambda p: None)
    each = load_catalogue().partial_image_tokens("openai")
    assert each == 100
    assert streamed.billed["output_tokens"] == plain.billed["output_tokens"] + 2 * each
    assert "stream" not in last_job(emu).request or emu.stats()["creates"]["openai"] == 2


def test_an_edit_streams_its_previews_too(make, emu, png_bytes):
    seen: list[PartialImage] = []
    image = InputImage(data=png_bytes, mime="image/png", name="photo.png")
    status = make("openai").submit_streaming(gen(images=(image,), partial_images=1), on_preview=seen.append)
    assert len(seen) == 1 and status.state == "succeeded"
    assert last_job(emu).request["stream"] == "true"  # multipart: a text field


def test_a_stream_cut_after_the_first_preview_is_sent_once_and_said_so(make, emu, log):
    emu.inject("openai", "drop_after_create", mode="close")
    seen: list[PartialImage] = []
    with pytest.raises(ProviderUnavailable) as info:
        make("openai").submit_streaming(gen(), on_preview=seen.append)
    err = info.value
    assert err.sent is True and err.code == "stream_cut" and "previews received: 1" in (err.detail or "")
    assert "may have been made and charged" in str(err)
    assert len(seen) == 1
    assert emu.stats()["creates"]["openai"] == 1 and len(log("openai", "POST")) == 1


def test_a_stream_that_stalls_past_the_read_timeout_is_a_cut_stream(make, emu):
    emu.set_latency(0.6)
    emu.inject("openai", "slow", delay=3.0)
    seen: list[PartialImage] = []
    with pytest.raises(ProviderUnavailable) as info:
        make("openai", timeout=1.0).submit_streaming(gen(), on_preview=seen.append)
    assert info.value.code == "stream_cut" and info.value.sent is True and len(seen) == 1


def test_no_previews_asked_or_several_images_is_an_ordinary_call(make, emu):
    seen: list[PartialImage] = []
    make("openai").submit_streaming(gen(partial_images=0), on_preview=seen.append)
    assert "stream" not in last_job(emu).request
    make("openai").submit_streaming(gen(n=2), on_preview=seen.append)  # events carry no image index
    assert "stream" not in last_job(emu).request and seen == []


def test_the_blocking_path_consumes_the_stream_too(make, emu):
    images = make("openai").generate(gen())
    assert len(images) == 1 and last_job(emu).request["stream"] is True


def test_previews_are_checked_before_any_call():
    caps = MODELS["gpt-image-2"]
    with pytest.raises(InvalidRequest) as info:
        validate(gen(partial_images=4), caps)
    assert info.value.field == "partial_images" and "0 to 3" in str(info.value)
    from providers.coretoday import MODELS as CT

    with pytest.raises(InvalidRequest) as info:
        validate(gen(partial_images=2), CT["gpt-image-2"])
    assert "no previews" in str(info.value)


def test_the_estimate_counts_the_previews_at_the_guides_100_tokens_each():
    cat, caps = load_catalogue(), MODELS["gpt-image-2"]
    plain = cat.estimate("openai", gen(partial_images=0), caps)
    streamed = cat.estimate("openai", gen(partial_images=2), caps)
    line = next(ln for ln in streamed.lines if ln.label.startswith("streamed previews"))
    assert line.quantity == 200
    assert streamed.total.amount == plain.total.amount + line.amount
    # 100 image output tokens each, at the model's image output price (the guide's "Partial images cost")
    output = next(ln for ln in streamed.lines if ln.label.startswith("output image tokens"))
    assert line.unit_price == output.unit_price and line.amount == 200 * output.unit_price
    assert plain.confirmed and streamed.confirmed


def test_a_safety_identifier_goes_out_hashed_and_is_never_stored_in_params(make, emu):
    from providers.openai import safety_identifier

    who = safety_identifier("Ana@Example.com ")
    assert who == safety_identifier("ana@example.com") and "example" not in who
    request = gen(partial_images=0).with_(safety_identifier=who)
    status = make("openai").submit(request)
    assert last_job(emu).request["safety_identifier"] == who and status.raw["safety_identifier"] == who
    assert "safety_identifier" not in request.params() and who not in repr(request)
    make("coretoday").submit(gen(partial_images=0, model="gpt-image-2").with_(safety_identifier=who))
    assert "safety_identifier" not in str(last_job(emu).request)  # a provider without the field never gets it

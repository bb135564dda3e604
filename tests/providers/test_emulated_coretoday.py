"""CoreTodayProvider against the emulator (real sockets)."""

from __future__ import annotations

import pytest

from providers.errors import (
    AuthError,
    InvalidRequest,
    JobCanceled,
    JobFailed,
    ModerationBlocked,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
)
from providers.polling import wait
from providers.types import ImageRequest, InputImage

# The seed's "Photorealistic Portrait" example (coretoday-gpt-image-2-en.txt).
SEED_PROMPT = (
    "A photorealistic close-up portrait of an elderly Japanese ceramicist with deep wrinkles and a warm smile, "
    "carefully inspecting a freshly glazed tea bowl in his rustic sun-drenched workshop."
)


def gen(**kw) -> ImageRequest:
    base = {"prompt": "a lighthouse at dusk", "model": "gpt-image-2", "size": "1:1", "quality": "low"}
    base.update(kw)
    return ImageRequest(**base)


def job(emu, job_id):
    return emu.store.jobs[job_id]


def test_the_seed_example_through_the_adapter(make, emu):
    provider = make("coretoday")
    status = provider.submit(gen(prompt=SEED_PROMPT, size="3:2", quality="high", output_format="webp"))
    assert status.state == "queued" and status.job_id.startswith("pred_")
    sent = job(emu, status.job_id).request
    assert sent["model"] == "openai/gpt-image-2"
    assert {k: sent["input"][k] for k in ("prompt", "aspect_ratio", "quality", "output_format")} == {
        "prompt": SEED_PROMPT,
        "aspect_ratio": "3:2",
        "quality": "high",
        "output_format": "webp",
    }
    assert sent["input"]["number_of_images"] == 1
    done = wait(lambda: provider.status(status.job_id), expected_seconds=0.3, deadline_seconds=10)
    assert done.state == "succeeded" and len(done.result_urls) == 1
    [image] = provider.result(done)
    assert image.format == "webp" and image.source_url == done.result_urls[0]


def test_generate_and_pixels_map_to_a_ratio(make, emu):
    out = make("coretoday").generate(gen(size="1024x1536"))
    assert len(out) == 1
    [only] = emu.store.jobs.values()
    assert only.request["input"]["aspect_ratio"] == "2:3"


def test_a_batch_is_one_call_per_image(make, emu):
    out = make("coretoday").generate(gen(n=2))
    assert len(out) == 2
    assert emu.stats()["creates"]["coretoday"] == 2


def test_submit_refuses_more_than_one_image_per_call(make, log):
    with pytest.raises(InvalidRequest) as info:
        make("coretoday").submit(gen(n=2))
    assert info.value.field == "n"
    assert log("coretoday") == []


def test_edit_with_a_local_file_uses_the_upload_endpoint(make, emu, log, png_bytes):
    image = InputImage(data=png_bytes, mime="image/png", name="photo.png")
    out = make("coretoday", uploader=None).generate(gen(images=(image,)))
    assert len(out) == 1
    assert len(log("coretoday", "POST", "/predictions/upload")) == 1
    [only] = emu.store.jobs.values()
    assert only.inputs and only.request["input"]["input_images"]


def test_edit_with_a_url(make, emu, log, png_bytes):
    url = emu.upload(png_bytes, "image/png")
    make("coretoday").generate(gen(images=(InputImage(url=url),)))
    assert [r["path"] for r in log("coretoday", "POST")] == ["/coretoday/v1/predictions"]
    [only] = emu.store.jobs.values()
    assert only.request["input"]["input_images"] == [url]


def test_status_polls_are_retried_after_429_and_500(make, emu, log):
    provider = make("coretoday")
    status = provider.submit(gen())
    emu.inject("coretoday", "rate_limit", op="status", retry_after=0.2)
    emu.inject("coretoday", "server_error", op="status")
    st = provider.status(status.job_id)
    assert st.job_id == status.job_id
    assert len(log("coretoday", "GET", "/predictions/")) == 3
    assert 0.2 in make.sleeps  # the Retry-After was honoured


@pytest.mark.parametrize("kind", ["server_error", "drop_after_create"])
def test_a_submit_that_failed_after_sending_is_not_resent(make, emu, log, kind):
    emu.inject("coretoday", kind)
    with pytest.raises(ProviderUnavailable) as info:
        make("coretoday").generate(gen())
    assert info.value.sent is True
    assert len(log("coretoday", "POST")) == 1
    assert emu.stats()["creates"]["coretoday"] == (1 if kind == "drop_after_create" else 0)


def test_rate_limit_and_quota_on_submit(make, emu):
    emu.inject("coretoday", "rate_limit", retry_after=5)
    with pytest.raises(RateLimited) as info:
        make("coretoday").submit(gen())
    assert info.value.retry_after == 5.0
    emu.inject("coretoday", "quota")
    with pytest.raises(QuotaExceeded):
        make("coretoday").submit(gen())


def test_auth(make):
    with pytest.raises(AuthError) as info:
        make("coretoday", api_key="invalid").submit(gen())
    assert "CORETODAY_API_KEY" in str(info.value)


def test_failed_job_carries_the_providers_message(make, emu):
    emu.inject("coretoday", "job_failed")
    with pytest.raises(JobFailed) as info:
        make("coretoday").generate(gen())
    assert "Prediction failed" in str(info.value) and info.value.sent is True


def test_moderated_job(make, emu):
    emu.inject("coretoday", "moderation")
    with pytest.raises(ModerationBlocked) as info:
        make("coretoday").generate(gen())
    assert "safety" in str(info.value)


def test_cancel(make, emu):
    emu.set_latency(5)
    provider = make("coretoday")
    status = provider.submit(gen())
    assert status.can_cancel and provider.caps("gpt-image-2").can_cancel
    provider.cancel(status.job_id)
    st = provider.status(status.job_id)
    assert st.state == "canceled" and isinstance(st.error, JobCanceled)
    with pytest.raises(JobCanceled):
        provider.result(st)


def test_expired_result_url_is_a_clear_error(make, emu):
    emu.inject("coretoday", "expired_url")
    with pytest.raises(JobFailed) as info:
        make("coretoday").generate(gen())
    assert info.value.code == "result_expired" and "expired" in str(info.value)


def test_result_download_retried_after_a_garbled_answer(make, emu, log):
    emu.inject("coretoday", "malformed", op="result")
    out = make("coretoday").generate(gen())
    assert out[0].format == "png"
    assert len(log("coretoday", "GET", "/_files/")) == 2


def test_unknown_job_is_job_not_found(make):
    with pytest.raises(JobFailed) as info:
        make("coretoday").status("pred_nope")
    assert info.value.code == "job_not_found"

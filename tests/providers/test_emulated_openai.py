"""OpenAIProvider against the emulator (real sockets)."""

from __future__ import annotations

import pytest

from providers.errors import (
    AuthError,
    InvalidRequest,
    ModelUnavailable,
    ModerationBlocked,
    ProviderTimeout,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
)
from providers.types import ImageRequest, InputImage


def gen(**kw) -> ImageRequest:
    base = {
        "prompt": "a lighthouse at dusk, watercolour",
        "model": "gpt-image-2",
        "size": "1024x1024",
        "quality": "low",
    }
    base.update(kw)
    return ImageRequest(**base)


def last_job(emu):
    return max(emu.store.jobs.values(), key=lambda j: j.created_at)


def test_generate_returns_decoded_images_and_usage(make, emu):
    provider = make("openai")
    status = provider.submit(gen(output_format="webp", output_compression=80))
    assert status.done and status.state == "succeeded" and status.job_id is None
    assert [i.format for i in status.images] == ["webp"]
    assert status.billed["output_tokens"] > 0 and "input_tokens_details" in status.billed
    assert provider.result(status) == list(status.images)
    job = last_job(emu)
    assert job.request["model"] == "gpt-image-2"
    assert job.request["moderation"] == "auto"


def test_a_ratio_goes_out_as_pixels_and_n_is_one_call(make, emu):
    images = make("openai").generate(gen(size="3:2", n=2))
    assert len(images) == 2 and all(i.format == "png" for i in images)
    assert emu.stats()["creates"]["openai"] == 1
    assert last_job(emu).request["size"] == "1536x1024"


def test_base_url_ending_in_v1_is_not_doubled(make, emu):
    provider = make("openai", base_url=emu.url("openai") + "/v1/")
    assert provider.generate(gen())


def test_edit_with_local_files_and_a_mask(make, emu, png_bytes, mask_bytes):
    image = InputImage(data=png_bytes, mime="image/png", name="photo.png")
    request = gen(
        images=(image, image), mask=InputImage(data=mask_bytes, mime="image/png"), moderation="low", size="auto"
    )
    out = make("openai").generate(request)
    assert len(out) == 1 and out[0].format == "png"
    job = last_job(emu)
    assert job.request["images"] == 2 and job.request["mask"] is True
    assert "moderation" not in job.request  # edits take no moderation: not sent


def test_edit_with_an_image_url_is_downloaded_and_sent_as_a_file(make, emu, png_bytes):
    url = emu.upload(png_bytes, "image/png")
    out = make("openai").generate(gen(images=(InputImage(url=url),)))
    assert len(out) == 1
    assert last_job(emu).request["images"] == 1


@pytest.mark.today("2026-11-30")
def test_input_fidelity_only_where_the_model_takes_it(make, emu, png_bytes):
    image = InputImage(data=png_bytes, mime="image/png")
    make("openai").generate(gen(model="gpt-image-1.5", images=(image,), input_fidelity="high"))
    assert last_job(emu).request["input_fidelity"] == "high"


def test_no_key_is_an_auth_error_before_anything_is_sent(make, emu, log, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    provider = make("openai", api_key=None)
    with pytest.raises(AuthError) as info:
        provider.generate(gen())
    assert "OPENAI_API_KEY" in str(info.value) and info.value.sent is False
    assert log("openai") == []


def test_key_from_the_environment(make, emu, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    assert make("openai", api_key=None).generate(gen())


def test_a_rejected_key(make):
    with pytest.raises(AuthError) as info:
        make("openai", api_key="invalid-key").submit(gen())
    assert "OPENAI_API_KEY" in str(info.value) and "Settings" in str(info.value)
    assert info.value.sent is True and info.value.status_code == 401
    assert "Incorrect API key" in info.value.detail


def test_validation_runs_before_the_network(make, log):
    provider = make("openai")
    with pytest.raises(InvalidRequest):
        provider.generate(gen(size="1000x1000"))
    with pytest.raises(ModelUnavailable) as info:
        provider.generate(gen(model="gpt-image-1", size="1024x1024"))
    assert info.value.replacement == "gpt-image-2"
    assert log("openai") == []


def test_rate_limit_on_submit_is_not_retried(make, emu, log):
    emu.inject("openai", "rate_limit", retry_after=3)
    with pytest.raises(RateLimited) as info:
        make("openai").submit(gen())
    assert info.value.retry_after == 3.0 and info.value.sent is True
    assert len(log("openai", "POST")) == 1


def test_insufficient_quota_is_quota_exceeded(make, emu, log):
    emu.inject("openai", "quota")
    with pytest.raises(QuotaExceeded) as info:
        make("openai").submit(gen())
    assert "billing" in str(info.value) and len(log("openai", "POST")) == 1


def test_server_error_is_unavailable_and_not_resent(make, emu, log):
    emu.inject("openai", "server_error")
    with pytest.raises(ProviderUnavailable) as info:
        make("openai").submit(gen())
    assert info.value.sent is True and info.value.status_code == 500
    assert len(log("openai", "POST")) == 1


def test_dropped_after_create_is_sent_and_not_resent(make, emu, log):
    emu.inject("openai", "drop_after_create", mode="close")
    with pytest.raises(ProviderUnavailable) as info:
        make("openai").submit(gen())
    assert info.value.sent is True
    assert emu.stats()["creates"]["openai"] == 1
    assert len(log("openai", "POST")) == 1


def test_malformed_answer(make, emu):
    emu.inject("openai", "malformed")
    with pytest.raises(ProviderUnavailable) as info:
        make("openai").submit(gen())
    assert info.value.code == "malformed"


def test_slow_answer_times_out_as_sent(make, emu):
    emu.inject("openai", "slow", delay=2.0)
    with pytest.raises(ProviderTimeout) as info:
        make("openai", timeout=0.5).submit(gen())
    assert info.value.sent is True and "may still have been created" in str(info.value)


@pytest.mark.parametrize(
    ("stage", "billed", "words"), [("input", False, "prompt or an input image"), ("output", None, "withheld")]
)
def test_moderation_blocked_by_stage(make, emu, stage, billed, words):
    emu.inject("openai", "moderation", stage=stage)
    with pytest.raises(ModerationBlocked) as info:
        make("openai").submit(gen())
    assert info.value.stage == stage and info.value.billed is billed
    assert words in str(info.value) and "safety system" in info.value.detail


def test_a_model_past_its_shutdown_is_refused_before_anything_is_sent(make, emu, log):
    with pytest.raises(ModelUnavailable) as info:
        make("openai").generate(gen(model="gpt-image-1.5"))
    assert info.value.model == "gpt-image-1.5" and info.value.sent is False
    assert "2026-12-01" in str(info.value)
    assert log("openai") == []


def test_the_emulator_refuses_a_retired_model_the_way_openai_does(make, emu, log):
    # submit() skips validation, so the request reaches the emulator, which answers by date.
    with pytest.raises(ModelUnavailable) as info:
        make("openai").submit(gen(model="gpt-image-1-mini"))
    assert info.value.status_code == 404 and info.value.code == "model_not_found"
    assert [r["status"] for r in log("openai", "POST")] == [404]


def test_model_not_found_names_the_replacement(make, emu):
    emu.inject("openai", "model_not_found")
    with pytest.raises(ModelUnavailable) as info:
        make("openai").submit(gen(model="gpt-image-1.5"))
    assert info.value.model == "gpt-image-1.5" and info.value.replacement == "gpt-image-2"
    assert "gpt-image-2" in str(info.value)


def test_cannot_cancel_or_poll(make):
    provider = make("openai")
    with pytest.raises(InvalidRequest):
        provider.cancel("x")
    with pytest.raises(InvalidRequest):
        provider.status("x")


def test_a_failed_generation_is_a_sent_server_error(make, emu, log):
    emu.inject("openai", "job_failed")
    with pytest.raises(ProviderUnavailable) as info:
        make("openai").submit(gen())
    assert info.value.sent is True and info.value.status_code == 500
    assert "The server had an error" in info.value.detail
    assert len(log("openai", "POST")) == 1

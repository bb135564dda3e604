"""EvoLinkProvider against the emulator (real sockets)."""

from __future__ import annotations

import pytest

from providers.errors import (
    AuthError,
    InvalidRequest,
    JobFailed,
    ModelUnavailable,
    ModerationBlocked,
    ProviderTimeout,
    ProviderUnavailable,
    QuotaExceeded,
)
from providers.polling import wait
from providers.types import ImageRequest, InputImage


def gen(**kw) -> ImageRequest:
    base = {"prompt": "a lighthouse at dusk", "model": "gpt-image-2", "size": "1:1", "quality": "low"}
    base.update(kw)
    return ImageRequest(**base)


def test_the_seed_example_through_the_adapter(make, emu):
    # evolink-gpt-image-1-ko.txt: {"model": "gpt-image-1", "prompt": "A beautiful colorful sunset over the ocean"}
    provider = make("evolink")
    status = provider.submit(
        ImageRequest(prompt="A beautiful colorful sunset over the ocean", model="gpt-image-1", size="1024x1024")
    )
    assert status.job_id.startswith("task-unified-") and status.state == "queued"
    assert status.estimated_seconds == 1 and status.progress == 0
    assert status.billed and status.billed["credits_reserved"] > 0
    assert status.can_cancel is False  # reported by EvoLink, but no cancel endpoint is documented
    sent = emu.store.jobs[status.job_id].request
    assert sent == {
        "model": "gpt-image-1",
        "prompt": "A beautiful colorful sunset over the ocean",
        "size": "1024x1024",
        "n": 1,
    }  # quality auto: EvoLink's default (high) applies
    done = wait(lambda: provider.status(status.job_id), expected_seconds=status.estimated_seconds, deadline_seconds=10)
    assert done.state == "succeeded" and len(done.result_urls) == 1
    assert provider.result(done)[0].data


def test_gpt_image_2_ratio_with_resolution(make, emu):
    out = make("evolink").generate(gen(size="16:9", resolution="2K", quality="medium"))
    assert len(out) == 1
    [job] = emu.store.jobs.values()
    assert job.request["size"] == "16:9" and job.request["resolution"] == "2K"
    assert job.request["quality"] == "medium"


def test_gpt_image_2_free_size(make, emu):
    make("evolink").generate(gen(size="1536x864"))
    [job] = emu.store.jobs.values()
    assert (job.params["width"], job.params["height"]) == (1536, 864)


def test_batch_in_one_task(make, emu):
    out = make("evolink").generate(gen(n=2))
    assert len(out) == 2 and emu.stats()["creates"]["evolink"] == 1


def test_edit_with_local_files_via_the_uploader(make, emu, png_bytes):
    image = InputImage(data=png_bytes, mime="image/png")
    out = make("evolink").generate(gen(images=(image,)))
    assert len(out) == 1
    [job] = emu.store.jobs.values()
    assert len(job.request["image_urls"]) == 1 and job.inputs


def test_local_files_without_an_uploader_are_refused(make, log, png_bytes):
    with pytest.raises(InvalidRequest) as info:
        make("evolink", uploader=None).generate(gen(images=(InputImage(data=png_bytes, mime="image/png"),)))
    assert str(info.value).startswith("EvoLink accepts images only as public URLs")
    assert log("evolink") == []


def test_status_polls_retried_after_429_and_500(make, emu, log):
    provider = make("evolink")
    status = provider.submit(gen())
    emu.inject("evolink", "rate_limit", op="status", retry_after=0.1)
    emu.inject("evolink", "server_error", op="status")
    assert provider.status(status.job_id).job_id == status.job_id
    assert len(log("evolink", "GET", "/tasks/")) == 3


def test_status_poll_gives_up_after_bounded_attempts(make, emu, log):
    provider = make("evolink")
    status = provider.submit(gen())
    emu.inject("evolink", "server_error", op="status", count=10)
    with pytest.raises(ProviderUnavailable) as info:
        provider.status(status.job_id)
    assert info.value.sent is True
    assert len(log("evolink", "GET", "/tasks/")) == 4


@pytest.mark.parametrize("kind", ["server_error", "drop_after_create"])
def test_a_submit_that_failed_after_sending_is_not_resent(make, emu, log, kind):
    emu.inject("evolink", kind)
    with pytest.raises(ProviderUnavailable):
        make("evolink").submit(gen())
    assert len(log("evolink", "POST")) == 1
    assert emu.stats()["creates"]["evolink"] == (1 if kind == "drop_after_create" else 0)


def test_content_policy_is_moderation_not_billed(make, emu):
    emu.inject("evolink", "moderation")
    with pytest.raises(ModerationBlocked) as info:
        make("evolink").generate(gen())
    assert info.value.billed is False and info.value.code == "content_policy_violation"


def test_other_failures_keep_the_code(make, emu):
    emu.inject("evolink", "job_failed")
    with pytest.raises(JobFailed) as info:
        make("evolink").generate(gen())
    assert info.value.code == "service_error"
    assert "upstream service error" in str(info.value)


def test_expired_result_url(make, emu):
    emu.inject("evolink", "expired_url")
    with pytest.raises(JobFailed) as info:
        make("evolink").generate(gen())
    assert info.value.code == "result_expired"
    assert "Run the job again" in str(info.value)


def test_quota_auth_and_model_not_found(make, emu):
    emu.inject("evolink", "quota")
    with pytest.raises(QuotaExceeded):
        make("evolink").submit(gen())
    with pytest.raises(AuthError) as info:
        make("evolink", api_key="invalid-1").submit(gen())
    assert "EVOLINK_API_KEY" in str(info.value)
    emu.inject("evolink", "model_not_found")
    with pytest.raises(ModelUnavailable) as info:
        make("evolink").submit(gen(model="gpt-image-1", size="1:1"))
    assert info.value.model == "gpt-image-1" and info.value.replacement == "gpt-image-2"


def test_no_cancel(make):
    provider = make("evolink")
    assert provider.caps().can_cancel is False
    with pytest.raises(InvalidRequest):
        provider.cancel("task-1")


def test_generate_deadline(make, emu):
    emu.set_latency(30)
    with pytest.raises(ProviderTimeout) as info:
        make("evolink").generate(gen(), deadline_seconds=1.5)
    assert "1.5 seconds" in str(info.value)

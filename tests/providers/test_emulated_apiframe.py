"""ApiframeProvider against the emulator (real sockets)."""

from __future__ import annotations

import pytest

from emulator import Emulator
from providers.apiframe import ApiframeProvider
from providers.errors import AuthError, InvalidRequest, JobFailed, ModerationBlocked, QuotaExceeded
from providers.polling import wait
from providers.types import ImageRequest, InputImage

# The seed's quick-start request (apiframe-gpt-image-2-ko.txt), with its input URL hosted on loopback.
SEED_PROMPT = "a sleek silver sports car on a coastal highway at sunset, hyper-realistic"


def gen(**kw) -> ImageRequest:
    base = {"prompt": "a lighthouse at dusk", "model": "gpt-image-2", "size": "1:1", "quality": "low"}
    base.update(kw)
    return ImageRequest(**base)


def test_the_seed_example_through_the_adapter(make, emu, png_bytes):
    url = emu.upload(png_bytes, "image/png")
    provider = make("apiframe", uploader=None)
    status = provider.submit(gen(prompt=SEED_PROMPT, quality="auto", images=(InputImage(url=url),)))
    assert status.state == "queued" and status.job_id
    sent = emu.store.jobs[status.job_id].request
    assert sent["model"] == "gpt-image-2" and sent["prompt"] == SEED_PROMPT
    params = sent["gptImage2Params"]
    assert params["input_images"] == url  # one URL as a string, like the seed
    assert (params["quality"], params["background"], params["number_of_images"]) == ("auto", "auto", 1)
    done = wait(lambda: provider.status(status.job_id), expected_seconds=0.3, deadline_seconds=10)
    assert done.state == "succeeded" and done.billed == {"credits": 23}
    assert done.progress == 100
    assert len(provider.result(done)) == 1


def test_every_create_carries_an_idempotency_key(make, emu):
    provider = make("apiframe")
    first = provider.submit(gen())
    second = provider.submit(gen(), idempotency_key="my-key")
    assert emu.store.jobs[first.job_id].idempotency_key
    assert emu.store.jobs[second.job_id].idempotency_key == "my-key"
    again = provider.submit(gen(), idempotency_key="my-key")
    assert again.job_id == second.job_id
    assert emu.stats()["creates"]["apiframe"] == 2


def test_batch_in_one_call(make, emu):
    out = make("apiframe").generate(gen(n=2, output_format="jpeg"))
    assert len(out) == 2 and {i.format for i in out} == {"jpeg"}
    assert emu.stats()["creates"]["apiframe"] == 1


def test_gpt_image_1_5_uses_its_own_parameter_key(make, emu, png_bytes):
    image = InputImage(data=png_bytes, mime="image/png")
    status = make("apiframe").submit(
        gen(
            model="gpt-image-1.5", background="transparent", output_format="png", images=(image,), input_fidelity="high"
        )
    )
    sent = emu.store.jobs[status.job_id].request
    assert "gptImageParams" in sent and "gptImage2Params" not in sent
    assert sent["gptImageParams"]["background"] == "transparent"


def test_local_files_go_through_the_uploader(make, emu, png_bytes):
    image = InputImage(data=png_bytes, mime="image/png")
    out = make("apiframe").generate(gen(images=(image, image)))
    assert len(out) == 1
    [job] = emu.store.jobs.values()
    assert isinstance(job.request["gptImage2Params"]["input_images"], list)
    assert len(job.inputs) == 2


def test_local_files_without_an_uploader_are_refused_before_sending(make, log, png_bytes):
    provider = make("apiframe", uploader=None)
    with pytest.raises(InvalidRequest) as info:
        provider.generate(gen(images=(InputImage(data=png_bytes, mime="image/png"),)))
    assert str(info.value).startswith("Apiframe accepts images only as public URLs")
    with pytest.raises(InvalidRequest):  # submit() alone refuses too
        provider.submit(gen(images=(InputImage(data=png_bytes, mime="image/png"),)))
    assert log("apiframe") == []


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        ("drop_after_create", {}),
        ("drop_after_create", {"mode": "close"}),
        ("server_error", {}),
        ("rate_limit", {"retry_after": 0}),
    ],
)
def test_submit_is_retried_with_the_same_key_and_makes_one_job(make, emu, log, kind, extra):
    emu.inject("apiframe", kind, **extra)
    status = make("apiframe").submit(gen(), idempotency_key="k-123")
    posts = log("apiframe", "POST")
    assert len(posts) == 2
    assert emu.stats()["creates"]["apiframe"] == 1
    assert emu.store.jobs[status.job_id].idempotency_key == "k-123"


def test_quota_is_not_retried(make, emu, log):
    emu.inject("apiframe", "quota")
    with pytest.raises(QuotaExceeded) as info:
        make("apiframe").submit(gen())
    assert "credits" in str(info.value) and len(log("apiframe", "POST")) == 1


def test_auth(make):
    with pytest.raises(AuthError) as info:
        make("apiframe", api_key="invalid").submit(gen())
    assert "APIFRAME_API_KEY" in str(info.value)


def test_content_policy_failure_is_moderation_and_not_billed(make, emu):
    emu.inject("apiframe", "moderation")
    with pytest.raises(ModerationBlocked) as info:
        make("apiframe").generate(gen())
    assert info.value.billed is False and "content policy" in str(info.value)


def test_other_failures_are_job_failed(make, emu):
    emu.inject("apiframe", "job_failed")
    with pytest.raises(JobFailed) as info:
        make("apiframe").generate(gen())
    assert "could not be generated" in str(info.value)


def test_status_poll_retried_after_server_error(make, emu, log):
    provider = make("apiframe")
    status = provider.submit(gen())
    emu.inject("apiframe", "server_error", op="status")
    assert provider.status(status.job_id).job_id == status.job_id
    assert len(log("apiframe", "GET", "/jobs/")) == 2


def test_cannot_cancel(make):
    provider = make("apiframe")
    assert not provider.caps().can_cancel
    with pytest.raises(InvalidRequest):
        provider.cancel("x")


def test_result_as_a_plain_url_string(tmp_path, png_bytes):
    with Emulator(port=0, data_dir=tmp_path, latency=0.2, apiframe_result_shape="string") as emu:
        with ApiframeProvider("k", emu.url("apiframe")) as provider:
            status = provider.submit(gen())
            done = wait(lambda: provider.status(status.job_id), expected_seconds=0.2, deadline_seconds=10)
            assert isinstance(done.raw["result"], str)
            assert len(done.result_urls) == 1
            assert provider.result(done)[0].format == "png"


def test_base_url_with_v2_is_accepted(make, emu):
    assert make("apiframe", base_url=emu.url("apiframe") + "/v2").generate(gen())

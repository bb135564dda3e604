"""Every injected fault, on every asynchronous provider, mapped to its typed error
with the right retry behaviour (real sockets to the emulator).

Creates are sent once (core.today, EvoLink) unless the provider honours an
idempotency key (Apiframe: resent with the same key, still one job). Status polls
and result downloads are retried on transient failures.
"""

from __future__ import annotations

import time

import pytest

from providers.errors import (
    AuthError,
    JobFailed,
    ModelUnavailable,
    ModerationBlocked,
    ProviderTimeout,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
)
from providers.types import ImageRequest

ASYNC = ["coretoday", "apiframe", "evolink"]
ONCE = ["coretoday", "evolink"]  # creates never resent

REQUEST = ImageRequest(prompt="a lighthouse at dusk", model="gpt-image-2", size="1:1", quality="low")


def creates(emu, name: str) -> int:
    return emu.stats()["creates"][name]


# --- submit -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ONCE)
@pytest.mark.parametrize(
    ("kind", "error", "jobs"),
    [
        ("rate_limit", RateLimited, 0),
        ("quota", QuotaExceeded, 0),
        ("server_error", ProviderUnavailable, 0),
        ("malformed", ProviderUnavailable, 0),
        ("auth", AuthError, 0),
        ("model_not_found", ModelUnavailable, 0),
        ("drop_after_create", ProviderUnavailable, 1),
    ],
)
def test_submit_faults_are_typed_and_never_resent(make, emu, log, name, kind, error, jobs):
    emu.inject(name, kind, retry_after=2)
    with pytest.raises(error) as info:
        make(name).submit(REQUEST)
    assert info.value.sent is True
    assert len(log(name, "POST")) == 1
    assert creates(emu, name) == jobs
    if kind == "rate_limit":
        assert info.value.retry_after == 2.0


@pytest.mark.parametrize("name", ONCE)
def test_a_slow_submit_times_out_as_sent_and_is_not_resent(make, emu, log, name):
    emu.inject(name, "slow", delay=1.5)
    with pytest.raises(ProviderTimeout) as info:
        make(name, timeout=0.4).submit(REQUEST)
    assert info.value.sent is True
    time.sleep(1.3)  # let the server finish the request it was still handling
    # (Whether the server still made the job once the client hung up is its business:
    # the emulator does not, a real provider may. Either way it was sent once.)
    assert len(log(name, "POST")) == 1


@pytest.mark.parametrize("kind", ["rate_limit", "server_error", "malformed", "drop_after_create"])
def test_apiframe_submit_is_resent_with_the_same_key(make, emu, log, kind):
    emu.inject("apiframe", kind, retry_after=0)
    status = make("apiframe").submit(REQUEST, idempotency_key="same-key")
    assert status.job_id and len(log("apiframe", "POST")) == 2
    assert creates(emu, "apiframe") == 1


def test_apiframe_slow_submit_is_resent_and_answers_the_first_job(make, emu, log):
    emu.inject("apiframe", "slow", delay=1.2)
    provider = make("apiframe", timeout=0.4, retry_sleep=time.sleep, max_attempts=6)
    status = provider.submit(REQUEST, idempotency_key="slow-key")
    assert creates(emu, "apiframe") == 1
    assert emu.store.jobs[status.job_id].idempotency_key == "slow-key"
    assert len(log("apiframe", "POST")) >= 2


@pytest.mark.parametrize("kind", ["quota", "auth", "model_not_found"])
def test_apiframe_does_not_resend_what_waiting_cannot_fix(make, emu, log, kind):
    emu.inject("apiframe", kind)
    with pytest.raises((QuotaExceeded, AuthError, ModelUnavailable)):
        make("apiframe").submit(REQUEST)
    assert len(log("apiframe", "POST")) == 1 and creates(emu, "apiframe") == 0


# --- status -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ASYNC)
@pytest.mark.parametrize("kind", ["rate_limit", "server_error", "malformed", "drop_after_create", "slow"])
def test_status_polls_are_retried(make, emu, log, name, kind):
    provider = make(name, timeout=0.5)
    status = provider.submit(REQUEST)
    emu.inject(name, kind, op="status", retry_after=0.1, delay=1.0)
    again = provider.status(status.job_id)
    assert again.job_id == status.job_id
    if kind == "slow":
        time.sleep(0.7)  # the timed-out first poll is logged once the server finishes it
    polls = log(name, "GET")
    assert len(polls) == 2, polls


@pytest.mark.parametrize("name", ASYNC)
@pytest.mark.parametrize(("kind", "error"), [("quota", QuotaExceeded), ("auth", AuthError)])
def test_status_faults_that_waiting_cannot_fix(make, emu, log, name, kind, error):
    provider = make(name)
    status = provider.submit(REQUEST)
    emu.inject(name, kind, op="status")
    with pytest.raises(error):
        provider.status(status.job_id)
    assert len(log(name, "GET")) == 1


# --- the job itself -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ASYNC)
@pytest.mark.parametrize(("kind", "error"), [("job_failed", JobFailed), ("moderation", ModerationBlocked)])
def test_job_failures(make, emu, name, kind, error):
    emu.inject(name, kind)
    with pytest.raises(error) as info:
        make(name).generate(REQUEST)
    assert info.value.sent is True and info.value.provider == name
    assert creates(emu, name) == 1
    if kind == "moderation" and name != "coretoday":
        assert info.value.billed is False  # failed jobs are refunded / not charged


@pytest.mark.parametrize("name", ASYNC)
def test_a_job_failing_mid_way(make, emu, name):
    emu.set_latency(1.5)
    provider = make(name)
    status = provider.submit(REQUEST)
    emu.inject(name, "job_failed", op="status")
    st = provider.status(status.job_id)
    assert st.state == "failed" and isinstance(st.error, JobFailed)


# --- results ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ASYNC)
@pytest.mark.parametrize("kind", ["rate_limit", "server_error", "malformed", "drop_after_create"])
def test_result_downloads_are_retried(make, emu, log, name, kind):
    emu.inject(name, kind, op="result", retry_after=0)
    images = make(name).generate(REQUEST)
    assert len(images) == 1 and images[0].format == "png"
    assert len(log(name, "GET", "/_files/")) == 2


@pytest.mark.parametrize("name", ASYNC)
def test_expired_result_url(make, emu, log, name):
    emu.inject(name, "expired_url", op="result")
    with pytest.raises(JobFailed) as info:
        make(name).generate(REQUEST)
    assert info.value.code == "result_expired" and "Run the job again" in str(info.value)
    assert len(log(name, "GET", "/_files/")) == 1

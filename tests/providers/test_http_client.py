"""HttpClient: retry policy, typed errors with ``sent``, and where the key may go.

The client's own seam (``httpx.MockTransport``) is used here; the adapters are
tested against the emulator over real sockets.
"""

from __future__ import annotations

import email.utils
import json
import time

import httpx
import pytest

from providers.errors import (
    AuthError,
    InvalidRequest,
    JobFailed,
    ProviderTimeout,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
)
from providers.http import USER_AGENT, HttpClient, image_format, is_loopback_host, parse_retry_after, strip_suffix

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


class Script:
    """A handler answering from a list (the last answer repeats), recording every request."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer


def client(script: Script, **kw) -> tuple[HttpClient, list[float]]:
    sleeps: list[float] = []
    kw.setdefault("auth_headers", {"X-API-Key": "secret"})
    http = HttpClient(
        provider="demo",
        label="Demo",
        base_url="https://api.demo.test/base",
        key_env="DEMO_API_KEY",
        transport=httpx.MockTransport(script),
        sleep=sleeps.append,
        **kw,
    )
    return http, sleeps


def ok(body=None) -> httpx.Response:
    return httpx.Response(200, json=body if body is not None else {"ok": True})


def err(status: int, body=None, headers=None) -> httpx.Response:
    return httpx.Response(status, json=body or {"error": {"message": f"status {status}"}}, headers=headers)


# --- GETs are retried ---------------------------------------------------------------------
@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_get_is_retried_on_transient_statuses(status):
    script = Script(err(status), err(status), ok({"v": 1}))
    http, sleeps = client(script)
    assert http.get_json("/jobs/1") == {"v": 1}
    assert len(script.requests) == 3 and len(sleeps) == 2


def test_get_retry_honours_retry_after_seconds_and_caps_it():
    script = Script(err(429, headers={"Retry-After": "2"}), err(429, headers={"Retry-After": "9999"}), ok())
    http, sleeps = client(script, retry_after_cap=30)
    http.get_json("/jobs/1")
    assert sleeps == [2.0, 30.0]


def test_retry_after_as_an_http_date():
    when = email.utils.formatdate(time.time() + 5, usegmt=True)
    assert 3.5 <= parse_retry_after({"retry-after": when}) <= 5.0
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    past = email.utils.formatdate(time.time() - 50, usegmt=True)
    assert parse_retry_after({"retry-after": past}) == 0.0


def test_backoff_is_exponential_with_jitter_and_bounded():
    script = Script(err(503))
    http, sleeps = client(script, max_attempts=5, backoff_initial=0.5, backoff_max=8)
    with pytest.raises(ProviderUnavailable) as info:
        http.get_json("/jobs/1")
    assert len(script.requests) == 5  # bounded attempts
    assert len(sleeps) == 4
    for n, s in enumerate(sleeps):
        assert 0.75 * 0.5 * 2**n <= s <= 0.5 * 2**n
    assert info.value.sent is True and info.value.status_code == 503


def test_get_is_retried_on_connection_errors():
    script = Script(httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), ok({"v": 2}))
    http, _ = client(script)
    assert http.get_json("/jobs/1") == {"v": 2}


def test_quota_429_is_never_retried():
    body = {
        "error": {
            "message": "You exceeded your current quota",
            "type": "insufficient_quota",
            "code": "insufficient_quota",
        }
    }
    script = Script(err(429, body))
    http, sleeps = client(script)
    with pytest.raises(QuotaExceeded) as info:
        http.get_json("/jobs/1")
    assert len(script.requests) == 1 and sleeps == []
    assert "exceeded your current quota" in info.value.detail


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthError), (403, AuthError), (402, QuotaExceeded), (400, InvalidRequest), (404, InvalidRequest)],
)
def test_client_errors_are_not_retried(status, error):
    script = Script(err(status))
    http, sleeps = client(script)
    with pytest.raises(error) as info:
        http.get_json("/jobs/1")
    assert len(script.requests) == 1 and sleeps == []
    assert info.value.sent is True


def test_auth_error_says_where_the_key_goes():
    http, _ = client(Script(err(401)))
    with pytest.raises(AuthError) as info:
        http.get_json("/x")
    assert "DEMO_API_KEY" in str(info.value) and "secrets.toml" in str(info.value) and "Settings" in str(info.value)


def test_invalid_request_keeps_the_param_and_the_providers_words():
    body = {"error": {"message": "Invalid size", "param": "size", "code": "invalid_value"}}
    http, _ = client(Script(err(400, body)))
    with pytest.raises(InvalidRequest) as info:
        http.create("/x", json={})
    assert info.value.field == "size"
    assert "Invalid size" in str(info.value) and "invalid_value" in info.value.detail


def test_rate_limited_carries_retry_after():
    http, _ = client(Script(err(429, headers={"Retry-After": "7"})))
    with pytest.raises(RateLimited) as info:
        http.create("/x", json={})
    assert info.value.retry_after == 7.0 and "7 s" in str(info.value)


# --- creates are sent once ------------------------------------------------------------------
@pytest.mark.parametrize("status", [429, 500, 503])
def test_create_is_never_retried(status):
    script = Script(err(status), ok())
    http, sleeps = client(script)
    with pytest.raises((RateLimited, ProviderUnavailable)) as info:
        http.create("/jobs", json={"a": 1})
    assert len(script.requests) == 1 and sleeps == []
    assert info.value.sent is True


def test_create_connect_error_is_not_sent_and_not_retried():
    script = Script(httpx.ConnectError("refused"), ok())
    http, _ = client(script)
    with pytest.raises(ProviderUnavailable) as info:
        http.create("/jobs", json={})
    assert info.value.sent is False and len(script.requests) == 1
    assert "Could not connect" in str(info.value)


@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped"), httpx.ReadError("reset")]
)
def test_create_that_may_have_arrived_is_marked_sent(exc):
    script = Script(exc, ok())
    http, _ = client(script)
    with pytest.raises(ProviderUnavailable) as info:
        http.create("/jobs", json={})
    assert info.value.sent is True and len(script.requests) == 1
    assert "may still have been created" in str(info.value)
    assert isinstance(info.value, ProviderTimeout) == isinstance(exc, httpx.TimeoutException)


def test_idempotent_create_is_retried_with_the_same_key():
    script = Script(httpx.RemoteProtocolError("dropped"), err(503), ok({"jobId": "j1"}))
    http, sleeps = client(script)
    body = http.create("/jobs", json={"a": 1}, headers={"Idempotency-Key": "k-1"}, idempotent=True)
    assert body == {"jobId": "j1"}
    assert [r.headers["Idempotency-Key"] for r in script.requests] == ["k-1"] * 3
    assert len({r.content for r in script.requests}) == 1
    assert json.loads(script.requests[0].content) == {"a": 1}


def test_malformed_json_is_provider_unavailable():
    script = Script(
        httpx.Response(200, content=b'{"status": "ok", "data": [{"b64', headers={"content-type": "application/json"})
    )
    http, _ = client(script)
    with pytest.raises(ProviderUnavailable) as info:
        http.create("/jobs", json={})
    assert info.value.code == "malformed" and info.value.sent is True


def test_malformed_status_answer_is_retried():
    script = Script(httpx.Response(200, content=b"<html>oops"), ok({"v": 3}))
    http, _ = client(script)
    assert http.get_json("/jobs/1") == {"v": 3}


def test_error_hook_refines_the_mapping():
    def hook(info):
        return JobFailed("custom", code=info.code) if info.code == "special" else None

    http, _ = client(Script(err(400, {"error": {"code": "special", "message": "m"}})), error_hook=hook)
    with pytest.raises(JobFailed) as info:
        http.get_json("/x")
    assert info.value.sent is True and info.value.status_code == 400


# --- where the key goes -------------------------------------------------------------------------
def test_key_and_user_agent_on_own_host_and_paths_join_the_base():
    script = Script(ok())
    http, _ = client(script)
    http.get_json("/jobs/1")
    request = script.requests[0]
    assert str(request.url) == "https://api.demo.test/base/jobs/1"
    assert request.headers["X-API-Key"] == "secret"
    assert request.headers["User-Agent"] == USER_AGENT == "image-studio/0.1 (+httpx)"


def test_result_on_another_host_is_fetched_without_the_key():
    script = Script(httpx.Response(200, content=PNG, headers={"content-type": "image/png"}))
    http, _ = client(script)
    data, ctype = http.download("https://cdn.other.test/out.png")
    assert data == PNG and ctype == "image/png"
    assert "X-API-Key" not in script.requests[0].headers
    assert "Authorization" not in script.requests[0].headers


def test_redirects_are_followed_without_carrying_the_key_off_host():
    script = Script(
        httpx.Response(302, headers={"location": "https://cdn.other.test/file.png"}),
        httpx.Response(200, content=PNG),
    )
    http, _ = client(script)
    http.download("https://api.demo.test/base/files/1")
    assert script.requests[0].headers.get("X-API-Key") == "secret"
    assert "X-API-Key" not in script.requests[1].headers


def test_bearer_keys_stay_home_too():
    script = Script(httpx.Response(200, content=PNG))
    http, _ = client(script, auth_headers={"Authorization": "Bearer sk"})
    http.download("https://api.demo.test.evil.test/x.png")
    assert "Authorization" not in script.requests[0].headers


@pytest.mark.parametrize("url", ["http://cdn.example.com/x.png", "http://10.0.0.5/x.png", "ftp://x/y.png"])
def test_plain_http_downloads_are_refused(url):
    script = Script(httpx.Response(200, content=PNG))
    http, _ = client(script)
    with pytest.raises(InvalidRequest) as info:
        http.download(url)
    assert script.requests == [] and info.value.sent is False


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/x.png", "http://127.8.0.1/x.png", "http://localhost/x.png", "http://[::1]:80/x.png"]
)
def test_loopback_downloads_are_refused_unless_the_providers_own_origin(url):
    # Before the URL policy, plain http on any loopback port was downloaded (issue 13, case 2).
    script = Script(httpx.Response(200, content=PNG))
    http, _ = client(script)
    with pytest.raises(InvalidRequest) as info:
        http.download(url)
    assert script.requests == [] and "this machine" in str(info.value)
    own = HttpClient(provider="demo", label="Demo", base_url=url.rsplit("/", 1)[0] + "/api",
                     transport=httpx.MockTransport(script))
    assert own.download(url)[0] == PNG  # the emulator's own files: its base URL is an allowed origin


def test_expired_result_url_is_a_clear_error_not_retried():
    script = Script(httpx.Response(410, text="gone"))
    http, sleeps = client(script)
    with pytest.raises(JobFailed) as info:
        http.download("https://cdn.other.test/old.png")
    assert info.value.code == "result_expired" and "expired" in str(info.value)
    assert len(script.requests) == 1 and sleeps == []


def test_timeouts_are_explicit():
    http, _ = client(Script(ok()), read_timeout=120)
    t = http.client.timeout
    assert (t.connect, t.read, t.write, t.pool) == (5.0, 120, 60.0, 10.0)


def test_helpers():
    assert strip_suffix("https://api.openai.com/v1/", "/v1") == "https://api.openai.com"
    assert strip_suffix("http://127.0.0.1:1/openai", "/v1") == "http://127.0.0.1:1/openai"
    assert is_loopback_host("127.0.0.1") and is_loopback_host("::1") and is_loopback_host("[::1]")
    assert is_loopback_host("localhost") and not is_loopback_host("example.com")
    assert not is_loopback_host("10.0.0.1")
    assert image_format(PNG) == "png"
    assert image_format(b"\xff\xd8\xff\xe0") == "jpeg"
    assert image_format(b"RIFF\0\0\0\0WEBPVP8 ") == "webp"
    assert image_format(b"????", "image/jpg") == "jpeg"

"""Injected faults, one kind at a time, on every provider; and the admin routes."""

from __future__ import annotations

import json
import time

import httpx
import pytest

PROVIDERS = ("openai", "coretoday", "apiframe", "evolink")
SUBMIT = {
    "openai": ("/v1/images/generations", {"model": "gpt-image-2", "prompt": "x", "quality": "low"}),
    "coretoday": ("/v1/predictions", {"model": "openai/gpt-image-2", "input": {"prompt": "x"}}),
    "apiframe": ("/v2/images/generate", {"prompt": "x", "model": "gpt-image-2"}),
    "evolink": ("/v1/images/generations", {"model": "gpt-image-2", "prompt": "x"}),
}
ASYNC = ("coretoday", "apiframe", "evolink")


def submit(api, provider, **kw):
    path, body = SUBMIT[provider]
    return api.post(provider, path, json=body, **kw)


def job_id(provider, resp):
    return resp.json()["jobId" if provider == "apiframe" else "id"]


def error_code(provider, resp):
    body = resp.json()
    if provider == "apiframe":
        return body["code"]
    return body["error"]["code"]


def result_urls(provider, body):
    if provider == "coretoday":
        return body["output"]
    if provider == "apiframe":
        return body["result"]["images"]
    return body["results"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_rate_limit(api, emu, provider):
    emu.inject(provider, "rate_limit", retry_after=3)
    resp = submit(api, provider)
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "3"
    if provider == "openai":
        assert resp.json()["error"]["type"] == "rate_limit_exceeded"
        assert resp.headers["retry-after-ms"] == "3000"
    assert emu.stats()["creates"][provider] == 0
    assert submit(api, provider).status_code in (200, 202)  # the fault was used up


@pytest.mark.parametrize(("provider", "status"), [("openai", 429), ("coretoday", 402), ("apiframe", 402),
                                                  ("evolink", 402)])  # fmt: skip
def test_quota(api, emu, provider, status):
    emu.inject(provider, "quota")
    resp = submit(api, provider)
    assert resp.status_code == status
    if provider == "openai":
        assert resp.json()["error"]["type"] == "insufficient_quota"
    if provider == "apiframe":
        assert resp.json()["error"] == "Insufficient credits" and "balance" in resp.json()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_server_error_auth_and_model_not_found(api, emu, provider):
    emu.inject(provider, "server_error")
    emu.inject(provider, "auth")
    emu.inject(provider, "model_not_found")
    assert submit(api, provider).status_code == 500
    assert submit(api, provider).status_code == 401
    resp = submit(api, provider)
    assert resp.status_code == 404
    if provider == "openai":
        assert resp.json()["error"]["code"] == "model_not_found"
    assert submit(api, provider).status_code in (200, 202)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_slow_and_malformed(api, emu, provider):
    emu.set_latency(0)
    emu.inject(provider, "slow", delay=0.4)
    started = time.monotonic()
    assert submit(api, provider).status_code in (200, 202)
    assert time.monotonic() - started >= 0.4
    emu.inject(provider, "malformed")
    resp = submit(api, provider)
    assert resp.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        resp.json()


def test_faults_are_consumed_in_order_with_counts(api, emu):
    emu.inject("evolink", "rate_limit", count=2)
    emu.inject("evolink", "server_error")
    codes = [submit(api, "evolink").status_code for _ in range(4)]
    assert codes == [429, 429, 500, 200]


def test_any_provider_and_op_filters(api, emu):
    emu.inject("any", "server_error", op="status")
    assert submit(api, "coretoday").status_code == 200  # a submit does not match op=status
    jid = submit(api, "apiframe").json()["jobId"]
    assert api.status("apiframe", jid).status_code == 500
    assert api.status("apiframe", jid).status_code == 200


def test_openai_job_failed_and_moderation(api, emu):
    emu.inject("openai", "job_failed")
    started = time.monotonic()
    resp = submit(api, "openai")
    assert resp.status_code == 500 and resp.json()["error"]["type"] == "server_error"
    assert time.monotonic() - started >= emu.latency

    emu.inject("openai", "moderation", stage="input")
    resp = submit(api, "openai")
    err = resp.json()["error"]
    assert resp.status_code == 400 and err["code"] == "moderation_blocked"
    assert err["moderation_details"]["moderation_stage"] == "input"

    emu.inject("openai", "moderation", stage="output")
    started = time.monotonic()
    resp = submit(api, "openai")
    assert resp.json()["error"]["moderation_details"]["moderation_stage"] == "output"
    assert time.monotonic() - started >= emu.latency
    states = [j["state"] for j in emu.stats()["jobs"].values()]
    assert states == ["failed", "failed", "failed"]


@pytest.mark.parametrize("provider", ASYNC)
def test_job_failed(api, emu, provider):
    emu.inject(provider, "job_failed", code="generation_timeout")
    resp = submit(api, provider)
    assert resp.status_code in (200, 202)
    body = api.wait(provider, job_id(provider, resp))
    if provider == "coretoday":
        assert body["status"] == "failed" and isinstance(body["error"], str) and body["output"] is None
    elif provider == "apiframe":
        assert body["status"] == "FAILED" and body["creditCost"] == 0 and body["result"] is None
        assert body["error"].startswith("Provider returned an error")
    else:
        assert body["status"] == "failed" and body["error"]["code"] == "generation_timeout"
        assert "results" not in body


@pytest.mark.parametrize("provider", ASYNC)
def test_moderation(api, emu, provider):
    emu.inject(provider, "moderation")
    body = api.wait(provider, job_id(provider, submit(api, provider)))
    if provider == "coretoday":
        assert body["status"] == "failed" and "content policy" in body["error"]
    elif provider == "apiframe":
        assert body["status"] == "FAILED" and body["creditCost"] == 0
        assert body["error"] == "Provider returned an error: content policy violation"
    else:
        assert body["status"] == "failed" and body["error"]["code"] == "content_policy_violation"


def test_input_stage_moderation_fails_early(api, emu):
    emu.set_latency(2)
    emu.inject("evolink", "moderation", stage="input")
    task_id = job_id("evolink", submit(api, "evolink"))
    started = time.monotonic()
    assert api.wait("evolink", task_id)["status"] == "failed"
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("provider", ASYNC)
def test_expired_url(api, emu, provider):
    emu.inject(provider, "expired_url")
    body = api.wait(provider, job_id(provider, submit(api, provider)))
    (url,) = result_urls(provider, body)
    resp = api.http.get(url)
    assert resp.status_code == 404 and "expired" in resp.text


def test_expired_url_on_the_result_op(api, emu):
    body = api.wait("evolink", job_id("evolink", submit(api, "evolink")))
    (url,) = body["results"]
    emu.inject("evolink", "expired_url", op="result")
    assert api.http.get(url).status_code == 404
    assert api.http.get(url).status_code == 404  # stays expired


def test_result_op_faults(api, emu):
    body = api.wait("coretoday", job_id("coretoday", submit(api, "coretoday")))
    (url,) = body["output"]
    emu.inject("coretoday", "rate_limit", op="result", retry_after=1)
    emu.inject("coretoday", "server_error", op="result")
    emu.inject("coretoday", "malformed", op="result")
    assert api.http.get(url).status_code == 429
    assert api.http.get(url).status_code == 500
    garbage = api.http.get(url)
    assert garbage.status_code == 200 and not garbage.content.startswith(b"RIFF")
    assert api.http.get(url).content.startswith(b"RIFF")  # webp, back to normal
    downloads = [r for r in emu.stats()["requests"] if r["path"].startswith("/_files/")]
    assert [r["status"] for r in downloads] == [429, 500, 200, 200]
    assert {r["provider"] for r in downloads} == {"coretoday"}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_drop_after_create(api, emu, provider):
    emu.inject(provider, "drop_after_create")
    resp = submit(api, provider)
    assert resp.status_code == 502 and "Bad Gateway" in resp.text
    stats = emu.stats()
    assert stats["creates"][provider] == 1  # the job exists although the client never heard of it
    (job,) = stats["jobs"].values()
    assert job["provider"] == provider


@pytest.mark.parametrize("provider", ["openai", "evolink"])
def test_drop_after_create_closing_the_connection(api, emu, provider):
    emu.inject(provider, "drop_after_create", mode="close")
    with pytest.raises(httpx.TransportError):
        submit(api, provider)
    assert emu.stats()["creates"][provider] == 1
    dropped = [r for r in emu.stats()["requests"] if r["provider"] == provider]
    assert dropped[-1]["status"] is None
    assert submit(api, provider).status_code == 200  # the server is fine afterwards


def test_status_faults_and_poll_counting(api, emu):
    emu.set_latency(1)
    task_id = job_id("evolink", submit(api, "evolink"))
    emu.inject("evolink", "rate_limit", op="status", retry_after=0)
    assert api.status("evolink", task_id).status_code == 429
    emu.inject("evolink", "job_failed", op="status")
    assert api.status("evolink", task_id).json()["status"] == "failed"
    assert emu.stats()["jobs"][task_id]["status_requests"] == 2  # the refused poll counts too


def test_a_refused_request_leaves_a_job_fault_queued(api, emu):
    emu.inject("coretoday", "job_failed")
    bad = api.post("coretoday", "/v1/predictions", json={"model": "openai/gpt-image-2", "input": {}})
    assert bad.status_code == 400
    assert emu.stats()["faults"][0]["kind"] == "job_failed"
    body = api.wait("coretoday", job_id("coretoday", submit(api, "coretoday")))
    assert body["status"] == "failed"


# --- admin routes ---------------------------------------------------------------------------
def test_admin_routes(api, emu, http):
    base = emu.base_url + "/_admin"
    assert http.get(base + "/health").json() == {
        "service": "image-studio-emulator",
        "version": 1,
        "latency": emu.latency,
    }
    resp = http.post(base + "/faults", json={"provider": "openai", "kind": "rate_limit", "retry_after": 7})
    assert resp.status_code == 200
    assert http.post(base + "/faults", json={"provider": "openai", "kind": "gremlins"}).status_code == 400
    assert http.post(base + "/faults", json={"provider": "nobody", "kind": "auth"}).status_code == 400
    assert http.post(base + "/faults", json={"provider": "openai", "kind": "auth", "op": "x"}).status_code == 400
    assert submit(api, "openai").headers["Retry-After"] == "7"

    assert http.post(base + "/latency", json={"seconds": 0.05}).json()["latency"] == 0.05
    assert emu.latency == 0.05
    assert http.post(base + "/latency", json={"seconds": -1}).status_code == 400

    submit(api, "evolink")
    stats = http.get(base + "/stats").json()
    assert set(stats) >= {"creates", "requests", "jobs"}
    assert stats["creates"] == {"openai": 0, "coretoday": 0, "apiframe": 0, "evolink": 1}
    req = stats["requests"][-1]
    assert set(req) == {"provider", "method", "path", "status", "at"} and req["provider"] == "evolink"
    (job,) = stats["jobs"].values()
    assert set(job) >= {"provider", "created_at", "completed_at", "status_requests", "state"}
    assert not any(r["path"].startswith("/_admin") for r in stats["requests"])

    emu.inject("openai", "auth")
    assert http.post(base + "/reset").json() == {"ok": True}
    stats = http.get(base + "/stats").json()
    assert stats["jobs"] == {} and stats["requests"] == [] and stats["faults"] == []


def test_uploads_route(api, emu, http):
    png = api.image(40, 30, (1, 2, 3))
    resp = http.post(emu.base_url + "/_admin/uploads", content=png, headers={"Content-Type": "image/png"})
    url = resp.json()["url"]
    assert url.startswith(emu.base_url + "/_files/uploads/") and url.endswith(".png")
    assert http.get(url).content == png  # served back byte for byte, no auth
    assert emu.upload(png, "image/png") == url  # content addressed: same bytes, same URL
    bad = http.post(emu.base_url + "/_admin/uploads", content=b"hello", headers={"Content-Type": "text/plain"})
    assert bad.status_code == 400
    junk = http.post(emu.base_url + "/_admin/uploads", content=b"hello", headers={"Content-Type": "image/png"})
    assert junk.status_code == 400


def test_inject_checks_its_arguments(emu):
    with pytest.raises(ValueError):
        emu.inject("openai", "nonsense")
    with pytest.raises(ValueError):
        emu.inject("openai", "rate_limit", op="sometimes")
    with pytest.raises(ValueError):
        emu.inject("openai", "moderation", stage="middle")

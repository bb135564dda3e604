"""The emulated Apiframe v2 API."""

from __future__ import annotations

import time

import pytest

from emulator import Emulator


def sports_car(input_url: str) -> dict:
    # The seed document's example, exactly as written except the input URL: the
    # emulator never fetches example.com, so it points at an uploaded loopback file.
    return {
        "prompt": "a sleek silver sports car on a coastal highway at sunset, hyper-realistic",
        "model": "gpt-image-2",
        "gptImage2Params": {
            "input_images": input_url,
            "quality": "auto",
            "background": "auto",
            "number_of_images": 1,
        },
    }


def test_sports_car_example_with_a_string_input_url(api, emu):
    url = emu.upload(api.image(1200, 800, (120, 120, 130), "JPEG"), "image/jpeg")
    resp = api.post("apiframe", "/v2/images/generate", json=sports_car(url))
    assert resp.status_code == 202, resp.text
    created = resp.json()
    assert set(created) == {"jobId", "status"} and created["status"] == "QUEUED"
    assert len(created["jobId"]) == 36  # a uuid

    first = api.status("apiframe", created["jobId"]).json()
    assert first["status"] in ("QUEUED", "PROCESSING") and 0 <= first["progress"] < 100
    body = api.wait("apiframe", created["jobId"])
    assert body["status"] == "COMPLETED" and body["progress"] == 100 and body["error"] is None
    assert set(body) >= {"id", "status", "model", "progress", "result", "error", "creditCost", "createdAt",
                         "completedAt"}  # fmt: skip
    assert body["creditCost"] == 23 and body["model"] == "gpt-image-2"
    (image_url,) = body["result"]["images"]
    img = api.download(image_url)
    assert img.format == "WEBP" and img.size == (1024, 1024)


def test_example_com_input_is_refused_clearly(api):
    resp = api.post("apiframe", "/v2/images/generate", json=sports_car("https://example.com/input.jpg"))
    assert resp.status_code == 400
    assert "example.com" in resp.json()["error"] and "upload" in resp.json()["error"].lower()
    assert resp.json()["field"] == "gptImage2Params.input_images"


def test_credit_cost_by_quality_and_count(api):
    for model, key, quality, n, cost in [
        ("gpt-image-2", "gptImage2Params", "low", 3, 12),
        ("gpt-image-2", "gptImage2Params", "medium", 1, 9),
        ("gpt-image-1.5", "gptImageParams", "high", 2, 48),
    ]:
        body = {"prompt": "p", "model": model, key: {"quality": quality, "number_of_images": n}}
        job_id = api.post("apiframe", "/v2/images/generate", json=body).json()["jobId"]
        done = api.wait("apiframe", job_id)
        assert done["creditCost"] == cost
        assert len(done["result"]["images"]) == n


def test_gpt_image_1_5_transparent_png_with_its_own_params_key(api):
    body = {
        "prompt": "a sticker of a fox",
        "model": "gpt-image-1.5",
        "gptImageParams": {
            "background": "transparent",
            "output_format": "png",
            "aspect_ratio": "2:3",
            "input_fidelity": "high",
        },
    }
    job_id = api.post("apiframe", "/v2/images/generate", json=body).json()["jobId"]
    img = api.download(api.wait("apiframe", job_id)["result"]["images"][0])
    assert img.format == "PNG" and img.size == (1024, 1536) and img.mode == "RGBA"
    assert img.getpixel((1, img.height - 2))[3] == 0  # a corner below the label is see-through


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "", "model": "gpt-image-2"}, "prompt"),
        ({"prompt": "x" * 2001, "model": "gpt-image-2"}, "prompt"),
        ({"prompt": "x", "model": "gpt-image-1"}, "model"),
        ({"prompt": "x", "model": "gpt-image-2", "gptImageParams": {}}, "gptImageParams"),
        ({"prompt": "x", "model": "gpt-image-2", "gptImage2Params": {"background": "transparent"}},
         "gptImage2Params.background"),
        ({"prompt": "x", "model": "gpt-image-2", "gptImage2Params": {"number_of_images": 11}},
         "gptImage2Params.number_of_images"),
        ({"prompt": "x", "model": "gpt-image-2", "gptImage2Params": {"aspect_ratio": "16:9"}},
         "gptImage2Params.aspect_ratio"),
        ({"prompt": "x", "model": "gpt-image-2", "gptImage2Params": {"input_fidelity": "high"}},
         "gptImage2Params.input_fidelity"),
        ({"prompt": "x", "model": "gpt-image-1.5", "gptImageParams": {"background": "transparent",
          "output_format": "jpeg"}}, "gptImageParams.background"),
    ],
)  # fmt: skip
def test_validation(api, body, field):
    resp = api.post("apiframe", "/v2/images/generate", json=body)
    assert resp.status_code == 400, resp.text
    assert isinstance(resp.json()["error"], str) and resp.json()["field"] == field


def test_idempotency_key(api, emu):
    body = {"prompt": "once", "model": "gpt-image-2"}
    first = api.post("apiframe", "/v2/images/generate", json=body, headers={"Idempotency-Key": "k-1"})
    again = api.post("apiframe", "/v2/images/generate", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 202
    assert first.json()["jobId"] == again.json()["jobId"]
    assert emu.stats()["creates"]["apiframe"] == 1
    other = api.post("apiframe", "/v2/images/generate", json={**body, "prompt": "twice"},
                     headers={"Idempotency-Key": "k-1"})  # fmt: skip
    assert other.status_code == 409
    fresh = api.post("apiframe", "/v2/images/generate", json=body, headers={"Idempotency-Key": "k-2"})
    assert fresh.json()["jobId"] != first.json()["jobId"]
    assert emu.stats()["creates"]["apiframe"] == 2


def test_idempotent_replay_after_a_dropped_answer(api, emu):
    emu.inject("apiframe", "drop_after_create")
    body = {"prompt": "retry me", "model": "gpt-image-2"}
    lost = api.post("apiframe", "/v2/images/generate", json=body, headers={"Idempotency-Key": "r-1"})
    assert lost.status_code == 502
    retry = api.post("apiframe", "/v2/images/generate", json=body, headers={"Idempotency-Key": "r-1"})
    assert retry.status_code == 202
    assert emu.stats()["creates"]["apiframe"] == 1
    assert retry.json()["jobId"] in emu.stats()["jobs"]


def test_auth_is_the_x_api_key_header(api, http, emu):
    url = emu.url("apiframe") + "/v2/images/generate"
    body = {"prompt": "x", "model": "gpt-image-2"}
    assert http.post(url, json=body, headers={"Authorization": "Bearer afk"}).status_code == 401
    resp = http.post(url, json=body, headers={"X-API-Key": "invalid-afk"})
    assert resp.status_code == 401 and isinstance(resp.json()["error"], str)


def test_unknown_job(api):
    resp = api.status("apiframe", "00000000-0000-0000-0000-000000000000")
    assert resp.status_code == 404 and resp.json()["error"] == "Job not found"


def test_string_result_shape(tmp_path, http):
    with Emulator(data_dir=tmp_path, latency=0.1, apiframe_result_shape="string") as emu:
        headers = {"X-API-Key": "afk"}
        base = emu.url("apiframe")
        one = http.post(base + "/v2/images/generate", headers=headers, json={"prompt": "a", "model": "gpt-image-2"})
        two = http.post(
            base + "/v2/images/generate",
            headers=headers,
            json={"prompt": "b", "model": "gpt-image-2", "gptImage2Params": {"number_of_images": 2}},
        )
        time.sleep(0.2)
        single = http.get(base + f"/v2/jobs/{one.json()['jobId']}", headers=headers).json()
        double = http.get(base + f"/v2/jobs/{two.json()['jobId']}", headers=headers).json()
        assert isinstance(single["result"], str) and single["result"].endswith(".webp")
        assert http.get(single["result"]).status_code == 200
        assert len(double["result"]["images"]) == 2  # several images cannot be one string

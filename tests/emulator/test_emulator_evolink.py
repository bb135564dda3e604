"""The emulated EvoLink images API."""

from __future__ import annotations

import math

import pytest

from emulator.common import GPT2_RATIOS, gpt2_size_problem, ratio_to_pixels
from emulator.evolink import credits_reserved
from providers import tokens

SUNSET = {"model": "gpt-image-1", "prompt": "A beautiful colorful sunset over the ocean"}  # the seed's example


def test_seed_example_answers_the_task_object(api, emu):
    resp = api.post("evolink", "/v1/images/generations", json=SUNSET)
    assert resp.status_code == 200, resp.text
    task = resp.json()
    assert set(task) == {"created", "id", "model", "object", "progress", "status", "task_info", "type", "usage"}
    assert task["id"].startswith("task-unified-") and len(task["id"].split("-")) == 4
    assert (task["model"], task["object"], task["progress"], task["status"], task["type"]) == (
        "gpt-image-1", "image.generation.task", 0, "pending", "image",
    )  # fmt: skip
    assert task["task_info"] == {"can_cancel": True, "estimated_time": math.ceil(emu.latency)}
    # Defaults: size 1:1 -> 1024x1024, quality high.
    expected = round(0.9 * 40e-6 * tokens.output_image_tokens("gpt-image-1", "high", "1024x1024") / 0.0147, 4)
    assert task["usage"] == {"billing_rule": "per_call", "credits_reserved": expected, "user_group": "default"}

    done = api.wait("evolink", task["id"])
    assert done["status"] == "completed" and done["progress"] == 100
    assert done["task_info"]["can_cancel"] is False and "error" not in done
    (url,) = done["results"]
    img = api.download(url)
    assert img.format == "PNG" and img.size == (1024, 1024)


def test_progress_rises_while_processing(api, emu):
    emu.set_latency(1.0)
    task_id = api.post("evolink", "/v1/images/generations", json=SUNSET).json()["id"]
    seen = []
    while True:
        body = api.status("evolink", task_id).json()
        seen.append((body["status"], body["progress"]))
        if body["status"] == "completed":
            break
    progresses = [p for s, p in seen if s == "processing"]
    assert progresses and progresses == sorted(progresses) and all(0 < p < 100 for p in progresses)
    assert emu.stats()["jobs"][task_id]["status_requests"] == len(seen)


@pytest.mark.parametrize(
    ("body", "size"),
    [
        ({"model": "gpt-image-1", "size": "2:3"}, (1024, 1536)),
        ({"model": "gpt-image-1", "size": "1536x1024"}, (1536, 1024)),
        ({"model": "gpt-image-2", "size": "16:9", "resolution": "4K"}, (3840, 2160)),
        ({"model": "gpt-image-2", "size": "3:2"}, (1536, 1024)),
        ({"model": "gpt-image-2", "size": "1:3", "resolution": "2K"}, None),
        ({"model": "gpt-image-2", "size": "2048x1152"}, (2048, 1152)),
        ({"model": "gpt-image-2"}, (1024, 1024)),
        # docs.evolink.ai: resolution "does not apply" with auto and is "ignored in explicit pixel mode"
        ({"model": "gpt-image-2", "size": "auto", "resolution": "4K"}, (1024, 1024)),
        ({"model": "gpt-image-2", "size": "1024x1024", "resolution": "2K"}, (1024, 1024)),
    ],
)
def test_sizes(api, body, size):
    resp = api.post("evolink", "/v1/images/generations", json={"prompt": "p", "quality": "low", "n": 2} | body)
    assert resp.status_code == 200, resp.text
    done = api.wait("evolink", resp.json()["id"])
    assert len(done["results"]) == 2
    img = api.download(done["results"][1])
    if size is None:  # 1:3 at 2K: about 4 Mpx, exactly 1:3
        assert img.width * 3 == img.height and img.width * img.height > 3_000_000
    else:
        assert img.size == size
    assert gpt2_size_problem(*img.size) is None


def test_credits_scale_with_n_and_model(api):
    body = {"model": "gpt-image-2", "prompt": "p", "size": "1024x1024", "quality": "medium", "n": 3}
    task = api.post("evolink", "/v1/images/generations", json=body).json()
    expected = credits_reserved("gpt-image-2", "medium", "1024x1024", 3)
    assert task["usage"]["credits_reserved"] == expected
    assert expected == round(0.9 * 30e-6 * 1756 * 3 / 0.0147, 4)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "gpt-image-1", "size": "16:9"}, "size"),
        ({"model": "gpt-image-1", "resolution": "2K"}, "resolution"),
        ({"model": "gpt-image-1", "prompt": "x" * 8004}, "prompt"),
        ({"model": "gpt-image-1", "quality": "auto"}, "quality"),
        ({"model": "gpt-image-2", "size": "1000x1000"}, "size"),
        ({"model": "gpt-image-2", "size": "1:1", "resolution": "8K"}, "resolution"),
        ({"model": "gpt-image-2", "prompt": "x" * 32001}, "prompt"),
        ({"model": "gpt-image-2", "n": 11}, "n"),
        ({"model": "gpt-image-2", "image_urls": []}, "image_urls"),
        ({"model": "gpt-image-2", "image_urls": ["http://127.0.0.1:1/x.png"] * 17}, "image_urls"),
        ({"model": "gpt-image-3"}, "model"),
        ({"model": "gpt-image-2", "style": "vivid"}, "style"),
    ],
)
def test_validation(api, body, param):
    resp = api.post("evolink", "/v1/images/generations", json={"prompt": "p"} | body)
    assert resp.status_code == 400, resp.text
    err = resp.json()["error"]
    assert set(err) >= {"code", "message", "type"} and err["param"] == param


def test_long_gpt_image_1_prompt_within_2000_tokens_is_fine(api):
    resp = api.post("evolink", "/v1/images/generations", json={"model": "gpt-image-1", "prompt": "x" * 8000})
    assert resp.status_code == 200


def test_image_urls_edit_and_internet_refusal(api, emu):
    url = emu.upload(api.image(1024, 1024, (10, 10, 240)), "image/png")
    resp = api.post(
        "evolink", "/v1/images/generations", json={"model": "gpt-image-2", "prompt": "edit", "image_urls": [url]}
    )
    img = api.download(api.wait("evolink", resp.json()["id"])["results"][0]).convert("RGB")
    r, g, b = img.getpixel((img.width // 2, img.height - 5))
    assert b > r and b > g
    far = api.post(
        "evolink",
        "/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": "edit", "image_urls": ["https://example.com/image1.png"]},
    )
    assert far.status_code == 400 and "internet" in far.json()["error"]["message"]
    assert far.json()["error"]["param"] == "image_urls"


def test_result_of_one_job_can_feed_the_next(api):
    first = api.post("evolink", "/v1/images/generations", json={"model": "gpt-image-2", "prompt": "base"})
    url = api.wait("evolink", first.json()["id"])["results"][0]
    second = api.post(
        "evolink", "/v1/images/generations", json={"model": "gpt-image-2", "prompt": "edit", "image_urls": [url]}
    )
    assert second.status_code == 200, second.text
    assert api.wait("evolink", second.json()["id"])["status"] == "completed"


def test_auth_and_unknown_task(api, http, emu):
    url = emu.url("evolink") + "/v1/images/generations"
    missing = http.post(url, json=SUNSET)
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "authentication_error"
    assert http.post(url, json=SUNSET, headers={"Authorization": "Bearer invalid"}).status_code == 401
    resp = api.status("evolink", "task-unified-0-nothing")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "task_not_found"


def test_no_cancel_endpoint(api, emu):
    task_id = api.post("evolink", "/v1/images/generations", json=SUNSET).json()["id"]
    resp = api.http.post(emu.url("evolink") + f"/v1/tasks/{task_id}/cancel", headers={"Authorization": "Bearer k"})
    assert resp.status_code == 404


def test_every_ratio_and_tier_is_a_valid_gpt_image_2_size():
    for ratio in GPT2_RATIOS:
        for tier in (None, "1K", "2K", "4K"):
            w, h = ratio_to_pixels(ratio, tier)
            assert gpt2_size_problem(w, h) is None, (ratio, tier, w, h)

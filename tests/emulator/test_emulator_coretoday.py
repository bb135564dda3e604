"""The emulated core.today predictions API."""

from __future__ import annotations

import json

import pytest

# The seed document's example, exactly as written.
CERAMICIST = {
    "model": "openai/gpt-image-2",
    "input": {
        "prompt": "A photorealistic close-up portrait of an elderly Japanese ceramicist with deep wrinkles and a "
        "warm smile, carefully inspecting a freshly glazed tea bowl in his rustic sun-drenched workshop.",
        "aspect_ratio": "3:2",
        "quality": "high",
        "output_format": "webp",
    },
}


def test_ceramicist_example_runs_to_a_webp_image(api, emu):
    resp = api.post("coretoday", "/v1/predictions", json=CERAMICIST)
    assert resp.status_code == 200, resp.text
    created = resp.json()
    assert created["id"].startswith("pred_") and created["job_id"] == created["id"]
    assert created["status"] == "pending" and created["model"] == "openai/gpt-image-2"
    assert created["input"] == CERAMICIST["input"] and created["created_at"].endswith("Z")

    seen = set()
    while True:
        body = api.status("coretoday", created["id"]).json()
        seen.add(body["status"])
        if body["status"] == "succeeded":
            break
    assert "processing" in seen or "pending" in seen
    assert set(body["metrics"]) == {"total_time", "queue_time", "run_time"}
    assert body["metrics"]["total_time"] == pytest.approx(emu.latency, abs=0.01)
    (url,) = body["output"]
    assert url.startswith(emu.base_url + "/_files/") and url.endswith(".webp")
    img = api.download(url)
    assert img.format == "WEBP" and img.size == (1536, 1024)


def test_both_auth_headers_work_and_bad_keys_are_refused(api, http, emu):
    url = emu.url("coretoday") + "/v1/predictions"
    bearer = http.post(url, json=CERAMICIST, headers={"Authorization": "Bearer cdt_x"})
    assert bearer.status_code == 200
    missing = http.post(url, json=CERAMICIST)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
    bad = http.post(url, json=CERAMICIST, headers={"X-API-Key": "invalid_key"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_api_key"


def test_upload_endpoint_takes_repeated_file_parts(api):
    red, blue = api.image(640, 640, (230, 10, 10)), api.image(640, 640, (10, 10, 230))
    resp = api.post(
        "coretoday",
        "/v1/predictions/upload",
        data={"model": "openai/gpt-image-2", "input": json.dumps({"prompt": "merge these", "output_format": "png"})},
        files=[
            ("file:input_images", ("red.png", red, "image/png")),
            ("file:input_images", ("blue.png", blue, "image/png")),
        ],
    )
    assert resp.status_code == 200, resp.text
    created = resp.json()
    assert created["job_id"] == created["id"]  # the upload example reads job_id
    urls = created["input"]["input_images"]
    assert len(urls) == 2 and all("/_files/uploads/" in u for u in urls)
    body = api.wait("coretoday", created["job_id"])
    img = api.download(body["output"][0])
    assert img.format == "PNG" and img.size == (1024, 1024)
    img = img.convert("RGB")
    # Two inputs are tiled side by side: red-ish on the left, blue-ish on the right.
    left, right = img.getpixel((5, img.height - 5)), img.getpixel((img.width - 5, img.height - 5))
    assert left[0] > left[2] and right[2] > right[0]


def test_input_image_urls_are_fetched_from_loopback_only(api, emu):
    url = emu.upload(api.image(800, 600, (0, 200, 0)), "image/png")
    ok = api.post(
        "coretoday",
        "/v1/predictions",
        json={"model": "openai/gpt-image-2", "input": {"prompt": "edit", "input_images": [url]}},
    )
    assert ok.status_code == 200, ok.text
    img = api.download(api.wait("coretoday", ok.json()["id"])["output"][0]).convert("RGB")
    r, g, b = img.getpixel((img.width // 2, img.height - 5))
    assert g > r and g > b  # derived from the green input

    far = api.post(
        "coretoday",
        "/v1/predictions",
        json={"model": "openai/gpt-image-2", "input": {"prompt": "x", "input_images": ["https://example.com/a.jpg"]}},
    )
    assert far.status_code == 400
    assert "never fetches from the internet" in far.json()["error"]["message"]
    assert far.json()["error"]["param"] == "input.input_images"
    missing = api.post(
        "coretoday",
        "/v1/predictions",
        json={"model": "openai/gpt-image-2", "input": {"prompt": "x", "input_images": [emu.base_url + "/_files/nope"]}},
    )
    assert missing.status_code == 400


def test_cancel(api, emu):
    emu.set_latency(5)
    job_id = api.post("coretoday", "/v1/predictions", json=CERAMICIST).json()["id"]
    resp = api.http.delete(emu.url("coretoday") + f"/v1/predictions/{job_id}", headers={"X-API-Key": "k"})
    assert resp.status_code == 200 and resp.json()["status"] == "canceled"
    assert api.status("coretoday", job_id).json()["status"] == "canceled"
    assert emu.stats()["jobs"][job_id]["state"] == "canceled"
    resp = api.http.delete(emu.url("coretoday") + "/v1/predictions/pred_nope", headers={"X-API-Key": "k"})
    assert resp.status_code == 404


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"number_of_images": 2}, "input.number_of_images"),
        ({"background": "transparent"}, "input.background"),
        ({"aspect_ratio": "16:9"}, "input.aspect_ratio"),
        ({"quality": "ultra"}, "input.quality"),
        ({"output_format": "gif"}, "input.output_format"),
        ({"output_compression": 101}, "input.output_compression"),
        ({"moderation": "off"}, "input.moderation"),
        ({"prompt": ""}, "input.prompt"),
        ({"size": "1024x1024"}, "input.size"),
    ],
)
def test_input_validation(api, patch, param):
    body = {"model": "openai/gpt-image-2", "input": {"prompt": "x"} | patch}
    resp = api.post("coretoday", "/v1/predictions", json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == param


@pytest.mark.parametrize("folder", ["../escape", "x" * 257])
def test_output_folder_rules(api, folder):
    resp = api.post("coretoday", "/v1/predictions", json=CERAMICIST | {"output_folder": folder})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "output_folder"
    ok = api.post("coretoday", "/v1/predictions", json=CERAMICIST | {"output_folder": "runs/today"})
    assert ok.status_code == 200


def test_unknown_model_and_prediction(api):
    resp = api.post("coretoday", "/v1/predictions", json={**CERAMICIST, "model": "openai/gpt-image-1"})
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "model_not_found"
    assert api.status("coretoday", "pred_missing").status_code == 404

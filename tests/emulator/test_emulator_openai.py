"""The emulated OpenAI Images API: synchronous answers, OpenAI's validation and usage."""

from __future__ import annotations

import base64
import io
import time

import pytest
from PIL import Image

from providers import tokens
from tests.emulator.conftest import image_bytes

GEN = "/v1/images/generations"
EDIT = "/v1/images/edits"
BEFORE_DEC_1 = "2026-11-30"  # the last day gpt-image-1.5 and gpt-image-1-mini ran on OpenAI


def decode(item: dict) -> Image.Image:
    img = Image.open(io.BytesIO(base64.b64decode(item["b64_json"])))
    img.load()
    return img


def test_generation_waits_the_job_time_and_answers_an_images_response(api, emu):
    started = time.monotonic()
    resp = api.post(
        "openai", GEN, json={"model": "gpt-image-2", "prompt": "a red fox in snow", "size": "1536x1024", "n": 2}
    )
    elapsed = time.monotonic() - started
    assert resp.status_code == 200, resp.text[:300]
    assert elapsed >= emu.latency
    body = resp.json()
    assert set(body) == {"created", "data", "background", "output_format", "quality", "size", "usage"}
    assert body["size"] == "1536x1024" and body["output_format"] == "png" and body["background"] == "opaque"
    assert body["quality"] == tokens.AUTO_BILLED_AS  # auto is reported as the tier it is billed as
    assert len(body["data"]) == 2
    images = [decode(d) for d in body["data"]]
    assert all(i.size == (1536, 1024) and i.format == "PNG" for i in images)
    assert images[0].tobytes() != images[1].tobytes()  # the index changes the seed


def test_usage_matches_tokens_module(api):
    prompt = "a lighthouse on a cliff at dusk, oil painting, " * 3
    resp = api.post(
        "openai", GEN, json={"model": "gpt-image-2", "prompt": prompt, "size": "2048x1152", "quality": "medium", "n": 3}
    )
    usage = resp.json()["usage"]
    text = tokens.text_tokens(prompt)
    out = tokens.output_image_tokens("gpt-image-2", "medium", "2048x1152") * 3
    assert usage == {
        "input_tokens": text,
        "input_tokens_details": {"text_tokens": text, "image_tokens": 0},
        "output_tokens": out,
        "output_tokens_details": {"image_tokens": out, "text_tokens": 0},
        "total_tokens": text + out,
    }


@pytest.mark.today(BEFORE_DEC_1)
def test_generation_is_deterministic_and_formats_are_honoured(api):
    req = {"model": "gpt-image-1.5", "prompt": "same prompt", "size": "1024x1536", "output_format": "jpeg"}
    a = api.post("openai", GEN, json={**req, "output_compression": 20}).json()
    b = api.post("openai", GEN, json={**req, "output_compression": 20}).json()
    c = api.post("openai", GEN, json={**req, "output_compression": 95}).json()
    assert a["data"][0]["b64_json"] == b["data"][0]["b64_json"]
    assert len(a["data"][0]["b64_json"]) < len(c["data"][0]["b64_json"])  # compression honoured
    img = decode(a["data"][0])
    assert img.format == "JPEG" and img.size == (1024, 1536)


def test_transparent_webp(api):
    resp = api.post(
        "openai",
        GEN,
        json={"model": "gpt-image-2", "prompt": "a sticker", "background": "transparent", "output_format": "webp"},
    )
    body = resp.json()
    assert body["background"] == "transparent" and body["size"] == "1024x1024"
    img = decode(body["data"][0])
    assert img.format == "WEBP" and img.mode == "RGBA"
    assert img.getpixel((img.width - 2, img.height - 2))[3] == 0  # a corner is see-through


@pytest.mark.today(BEFORE_DEC_1)
def test_edit_accepts_image_and_image_array_and_bills_input_tokens(api):
    first, second = api.image(1024, 1024, (250, 0, 0)), api.image(512, 256, (0, 0, 250))
    for part in ("image", "image[]"):
        resp = api.post(
            "openai",
            EDIT,
            data={"model": "gpt-image-1.5", "prompt": "add a hat", "n": "1", "input_fidelity": "high"},
            files=[(part, ("a.png", first, "image/png")), (part, ("b.png", second, "image/png"))],
        )
        assert resp.status_code == 200, resp.text[:300]
        body = resp.json()
        expected = tokens.input_image_tokens("gpt-image-1.5", 1024, 1024, "high") + tokens.input_image_tokens(
            "gpt-image-1.5", 512, 256, "high"
        )
        assert body["usage"]["input_tokens_details"]["image_tokens"] == expected
        assert body["size"] == "1024x1024"  # auto follows the first image's shape
        img = decode(body["data"][0]).convert("RGB")
        # Derived from the inputs: the two tiles keep their colours (tinted).
        left, right = img.getpixel((10, img.height - 10)), img.getpixel((img.width - 10, img.height - 10))
        assert left[0] > left[2] and right[2] > right[0]


def test_edit_with_mask(api):
    img = api.image(1024, 1536, (10, 200, 10))
    good_mask = api.image(1024, 1536, (0, 0, 0, 0))
    resp = api.post(
        "openai",
        EDIT,
        data={"model": "gpt-image-2", "prompt": "replace the sky"},
        files=[("image", ("a.png", img, "image/png")), ("mask", ("m.png", good_mask, "image/png"))],
    )
    assert resp.status_code == 200, resp.text[:300]
    assert resp.json()["size"] == "1024x1536"
    wrong_size = api.image(512, 512, (0, 0, 0, 0))
    resp = api.post(
        "openai",
        EDIT,
        data={"model": "gpt-image-2", "prompt": "replace the sky"},
        files=[("image", ("a.png", img, "image/png")), ("mask", ("m.png", wrong_size, "image/png"))],
    )
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "mask"
    no_alpha = api.image(1024, 1536, (0, 0, 0))
    resp = api.post(
        "openai",
        EDIT,
        data={"model": "gpt-image-2", "prompt": "replace the sky"},
        files=[("image", ("a.png", img, "image/png")), ("mask", ("m.png", no_alpha, "image/png"))],
    )
    assert resp.status_code == 400 and "alpha" in resp.json()["error"]["message"]


def test_edit_refuses_moderation_as_unknown_parameter(api):
    resp = api.post(
        "openai",
        EDIT,
        data={"model": "gpt-image-2", "prompt": "x", "moderation": "low"},
        files=[("image", ("a.png", api.image(), "image/png"))],
    )
    assert resp.status_code == 400
    assert resp.json()["error"] == {
        "message": "Unknown parameter: 'moderation'.",
        "type": "invalid_request_error",
        "param": "moderation",
        "code": "unknown_parameter",
    }


def test_edit_needs_an_image(api):
    resp = api.post("openai", EDIT, data={"model": "gpt-image-2", "prompt": "x"}, files=[("other", ("a", b"x"))])
    assert resp.status_code == 400


@pytest.mark.parametrize("model", ["gpt-image-1", "dall-e-3"])
def test_shut_down_models_answer_404_model_not_found(api, model):
    resp = api.post("openai", GEN, json={"model": model, "prompt": "x"})
    assert resp.status_code == 404
    err = resp.json()["error"]
    assert err["code"] == "model_not_found" and err["type"] == "invalid_request_error" and err["param"] == "model"
    assert err["message"].startswith(f"The model `{model}` has been shut down")


def test_gpt_image_1_shutdown_message_names_the_replacement(api):
    err = api.post("openai", GEN, json={"model": "gpt-image-1", "prompt": "x"}).json()["error"]
    assert "gpt-image-2.5-sunburst" in err["message"]


@pytest.mark.parametrize(
    "model",
    [
        "gpt-image-2",
        "gpt-image-2-2026-04-21",
        "gpt-image-2.5-sunburst",
        "gpt-image-2.5-flare",
        "gpt-image-2.6-sunburst",
        "gpt-image-2.6-flare",
    ],
)
def test_known_models(api, model):
    resp = api.post("openai", GEN, json={"model": model, "prompt": "x", "quality": "low"})
    assert resp.status_code == 200, resp.text[:300]


RETIRED_DEC_1 = ["gpt-image-1.5", "gpt-image-1.5-2025-12-16", "gpt-image-1-mini", "chatgpt-image-latest"]


@pytest.mark.today(BEFORE_DEC_1)
@pytest.mark.parametrize("model", RETIRED_DEC_1)
def test_models_run_until_their_shutdown_day(api, model):
    resp = api.post("openai", GEN, json={"model": model, "prompt": "x", "quality": "low"})
    assert resp.status_code == 200, resp.text[:300]


@pytest.mark.today("2026-12-01T00:00:01Z")
@pytest.mark.parametrize("model", RETIRED_DEC_1)
def test_models_answer_404_from_their_shutdown_day(api, model):
    resp = api.post("openai", GEN, json={"model": model, "prompt": "x", "quality": "low"})
    assert resp.status_code == 404
    err = resp.json()["error"]
    assert (err["code"], err["type"], err["param"]) == ("model_not_found", "invalid_request_error", "model")
    assert "December 1, 2026" in err["message"] and "gpt-image-2.6-sunburst" in err["message"]


@pytest.mark.today("2027-06-01")
def test_a_year_on_the_shutdowns_still_hold_and_gpt_image_2_still_runs(api):
    assert api.post("openai", GEN, json={"model": "gpt-image-1-mini", "prompt": "x"}).status_code == 404
    assert api.post("openai", GEN, json={"model": "gpt-image-2", "prompt": "x", "quality": "low"}).status_code == 200


@pytest.mark.parametrize(
    ("patch", "param", "code"),
    [
        ({"model": None}, "model", "missing_required_parameter"),
        ({"prompt": None}, "prompt", "missing_required_parameter"),
        ({"prompt": "x" * 32001}, "prompt", "string_above_max_length"),
        ({"n": 0}, "n", "integer_below_min_value"),
        ({"n": 11}, "n", "integer_above_max_value"),
        ({"n": "2"}, "n", "invalid_type"),
        ({"quality": "ultra"}, "quality", "invalid_value"),
        ({"output_format": "gif"}, "output_format", "invalid_value"),
        ({"output_compression": 50}, "output_compression", "invalid_value"),  # png
        ({"output_format": "jpeg", "output_compression": 101}, "output_compression", "integer_above_max_value"),
        ({"output_format": "jpeg", "background": "transparent"}, "background", "invalid_value"),
        ({"size": "1000x1000"}, "size", "invalid_value"),  # not multiples of 16
        ({"size": "3840x1024"}, "size", "invalid_value"),  # wider than 3:1
        ({"size": "800x800"}, "size", "invalid_value"),  # under 655,360 px
        ({"size": "4096x2304"}, "size", "invalid_value"),  # edge over 3840
        ({"size": "big"}, "size", "invalid_value"),
        ({"model": "gpt-image-2.6-flare", "size": "big"}, "size", "invalid_value"),
        ({"style": "vivid"}, "style", "unknown_parameter"),
        ({"stream": "yes"}, "stream", "invalid_type"),
        ({"stream": True, "partial_images": 4}, "partial_images", "integer_above_max_value"),
    ],
)
def test_validation_refusals(api, patch, param, code):
    body = {"model": "gpt-image-2", "prompt": "a test"} | patch
    body = {k: v for k, v in body.items() if v is not None}
    resp = api.post("openai", GEN, json=body)
    assert resp.status_code == 400, resp.text[:300]
    err = resp.json()["error"]
    assert (err["param"], err["code"], err["type"]) == (param, code, "invalid_request_error")
    assert err["message"]


@pytest.mark.parametrize("size", ["3840x2160", "2160x3840", "1024x1024", "2048x1152", "auto", "3072x1024"])
def test_gpt_image_2_free_sizes(api, size):
    resp = api.post("openai", GEN, json={"model": "gpt-image-2", "prompt": "x", "size": size, "quality": "low"})
    assert resp.status_code == 200, resp.text[:300]
    expected = "1024x1024" if size == "auto" else size
    assert resp.json()["size"] == expected
    w, h = (int(v) for v in expected.split("x"))
    assert decode(resp.json()["data"][0]).size == (w, h)


def test_auth(api, http, emu):
    url = emu.url("openai") + GEN
    body = {"model": "gpt-image-2", "prompt": "x"}
    missing = http.post(url, json=body)
    assert missing.status_code == 401 and "error" in missing.json()
    bad = http.post(url, json=body, headers={"Authorization": "Bearer invalid-key-123"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_api_key"


def test_bad_json_and_unknown_route(api, http, emu):
    resp = api.post("openai", GEN, content=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request_error"
    resp = http.get(emu.url("openai") + "/v1/nothing", headers={"Authorization": "Bearer sk"})
    assert resp.status_code == 404 and "Invalid URL" in resp.json()["error"]["message"]


def test_openai_job_is_recorded(api, emu):
    api.post("openai", GEN, json={"model": "gpt-image-2", "prompt": "x", "quality": "low"})
    stats = emu.stats()
    assert stats["creates"]["openai"] == 1
    (job,) = stats["jobs"].values()
    assert job["provider"] == "openai" and job["state"] == "succeeded"
    assert job["completed_at"] - job["created_at"] >= emu.latency


@pytest.mark.parametrize("model", ["gpt-image-2.5-sunburst", "gpt-image-2.5-flare-2026-09-08"])
@pytest.mark.parametrize("quality", ["xhigh", "max"])
def test_the_2_5_models_take_xhigh_and_max_and_bill_their_tokens(api, model, quality):
    resp = api.post("openai", GEN, json={"model": model, "prompt": "p", "size": "1024x1024", "quality": quality})
    assert resp.status_code == 200, resp.text[:300]
    body = resp.json()
    assert body["quality"] == quality
    assert body["usage"]["output_tokens"] == tokens.output_image_tokens(model, quality, "1024x1024")


@pytest.mark.parametrize("model", ["gpt-image-2", "gpt-image-2.6-sunburst"])
def test_other_models_refuse_xhigh(api, model):
    resp = api.post("openai", GEN, json={"model": model, "prompt": "p", "quality": "xhigh"})
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "quality"


def test_input_fidelity_follows_the_openai_package(api):
    image = ("image", ("a.png", image_bytes(), "image/png"))
    refused = api.post("openai", EDIT, data={"model": "gpt-image-2", "prompt": "p", "input_fidelity": "low"},
                       files=[image])
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "input_fidelity"


@pytest.mark.today(BEFORE_DEC_1)
def test_gpt_image_1_mini_takes_only_low_fidelity(api):
    image = ("image", ("a.png", image_bytes(), "image/png"))
    low = api.post("openai", EDIT, data={"model": "gpt-image-1-mini", "prompt": "p", "input_fidelity": "low"},
                   files=[image])
    assert low.status_code == 200, low.text[:300]
    high = api.post("openai", EDIT, data={"model": "gpt-image-1-mini", "prompt": "p", "input_fidelity": "high"},
                    files=[image])
    assert high.status_code == 400 and high.json()["error"]["param"] == "input_fidelity"

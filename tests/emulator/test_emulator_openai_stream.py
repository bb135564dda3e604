"""The emulator streams as OpenAI documents: OpenAI's own Python client reads it unchanged."""

from __future__ import annotations

import base64
import io

import openai
import pytest
from PIL import Image

from providers.catalogue import load_catalogue


@pytest.fixture
def client(emu):
    with openai.OpenAI(base_url=emu.url("openai") + "/v1", api_key="sk-test", max_retries=0, timeout=20) as c:
        yield c


@pytest.fixture
def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1024, 1024), (40, 90, 160)).save(out, "PNG")
    return out.getvalue()


def size_of(b64: str) -> tuple[int, int]:
    with Image.open(io.BytesIO(base64.b64decode(b64))) as img:
        return img.size


def test_the_openai_client_streams_a_generation(client):
    events = list(client.images.generate(model="gpt-image-2", prompt="a red fox in snow", size="1536x1024",
                                         quality="low", stream=True, partial_images=2))
    assert [type(e).__name__ for e in events] == [
        "ImageGenPartialImageEvent", "ImageGenPartialImageEvent", "ImageGenCompletedEvent"]
    first, second, done = events
    assert (first.partial_image_index, second.partial_image_index) == (0, 1)
    assert first.size == done.size == "1536x1024" and done.output_format == "png" and done.quality == "low"
    assert size_of(first.b64_json) == size_of(done.b64_json) == (1536, 1024)
    assert first.b64_json != second.b64_json != done.b64_json
    plain = client.images.generate(model="gpt-image-2", prompt="a red fox in snow", size="1536x1024", quality="low")
    assert plain.usage is not None
    each = load_catalogue().partial_image_tokens("openai")
    assert done.usage.output_tokens == plain.usage.output_tokens + 2 * each
    assert done.usage.total_tokens == done.usage.input_tokens + done.usage.output_tokens


def test_the_openai_client_streams_an_edit(client, png_bytes):
    events = list(client.images.edit(model="gpt-image-2", prompt="make it night", image=("in.png", png_bytes),
                                     stream=True, partial_images=1))
    assert [e.type for e in events] == ["image_edit.partial_image", "image_edit.completed"]
    assert events[-1].usage.input_tokens_details.image_tokens > 0


def test_no_partial_images_is_one_completed_event(client):
    events = list(client.images.generate(model="gpt-image-2", prompt="x", quality="low", stream=True,
                                         partial_images=0))
    assert [e.type for e in events] == ["image_generation.completed"]


def test_a_dropped_stream_breaks_in_the_client_after_the_first_preview(client, emu):
    emu.inject("openai", "drop_after_create", mode="close")
    seen = []
    with pytest.raises(openai.APIConnectionError):
        for event in client.images.generate(model="gpt-image-2", prompt="x", quality="low", stream=True,
                                            partial_images=2):
            seen.append(event.type)
    assert seen == ["image_generation.partial_image"]
    assert emu.stats()["creates"]["openai"] == 1


def test_safety_identifier_and_complexity_as_openai_3_57_takes_them(client):
    who = "5d41402abc4b2a76b9719d911017c592"
    events = list(client.images.generate(model="gpt-image-2", prompt="x", quality="low", stream=True,
                                         partial_images=1, safety_identifier=who, complexity="high"))
    assert events[-1].safety_identifier == who
    plain = client.images.generate(model="gpt-image-2", prompt="x", quality="low", user="legacy-user")
    assert plain.safety_identifier == "legacy-user"  # the deprecated user stands in when no identifier is sent
    with pytest.raises(openai.BadRequestError) as info:
        client.images.generate(model="gpt-image-2", prompt="x", quality="low", complexity="extreme")
    assert info.value.body["param"] == "complexity"

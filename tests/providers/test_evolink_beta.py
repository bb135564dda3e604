"""EvoLink's gpt-image-2-beta channel: selectable where validation, the catalogue and the emulator agree."""

from __future__ import annotations

from decimal import Decimal

import pytest

from providers.catalogue import load_catalogue
from providers.errors import InvalidRequest
from providers.evolink import MODELS
from providers.types import ImageRequest
from providers.validation import validate


def beta(**kw) -> ImageRequest:
    return ImageRequest(**({"prompt": "a red fox in snow", "model": "gpt-image-2-beta", "size": "16:9",
                            "quality": "auto"} | kw))


def test_beta_makes_one_image_per_call_priced_by_resolution(make, emu):
    provider = make("evolink")
    images = provider.generate(beta(resolution="2K", n=2))
    assert len(images) == 2 and emu.stats()["creates"]["evolink"] == 2  # n calls of one image
    job = max(emu.store.jobs.values(), key=lambda j: j.created_at)
    assert job.model == "gpt-image-2-beta" and "quality" not in job.request and job.request["n"] == 1
    est = load_catalogue().estimate("evolink", beta(resolution="2K", n=2), MODELS["gpt-image-2-beta"])
    assert est.total.amount == Decimal("3.4")


def test_beta_refuses_what_it_does_not_take():
    caps = MODELS["gpt-image-2-beta"]
    with pytest.raises(InvalidRequest) as info:
        validate(beta(quality="high"), caps)
    assert info.value.field == "quality"
    with pytest.raises(InvalidRequest):
        validate(beta(size="1184x864"), caps)  # free pixel sizes are not documented for the beta channel


def test_the_emulator_keeps_the_beta_to_one_image(make, emu):
    from providers.errors import InvalidRequest as Refused

    provider = make("evolink")
    with pytest.raises(Refused) as info:
        provider.submit(beta().with_(n=2))  # sent as is, past validation: the emulator says no
    assert "n" in str(info.value)

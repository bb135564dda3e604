"""Every model and quality the form offers on the suite's day can be priced and runs on the emulator.

The form offers a provider's models that are not retired (``ui.state.offered_models``) and each
model's ``caps.qualities``: nothing may be offered that the catalogue cannot estimate or the
emulator refuses. The suite's day is pinned (tests/conftest.py), so this holds on any calendar.
"""

from __future__ import annotations

import pytest

import clock
from providers import registry
from providers.catalogue import load_catalogue
from providers.types import QUALITY_ORDER, ImageRequest

OFFERED = [
    (provider, model, quality)
    for provider, cls in registry.PROVIDERS.items()
    for model, caps in cls.MODELS.items()
    if not caps.retired(clock.parse_instant("2026-12-01").date())
    for quality in caps.qualities
]


def _request(provider: str, model: str, quality: str) -> ImageRequest:
    caps = registry.PROVIDERS[provider].MODELS[model]
    return ImageRequest(prompt="a lighthouse at dusk", model=model, size=caps.sizes[0], quality=quality,
                        output_format=caps.default_output_format if caps.output_formats else "png")


def test_the_offered_line_up_on_the_suites_day():
    offered = {(p, m) for p, m, _ in OFFERED}
    assert ("openai", "gpt-image-1.5") not in offered and ("openai", "gpt-image-1-mini") not in offered
    assert ("openai", "gpt-image-2.5-flare") in offered and ("evolink", "gpt-image-1") in offered
    assert {q for p, m, q in OFFERED if m.startswith("gpt-image-2.5")} == set(QUALITY_ORDER)


@pytest.mark.parametrize(("provider", "model", "quality"), OFFERED)
def test_every_offered_choice_is_priced(provider, model, quality):
    caps = registry.PROVIDERS[provider].MODELS[model]
    estimate = load_catalogue().estimate(provider, _request(provider, model, quality), caps)
    assert estimate.total.amount > 0


@pytest.mark.parametrize(("provider", "model", "quality"), OFFERED)
def test_every_offered_choice_runs_on_the_emulator(make, emu, provider, model, quality):
    emu.set_latency(0)
    images = make(provider).generate(_request(provider, model, quality))
    assert len(images) == 1 and images[0].data


def test_the_history_filter_lists_only_qualities_some_model_offers():
    offered = {q for cls in registry.PROVIDERS.values() for c in cls.MODELS.values() for q in c.qualities}
    assert set(registry.qualities()) == offered
    assert list(registry.qualities()) == [q for q in QUALITY_ORDER if q in offered]

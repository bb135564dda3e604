"""registry: names, construction, keys and base URLs from the environment."""

from __future__ import annotations

import httpx
import pytest

from providers import registry
from providers.base import Provider
from providers.errors import InvalidRequest
from providers.types import ModelCaps


def test_the_four_providers():
    assert list(registry.PROVIDERS) == ["openai", "coretoday", "apiframe", "evolink"]
    for name, cls in registry.PROVIDERS.items():
        assert issubclass(cls, Provider) and cls.name == name
        assert cls.default_model in cls.MODELS
        assert all(isinstance(c, ModelCaps) and c.provider == name for c in cls.MODELS.values())
        assert cls.key_env == f"{name.upper()}_API_KEY" and cls.base_url_env == f"{name.upper()}_BASE_URL"


def test_unknown_name_lists_the_names():
    with pytest.raises(InvalidRequest) as info:
        registry.provider_class("midjourney")
    assert info.value.field == "provider"
    assert "openai, coretoday, apiframe, evolink" in str(info.value)


def test_create_uses_arguments_then_the_environment(monkeypatch):
    monkeypatch.setenv("EVOLINK_API_KEY", "from-env")
    monkeypatch.setenv("EVOLINK_BASE_URL", "http://127.0.0.1:9/evolink/v1")
    provider = registry.create("evolink")
    assert provider.api_key == "from-env" and provider.base_url == "http://127.0.0.1:9/evolink"
    provider.close()
    provider = registry.create("evolink", api_key="given", base_url="https://example.test")
    assert provider.api_key == "given" and provider.base_url == "https://example.test"
    provider.close()


def test_defaults_and_injected_transport():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "pred_1", "status": "processing"})

    provider = registry.create("coretoday", api_key="k", transport=httpx.MockTransport(handler))
    assert provider.base_url == "https://api.core.today"
    status = provider.status("pred_1")
    assert status.state == "running"
    assert str(seen[0].url) == "https://api.core.today/v1/predictions/pred_1"
    assert seen[0].headers["X-API-Key"] == "k"
    provider.close()


def test_models_with_dates():
    openai = registry.PROVIDERS["openai"].MODELS
    assert openai["gpt-image-1"].shutdown.isoformat() == "2026-10-23"
    assert openai["gpt-image-1.5"].shutdown.isoformat() == "2026-12-01"
    assert openai["gpt-image-1-mini"].shutdown.isoformat() == "2026-12-01"
    assert {openai[m].replacement for m in ("gpt-image-1", "gpt-image-1.5", "gpt-image-1-mini")} == {"gpt-image-2"}
    assert openai["gpt-image-2"].shutdown is None and openai["gpt-image-2"].free_size
    assert "xhigh" in openai["gpt-image-2.5-sunburst"].qualities
    assert "xhigh" not in openai["gpt-image-2.6-flare"].qualities
    assert registry.PROVIDERS["coretoday"].caps("openai/gpt-image-2").max_images_per_call == 1

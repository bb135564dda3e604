"""'Copy as code' calls the base URL real jobs call: the provider's environment variable, else its public API."""

from __future__ import annotations

import pytest

from core.exports import codegen
from providers.registry import PROVIDERS
from providers.types import ImageRequest

REQUEST = ImageRequest(prompt="A lighthouse at dawn", model="gpt-image-2", size="1:1", quality="low")


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_without_the_variable_the_snippet_calls_the_public_api(provider):
    public = PROVIDERS[provider].default_base_url.rstrip("/")
    base = codegen.configured_base_url(provider)
    assert public.startswith(base)  # some adapters drop a version suffix (/v1) they add back per call
    url, _ = codegen.create_call(provider, REQUEST)
    assert url.startswith(base)
    assert base in codegen.as_curl(provider, REQUEST) and base in codegen.as_python(provider, REQUEST)


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_the_environment_base_url_reaches_the_snippet(provider, monkeypatch):
    monkeypatch.setenv(PROVIDERS[provider].base_url_env, "https://gateway.example.test")
    assert codegen.configured_base_url(provider) == "https://gateway.example.test"
    assert "https://gateway.example.test/" in codegen.as_curl(provider, REQUEST)
    assert "'https://gateway.example.test/" in codegen.as_python(provider, REQUEST)

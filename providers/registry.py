"""The four providers by name, and one way to build them.

A dict is enough in one app (no plugin entry points): adding a provider means
adding its file and one line here.
"""

from __future__ import annotations

from datetime import date

import httpx

from .apiframe import ApiframeProvider
from .base import Provider, Uploader
from .coretoday import CoreTodayProvider
from .errors import InvalidRequest
from .evolink import EvoLinkProvider
from .openai import OpenAIProvider
from .types import QUALITY_ORDER

__all__ = ["PROVIDERS", "create", "label", "model_for", "model_label", "provider_class", "qualities"]

PROVIDERS: dict[str, type[Provider]] = {
    "openai": OpenAIProvider,
    "coretoday": CoreTodayProvider,
    "apiframe": ApiframeProvider,
    "evolink": EvoLinkProvider,
}


def provider_class(name: str) -> type[Provider]:
    try:
        return PROVIDERS[name]
    except KeyError:
        raise InvalidRequest(
            f"Unknown provider {name!r}. Choose one of: {', '.join(PROVIDERS)}.",
            field="provider",
            value=name,
            allowed=list(PROVIDERS),
        ) from None


def label(name: str) -> str:
    """The name people see for a provider key; an unknown key is shown as it is."""
    cls = PROVIDERS.get(name)
    return cls.label if cls is not None else name


def model_label(model: str, provider: str | None = None) -> str:
    """The name people see for a model id (at ``provider``, or wherever it is offered); an unknown id as it is."""
    classes = [PROVIDERS[provider]] if provider in PROVIDERS else list(PROVIDERS.values())
    for cls in classes:
        caps = cls.MODELS.get(model)
        if caps is not None:
            return caps.label
    return model


def model_for(name: str, wanted: str, *, today: date | None = None) -> str:
    """``wanted`` where the provider offers it and has not retired it on ``today``, else its default."""
    cls = provider_class(name)
    caps = cls.MODELS.get(wanted)
    if caps is not None and not caps.retired(today):
        return wanted
    return cls.default_model


def qualities() -> tuple[str, ...]:
    """Every quality some provider's model offers, in reading order (what a filter may list)."""
    offered = {q for cls in PROVIDERS.values() for caps in cls.MODELS.values() for q in caps.qualities}
    return tuple(q for q in QUALITY_ORDER if q in offered)


def create(
    name: str,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    transport: httpx.BaseTransport | None = None,
    uploader: Uploader | None = None,
    timeout: float | None = None,
) -> Provider:
    """A ready provider; the key and base URL default to its environment variables."""
    return provider_class(name)(api_key, base_url, transport=transport, uploader=uploader, timeout=timeout)

"""What the Studio's buttons do: send a batch to the runner, re-render, continue editing a result.

Shared by the Studio form and the result cards (which the Compare and History
pages show too), so a click behaves the same wherever it happens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import streamlit as st

from core.accounts import PermissionDenied
from core.exports import codegen
from core.history.views import ImageView, JobView
from core.images import keep_outside as maskkeep
from core.jobs.runner import KeyNeeded
from core.jobs.submission import Submitted
from core.prompts import draft
from core.spend import budget
from providers.errors import ProviderError
from providers.registry import PROVIDERS
from providers.types import ImageRequest
from ui import services
from ui import studio_state as ss

UPLOAD_GEN = "studio_upload_generation"


@dataclass(frozen=True)
class Outcome:
    submitted: Submitted | None = None
    error: str | None = None


def submit(
    provider: str,
    request: ImageRequest,
    *,
    prompts: Sequence[str] | None = None,
    variables: Sequence[Mapping[str, Any]] | None = None,
    template: str | None = None,
    parent_job_id: str | None = None,
    keep_outside: bool | None = None,
    label: str | None = None,
) -> Outcome:
    """Hand a batch to the runner (it returns at once) and remember the run for this session.

    The acting person is checked by the runner itself (``generate``), whatever the page showed.
    """
    who = services.user()
    route = services.route(provider, who)
    try:
        sub = services.runner().submit(
            provider,
            request,
            by=who,
            key_holder=route.key_holder if route.key_holder not in ("session", "config") else None,
            endpoint=route.endpoint,
            api_key=services.session_key(provider, who),
            prompts=list(prompts) if prompts else None,
            variables=list(variables) if variables else None,
            template=template,
            parent_job_id=parent_job_id,
            label=label,
        )
    except (PermissionDenied, KeyNeeded) as err:  # KeyNeeded: their stored key was removed meanwhile
        return Outcome(error=str(err))
    except budget.BudgetExceeded as err:
        return Outcome(error=f"Over budget: {err}")
    except ProviderError as err:  # InvalidRequest / ModelUnavailable: validate() already said why
        return Outcome(error=str(err))
    ss.track(sub.run_id, sub.job_ids)
    if request.mask is not None and keep_outside is not None:
        maskkeep.remember(services.store().data_dir, sub.run_id, keep_outside)
    return Outcome(submitted=sub)


def high_request(job: JobView) -> ImageRequest:
    """The request that made ``job``, at quality high, one image."""
    return services.store().load_request(job.id).with_(quality="high", n=1)


def high_cost(job: JobView) -> Decimal | None:
    try:
        caps = PROVIDERS[job.provider].MODELS[job.model]
        return services.catalogue().estimate(job.provider, high_request(job), caps).total.usd
    except (ProviderError, ValueError, KeyError, OSError):
        return None


def rerender_high(job: JobView) -> Outcome:
    request = high_request(job)
    keep = maskkeep.wanted(services.store().data_dir, job.run_id)
    out = submit(job.provider, request, parent_job_id=job.id, keep_outside=keep, label="Re-render at high")
    if out.error is None:
        ss.flash("info", "Re-rendering at high quality: it appears at the top of the results.")
    return out


def upload_key() -> str:
    """The uploader's key; a new one empties it (a widget's files cannot be set from code)."""
    gen = st.session_state.get(UPLOAD_GEN, 0)
    return ss.UPLOAD if gen == 0 else f"{ss.UPLOAD}_{gen}"


def clear_uploader() -> None:
    st.session_state[UPLOAD_GEN] = st.session_state.get(UPLOAD_GEN, 0) + 1
    st.session_state[ss.UPLOAD_SNAPSHOT] = []


def use_as_input(job: JobView, image: ImageView) -> None:
    """Multi-turn editing: this result becomes the only input of the next request, chained to its job."""
    data = image.path.read_bytes()
    ext = {"jpeg": "jpg"}.get(image.format, image.format)
    item = ss.TrayItem(id=f"job:{job.id}:{image.idx}", name=f"result-{job.id[:8]}-{image.idx + 1}.{ext}",
                       data=data, source="result")
    clear_uploader()
    st.session_state[ss.KEPT] = [item]
    st.session_state[ss.PARENT] = job.id
    ss.flash("success", "The result is now the input image. Describe the change in the prompt and generate.")


def use_from_history(job: JobView, image: ImageView) -> None:
    data = image.path.read_bytes()
    ext = {"jpeg": "jpg"}.get(image.format, image.format)
    ss.keep(ss.TrayItem(id=f"job:{job.id}:{image.idx}", name=f"history-{job.id[:8]}-{image.idx + 1}.{ext}",
                        data=data, source="history"))


def fill_form(r: draft.Restored, *, set_selection: bool, prompt: bool = True) -> None:
    """Put restored values into the form's keys; only before the widgets draw (a callback, or the page's top).

    ``set_selection`` also switches the sidebar's provider and model, which only a callback may do.
    """
    state = st.session_state
    if set_selection and r.provider:
        state["provider"] = r.provider
        state["model"] = r.model or PROVIDERS[r.provider].default_model
    chosen = state.get("provider")
    provider: str = chosen if isinstance(chosen, str) and chosen in PROVIDERS else (r.provider or "openai")
    cls = PROVIDERS[provider]
    caps = cls.MODELS.get(state.get("model") or "", cls.MODELS[cls.default_model])
    if prompt:
        state[ss.PROMPT] = r.prompt
        state[ss.TEMPLATE] = ""
    if r.quality:
        state[ss.QUALITY] = r.quality  # an unknown value falls back to the default when the form draws
    offered = [o.value for o in draft.size_options(caps)]
    if r.size in offered or not caps.free_size:
        state[ss.SIZE] = r.size
    elif r.size:
        state[ss.SIZE], state[ss.CUSTOM_SIZE] = draft.CUSTOM_SIZE, r.size
    for key, value in ((ss.BACKGROUND, r.background), (ss.FORMAT, r.output_format),
                       (ss.MODERATION, r.moderation), (ss.RESOLUTION, r.resolution)):
        if value:
            state[key] = value
    if r.output_compression is not None:
        state[ss.COMPRESSION] = r.output_compression
    if r.n:
        state[ss.N] = max(1, min(r.n, caps.max_n))


def code_snippets(job: JobView) -> list[tuple[str, str, str]]:
    """(tab title, code, language) of "Copy as code" for ``job``: its request as curl and as Python.

    The snippet calls the base URL the provider is configured with (its ``*_BASE_URL``
    environment variable, else the public API), never the emulator's loopback address:
    it is for running elsewhere, against the real service.
    """
    request = services.store().load_request(job.id)
    return [
        ("curl", codegen.as_curl(job.provider, request), "bash"),
        ("Python", codegen.as_python(job.provider, request), "python"),
    ]

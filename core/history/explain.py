"""A failed job, said in words a person can act on: what happened, whether it cost money, what to do.

Reads only fields the history keeps: the error's kind and typed facts (the
moderation stage, the wait a rate limit asked for; ``JobError``), the message,
the provider's own text and the billing outcome. Nothing is parsed back out of
a message, so rewording an adapter's message changes no explanation. Rows from
before those fields existed are explained from their kind alone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from core.history.views import JobError, JobView
from core.jobs.lifecycle import ACTIVE_STATES
from core.spend.money import format_usd
from providers import registry
from providers.base import Provider
from providers.registry import PROVIDERS

__all__ = ["Explanation", "charge_text", "explain", "provider_words"]


@dataclass(frozen=True)
class Explanation:
    title: str
    body: str
    tone: Literal["error", "warning", "info"]
    charge: str | None = None  # whether it was billed, in words
    hint: str | None = None  # the next step
    detail: str | None = None  # the provider's own words, for an expander
    settings_link: bool = False  # the fix is in Settings
    can_recheck: bool = True  # asking the provider again could still bring the image


def charge_text(status: str, billed_usd: Decimal | None, estimated: bool, estimate_usd: Decimal | None) -> str | None:
    """Whether a finished job cost money, from its ledger outcome."""
    if status in ACTIVE_STATES or (billed_usd is None and not estimated):
        return None
    if estimated:
        shown = billed_usd if billed_usd is not None else estimate_usd
        amount = f" The estimate of {format_usd(shown)}" if shown is not None else " The estimate"
        return (f"It may have been charged.{amount} counts against your budget; the provider's "
                "dashboard has the final word.")
    if billed_usd == 0:
        return "Not charged."
    return f"Charged {format_usd(billed_usd)}." if billed_usd is not None else None


def _find(value: object, names: tuple[str, ...]) -> str | None:
    """The first string under one of ``names``, however deep (providers nest their errors differently)."""
    if isinstance(value, dict):
        for name in names:
            found = value.get(name)
            if isinstance(found, str) and found.strip():
                return found.strip()
        inner_values: list[object] = list(value.values())
    elif isinstance(value, list):
        inner_values = value
    else:
        return None
    for inner in inner_values:
        found = _find(inner, names)
        if found:
            return found
    return None


def _plain(chunk: str) -> str:
    """One line of a provider's text: a JSON error body becomes its message and code."""
    if not chunk.startswith(("{", "[")):
        return chunk
    try:
        body = json.loads(chunk)
    except ValueError:
        return chunk
    message = _find(body, ("message", "detail", "msg", "error_message", "error"))
    code = _find(body, ("code", "type", "error_code"))
    if message or code:
        return (message or "") + (f" (code: {code})" if code else "")
    return chunk


def provider_words(detail: str | None) -> str | None:
    """The provider's own message as plain text, for display (nothing is decided from it)."""
    if not detail or not detail.strip():
        return None
    lines = [_plain(chunk.strip()) for chunk in detail.strip().splitlines()]
    return "\n".join(x for x in lines if x) or None


# --- the facts one explanation is made of ---------------------------------------------------------
@dataclass(frozen=True)
class _Facts:
    status: str
    error: JobError  # kind always set: the stored one, or what the status implies
    label: str
    cls: type[Provider] | None
    had_input_images: bool
    billed_estimated: bool  # the ledger counts the estimate: no report said what it cost
    charge: str | None
    finished_at: datetime | None

    @property
    def message(self) -> str:
        return (self.error.message or "").strip() or f"{self.label} reported a failure without a reason."

    @property
    def detail(self) -> str | None:
        text = (self.error.detail or "").strip()
        return text or None


def _implied_kind(status: str) -> str:
    return "canceled" if status == "canceled" else "unknown" if status == "unknown" else "job_failed"


def _moderation(f: _Facts) -> Explanation:
    stage, label, inputs = f.error.stage, f.label, f.had_input_images
    if stage == "output":
        what = f"{label} made the image, then its safety filter withheld it."
    elif stage == "input":
        what = (f"{label}'s safety filter refused the prompt or one of the input images."
                if inputs else f"{label}'s safety filter refused the prompt.")
    else:
        what = (f"{label}'s safety filter refused this request (the prompt or an input image)."
                if inputs else f"{label}'s safety filter refused this request.")
    hint = "Reword the prompt" + (", or try other input images." if inputs else ".")
    charge = f.charge
    if stage == "input" and f.billed_estimated:
        charge = (f"Refused before any image was made, so {label} does not bill it (the app's budget still "
                  "counts the estimate, to be safe).")
    return Explanation("Blocked by the safety filter", what, "warning", charge, hint, f.detail or f.message)


def _retry_hint(retry_after: float | None, finished: datetime | None) -> str:
    if retry_after is None:
        return "Wait a minute, then try again."
    seconds = math.ceil(retry_after)
    if finished is None:
        return f"Try again in about {seconds} s."
    when = (finished + timedelta(seconds=seconds)).astimezone()
    return f"Try again after {when:%H:%M:%S} (about {seconds} s after the refusal)."


def _rate_limited(f: _Facts) -> Explanation:
    return Explanation(f"{f.label} asked to slow down", f"{f.label} is limiting how fast requests can be sent.",
                       "warning", f.charge, _retry_hint(f.error.retry_after, f.finished_at), f.detail or f.message)


def _auth(f: _Facts) -> Explanation:
    env = f.cls.key_env if f.cls else "the provider's key variable"
    return Explanation(
        f"No working {f.label} key",
        f"{f.label} did not accept the API key, or none was set.",
        "error",
        f.charge,
        f"Type a key on the Settings page (kept for this session only), or add {env} to "
        ".streamlit/secrets.toml or the environment and restart the app."
        + (f" {f.cls.key_help}" if f.cls and f.cls.key_help else ""),
        f.detail or f.message,
        settings_link=True,
    )


def _quota(f: _Facts) -> Explanation:
    return Explanation(f"{f.label} account out of credit", f.message, "error", f.charge,
                       "Top up or raise the spending limit on the provider's site, then try again.", f.detail)


def _unavailable(f: _Facts) -> Explanation:
    title = f"{f.label} did not answer in time" if f.error.kind == "timeout" else f"{f.label} is unavailable"
    return Explanation(title, f.message, "warning", f.charge, "Try again in a few minutes.", f.detail)


def _unknown(f: _Facts) -> Explanation:
    return Explanation("Outcome unknown", f.message, "warning", f.charge,
                       f"Check {f.label}'s dashboard before sending it again.", f.detail)


def _canceled(f: _Facts) -> Explanation:
    return Explanation("Canceled", f.message, "info", f.charge, None, f.detail)


def _refused(f: _Facts) -> Explanation:
    return Explanation(f"{f.label} refused the request", f.message, "error", f.charge,
                       "Change the highlighted setting and generate again.", f.detail)


def _failed(f: _Facts) -> Explanation:
    return Explanation(f"{f.label} could not make this image", f.message, "error", f.charge,
                       "Try again; if it keeps failing, try another provider.", f.detail)


def _result_expired(f: _Facts) -> Explanation:
    return Explanation(
        "The image link expired",
        f"{f.label} made the image, but its link had expired before it could be downloaded, so the image "
        "is gone: asking again would only fetch the same dead link.",
        "error", f.charge, "Run the job again to make a new image.", f.detail, can_recheck=False,
    )


def _result_refused(f: _Facts) -> Explanation:
    return Explanation(f"{f.label}'s image was not taken in", f.message, "error", f.charge,
                       "Run the job again, or try another provider.", f.detail, can_recheck=False)


# Codes of a failure to take in a finished image: the same answer comes back however often it is asked.
_BY_CODE: dict[str, Callable[[_Facts], Explanation]] = {
    "result_expired": _result_expired,
    "result_too_large": _result_refused,
    "url_refused": _result_refused,
    "download_refused": _result_refused,
    "not_an_image": _result_refused,
}

# Kinds that explain themselves even when the outcome is unknown (a poll refused for a revoked key...).
_BY_KIND: dict[str, Callable[[_Facts], Explanation]] = {
    "moderation": _moderation,
    "rate_limited": _rate_limited,
    "auth": _auth,
    "quota": _quota,
    "unavailable": _unavailable,
    "timeout": _unavailable,
}
# Kinds that do only when the outcome is known.
_BY_KIND_KNOWN: dict[str, Callable[[_Facts], Explanation]] = {
    "canceled": _canceled,
    "invalid_request": _refused,
    "model_unavailable": _refused,
}


def _pick(kind: str, status: str, code: str | None = None) -> Callable[[_Facts], Explanation]:
    if code in _BY_CODE:
        return _BY_CODE[code]
    if kind in _BY_KIND:
        return _BY_KIND[kind]
    if kind == "unknown" or status == "unknown":
        return _unknown
    return _BY_KIND_KNOWN.get(kind, _failed)


def explain(
    job: JobView | None = None,
    /,
    *,
    had_input_images: bool = False,
    status: str | None = None,
    error_kind: str | None = None,
    error_message: str | None = None,
    error_detail: str | None = None,
    provider: str | None = None,
    billed_usd: Decimal | None = None,
    billed_estimated: bool = False,
    estimate_usd: Decimal | None = None,
    finished_at: datetime | None = None,
) -> Explanation:
    """Explain a finished job: ``explain(job, had_input_images=...)`` reads every typed field of its error.

    The keyword form (``status=..., error_kind=..., error_message=..., error_detail=...``)
    is what pages called before the typed fields existed; it explains from the kind alone.
    """
    if job is not None:
        status, provider, finished_at = job.status, job.provider, job.finished_at
        billed_usd = job.billed.usd if job.billed else None
        billed_estimated = bool(job.billed and job.billed.estimated)
        estimate_usd = job.estimate.usd if job.estimate else None
        error = job.error
        error_message, error_detail = job.error_message, job.error_detail
    else:
        error = JobError(error_kind, error_message, error_detail) if error_kind is not None else None
    status = status or "failed"
    error = error or JobError(_implied_kind(status), error_message, error_detail)
    cls = PROVIDERS.get(provider or "")
    facts = _Facts(
        status=status,
        error=error,
        label=registry.label(provider) if provider else "The provider",
        cls=cls,
        had_input_images=had_input_images,
        billed_estimated=billed_estimated,
        charge=charge_text(status, billed_usd, billed_estimated, estimate_usd),
        finished_at=finished_at,
    )
    return _pick(error.kind, status, error.code)(facts)

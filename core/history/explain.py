"""A failed job, said in words a person can act on: what happened, whether it cost money, what to do.

Reads only what the history keeps (``error_kind``, the adapter's message, the
billing outcome), so every page can explain any job the same way.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from providers.registry import PROVIDERS

__all__ = ["Explanation", "STATUS_WORDS", "charge_text", "explain", "provider_words"]

STATUS_WORDS = {
    "queued": "Queued",
    "submitting": "Sending",
    "submitted": "Waiting for the provider",
    "running": "Running",
    "succeeded": "Done",
    "failed": "Failed",
    "canceled": "Canceled",
    "unknown": "Outcome unknown",
}

_KIND_PREFIX = re.compile(r"^([a-z_]+): (.*)$", re.S)
_KNOWN_KINDS = {"moderation", "rate_limited", "auth", "quota", "invalid_request", "model_unavailable", "job_failed"}
_WAIT = re.compile(r"(?:wait|retry|try again in|after)\D{0,12}(\d+(?:\.\d+)?)\s*(?:s\b|sec|second)", re.I)


@dataclass(frozen=True)
class Explanation:
    title: str
    body: str
    tone: Literal["error", "warning", "info"]
    charge: str | None = None  # whether it was billed, in words
    hint: str | None = None  # the next step
    detail: str | None = None  # the provider's own words, for an expander
    settings_link: bool = False  # the fix is in Settings


def _usd(value: Decimal) -> str:
    q = value.quantize(Decimal("0.0001")).normalize()
    text = format(q, "f")
    whole, _, frac = text.partition(".")
    return f"${whole}.{frac.ljust(2, '0')}"


def charge_text(status: str, billed_usd: Decimal | None, estimated: bool, estimate_usd: Decimal | None) -> str | None:
    """Whether a finished job cost money, from its ledger outcome."""
    if status in ("queued", "submitting", "submitted", "running"):
        return None
    if billed_usd is None and not estimated:
        return None
    if not estimated and billed_usd is not None and billed_usd == 0:
        return "Not charged."
    if estimated:
        shown = billed_usd if billed_usd is not None else estimate_usd
        amount = f" The estimate of {_usd(shown)}" if shown is not None else " The estimate"
        return (f"It may have been charged.{amount} counts against your budget; the provider's "
                "dashboard has the final word.")
    return f"Charged {_usd(billed_usd)}." if billed_usd is not None else None


def _find(value: object, names: tuple[str, ...]) -> str | None:
    """The first string under one of ``names``, however deep (providers nest their errors differently)."""
    if isinstance(value, dict):
        for name in names:
            found = value.get(name)
            if isinstance(found, str) and found.strip():
                return found.strip()
        for inner in value.values():
            found = _find(inner, names)
            if found:
                return found
    elif isinstance(value, list):
        for inner in value:
            found = _find(inner, names)
            if found:
                return found
    return None


def provider_words(detail: str | None) -> str | None:
    """The provider's own message as plain text: a JSON error body becomes its message and code."""
    if not detail or not detail.strip():
        return None
    text = detail.strip()
    lines = []
    for chunk in text.splitlines():
        chunk = chunk.strip()
        if chunk.startswith(("{", "[")):
            try:
                body = json.loads(chunk)
            except ValueError:
                lines.append(chunk)
                continue
            message = _find(body, ("message", "detail", "msg", "error_message", "error"))
            code = _find(body, ("code", "type", "error_code"))
            if message or code:
                lines.append((message or "") + (f" (code: {code})" if code else ""))
                continue
        lines.append(chunk)
    return "\n".join(x for x in lines if x) or None


def _retry_at(message: str, finished: datetime | None) -> str:
    m = _WAIT.search(message)
    if not m:
        return "Wait a minute, then try again."
    seconds = math.ceil(float(m.group(1)))
    if finished is None:
        return f"Try again in about {seconds} s."
    when = (finished + timedelta(seconds=seconds)).astimezone()
    return f"Try again after {when:%H:%M:%S} (about {seconds} s after the refusal)."


def _moderation_stage(message: str, detail: str | None) -> str | None:
    text = f"{message} {detail or ''}".lower()
    if "withheld" in text or '"output"' in text or "stage: output" in text or "output stage" in text:
        return "output"
    if "refused the prompt" in text or '"input"' in text or "stage: input" in text or "input stage" in text:
        return "input"
    return None


def explain(
    *,
    status: str,
    error_kind: str | None,
    error_message: str | None,
    error_detail: str | None,
    provider: str,
    had_input_images: bool,
    billed_usd: Decimal | None = None,
    billed_estimated: bool = False,
    estimate_usd: Decimal | None = None,
    finished_at: datetime | None = None,
) -> Explanation:
    cls = PROVIDERS.get(provider)
    label = cls.label if cls else provider
    message = (error_message or "").strip() or f"{label} reported a failure without a reason."
    charge = charge_text(status, billed_usd, billed_estimated, estimate_usd)
    detail = error_detail.strip() if error_detail and error_detail.strip() else None
    kind = error_kind or ("canceled" if status == "canceled" else "unknown" if status == "unknown" else "job_failed")
    if kind == "unknown" and detail:
        # The runner files a refusal it could not be sure about as "unknown", the real error first in the detail.
        m = _KIND_PREFIX.match(detail)
        if m and m.group(1) in _KNOWN_KINDS:
            kind = m.group(1)
            first, _, rest = m.group(2).partition("\n")
            message, detail = first.strip() or message, rest.strip() or None

    if kind == "moderation":
        stage = _moderation_stage(message, detail)
        if stage == "output":
            what = f"{label} made the image, then its safety filter withheld it."
        elif stage == "input":
            what = (f"{label}'s safety filter refused the prompt or one of the input images."
                    if had_input_images else f"{label}'s safety filter refused the prompt.")
        else:
            what = (f"{label}'s safety filter refused this request (the prompt or an input image)."
                    if had_input_images else f"{label}'s safety filter refused this request.")
        hint = "Reword the prompt" + (", or try other input images." if had_input_images else ".")
        if stage == "input" and billed_estimated:
            charge = (f"Refused before any image was made, so {label} does not bill it (the app's budget still "
                      "counts the estimate, to be safe).")
        return Explanation("Blocked by the safety filter", what, "warning", charge, hint, detail or message)
    if kind == "rate_limited":
        return Explanation(f"{label} asked to slow down", f"{label} is limiting how fast requests can be sent.",
                           "warning", charge, _retry_at(message, finished_at), detail or message)
    if kind == "auth":
        env = cls.key_env if cls else "the provider's key variable"
        return Explanation(
            f"No working {label} key",
            f"{label} did not accept the API key, or none was set.",
            "error",
            charge,
            f"Type a key on the Settings page (kept for this session only), or add {env} to "
            ".streamlit/secrets.toml or the environment and restart the app."
            + (f" {cls.key_help}" if cls and cls.key_help else ""),
            detail or message,
            settings_link=True,
        )
    if kind == "quota":
        return Explanation(f"{label} account out of credit", message, "error", charge,
                           "Top up or raise the spending limit on the provider's site, then try again.", detail)
    if kind in ("unavailable", "timeout"):
        return Explanation(f"{label} did not answer in time" if kind == "timeout" else f"{label} is unavailable",
                           message, "warning", charge, "Try again in a few minutes.", detail)
    if kind == "unknown" or status == "unknown":
        return Explanation("Outcome unknown", message, "warning", charge,
                           f"Check {label}'s dashboard before sending it again.", detail)
    if kind == "canceled":
        return Explanation("Canceled", message, "info", charge, None, detail)
    if kind in ("invalid_request", "model_unavailable"):
        return Explanation(f"{label} refused the request", message, "error", charge,
                           "Change the highlighted setting and generate again.", detail)
    return Explanation(f"{label} could not make this image", message, "error", charge,
                       "Try again; if it keeps failing, try another provider.", detail)

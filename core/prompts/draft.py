"""The Studio form as data: options a model offers, the batch a prompt makes, and why a request can't go.

Nothing here touches Streamlit or the network, so the page logic is testable
on its own and the Compare/History pages can reuse it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import clock
from core.prompts import templates
from providers import registry, validation
from providers.errors import InvalidRequest, ModelUnavailable
from providers.registry import PROVIDERS
from providers.types import QUALITY_ORDER, ImageRequest, ModelCaps

__all__ = [
    "CUSTOM_SIZE",
    "MAX_BATCH_PROMPTS",
    "Batch",
    "PromptUsage",
    "Restored",
    "SizeOption",
    "batch",
    "default_quality",
    "default_size",
    "form_from_recipe",
    "problems",
    "prompt_usage",
    "quality_options",
    "recipe_for",
    "size_label",
    "size_options",
    "split_values",
]

CUSTOM_SIZE = "custom"
# One click must never queue a surprising number of paid jobs.
MAX_BATCH_PROMPTS = 24
_WXH = re.compile(r"^(\d{2,5})x(\d{2,5})$")
_RATIO = re.compile(r"^(\d{1,2}):(\d{1,2})$")
RECIPE_APP = "Image Studio"


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class SizeOption:
    value: str
    label: str


def _shape(w: float, h: float) -> str:
    if abs(w / h - 1) < 0.01:
        return "square"
    return "landscape" if w > h else "portrait"


def _ratio_of(w: int, h: int) -> str:
    g = math.gcd(w, h)
    a, b = w // g, h // g
    return f"{a}:{b}" if a <= 32 and b <= 32 else f"{w / h:.2f}:1"


def size_label(value: str, caps: ModelCaps | None = None) -> str:
    """How a size reads in a picker: ``3:2 landscape · 1536×1024``."""
    if value == "auto":
        return "Auto (the model picks)"
    if value == CUSTOM_SIZE:
        return "Custom size…"
    m = _WXH.match(value)
    if m:
        w, h = int(m.group(1)), int(m.group(2))
        extra = " · experimental" if validation.is_experimental_size(value) else ""
        return f"{_ratio_of(w, h)} {_shape(w, h)} · {w}×{h}{extra}"
    r = _RATIO.match(value)
    if r:
        w, h = int(r.group(1)), int(r.group(2))
        pixels = caps.pixels_for(value) if caps is not None else None
        return f"{value} {_shape(w, h)}" + (f" · {pixels.replace('x', '×')}" if pixels else "")
    return value


def size_options(caps: ModelCaps) -> list[SizeOption]:
    """Sizes this model can make: the common ratios first, then the rest, then custom where allowed."""
    values: list[str] = []
    covered: set[str] = set()
    for ratio, pixels in caps.ratio_pixels:
        if validation.wire_size(ratio, caps) is not None:
            values.append(ratio)
            covered.update({ratio, pixels})
    for size in caps.sizes:
        if size not in covered and size != "auto":
            values.append(size)
            covered.add(size)
    if "auto" in caps.sizes:
        values.append("auto")
    if caps.free_size:
        values.append(CUSTOM_SIZE)
    return [SizeOption(v, size_label(v, caps)) for v in values]


def default_size(caps: ModelCaps, preferred: str | None) -> str:
    offered = [o.value for o in size_options(caps)]
    if preferred is not None and preferred in offered:
        return preferred
    return offered[0]


def quality_options(caps: ModelCaps) -> list[str]:
    return sorted(caps.qualities, key=lambda q: QUALITY_ORDER.index(q) if q in QUALITY_ORDER else len(QUALITY_ORDER))


def default_quality(caps: ModelCaps, preferred: str | None) -> str:
    if preferred is not None and preferred in caps.qualities:
        return preferred
    # Drafts first: medium is the cheapest useful look, whatever the provider's own default.
    for q in ("medium", caps.default_quality):
        if q in caps.qualities:
            return q
    return quality_options(caps)[0]


# --------------------------------------------------------------------------- prompt


@dataclass(frozen=True)
class PromptUsage:
    used: int
    limit: int
    unit: str  # characters / tokens

    @property
    def over(self) -> bool:
        return self.used > self.limit

    @property
    def text(self) -> str:
        about = "about " if self.unit == "tokens" else ""
        return f"{about}{self.used:,} / {self.limit:,} {self.unit}"


def prompt_usage(prompt: str, caps: ModelCaps) -> PromptUsage:
    if caps.prompt_limit_unit == "tokens":
        # The same four-characters-a-token rule validation applies.
        return PromptUsage(math.ceil(len(prompt) / 4), caps.prompt_limit, "tokens")
    return PromptUsage(len(prompt), caps.prompt_limit, "characters")


def split_values(text: str | None) -> list[str]:
    """One value per line, trimmed; blanks and repeats dropped (a repeat would be a paid duplicate)."""
    out: dict[str, None] = {}
    for line in (text or "").splitlines():
        if line.strip():
            out.setdefault(line.strip(), None)
    return list(out)


@dataclass(frozen=True)
class Batch:
    """The prompts one click makes. ``template``/``variables`` are set when the prompt has ``{{variables}}``."""

    prompts: tuple[str, ...]
    variables: tuple[dict[str, str], ...] | None = None
    template: str | None = None
    names: tuple[str, ...] = ()
    counts: tuple[int, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return len(self.prompts)

    def describe(self, n: int) -> str:
        """``2 headlines × 3 images per prompt = 6 images``."""
        parts = [f"{c} {name} value{'s' if c != 1 else ''}" for name, c in zip(self.names, self.counts, strict=True)]
        parts.append(f"{n} image{'s' if n != 1 else ''} per prompt")
        total = self.size * n
        return " × ".join(parts) + f" = {total} image{'s' if total != 1 else ''}"


def batch(prompt: str, values: Mapping[str, str | None]) -> Batch:
    """Expand ``{{variables}}`` with one value per line each; the batch is their product."""
    names = templates.variables(prompt)
    problems = [f"Check the braces: {p}." for p in templates.malformed(prompt)]
    if not names:
        return Batch(prompts=(prompt,), problems=tuple(problems))
    lists = {name: split_values(values.get(name)) for name in names}
    counts = tuple(len(lists[name]) for name in names)
    try:
        expanded = templates.expand(prompt, lists, limit=MAX_BATCH_PROMPTS)
    except InvalidRequest as err:
        return Batch(prompts=(), template=prompt, names=tuple(names), counts=counts,
                     problems=(*problems, str(err)))
    return Batch(
        prompts=tuple(e.prompt for e in expanded),
        variables=tuple(e.variables for e in expanded),
        template=prompt,
        names=tuple(names),
        counts=counts,
        problems=tuple(problems),
    )


# --------------------------------------------------------------------------- readiness


def problems(
    request: ImageRequest, caps: ModelCaps, prompts: Sequence[str], *, can_upload: bool
) -> list[str]:
    """Why this request would be refused, in words a person can act on (empty: it can go)."""
    out: list[str] = []
    checked: set[str] = set()
    for prompt in prompts or (request.prompt,):
        try:
            validation.validate(request.with_(prompt=prompt), caps, can_upload=can_upload)
        except (InvalidRequest, ModelUnavailable) as err:
            text = str(err)
            if text not in checked:
                checked.add(text)
                out.append(text)
    return out


# --------------------------------------------------------------------------- recipes


def recipe_for(
    *,
    provider: str,
    request: ImageRequest,
    job_id: str | None = None,
    run_id: str | None = None,
    endpoint: str | None = None,
    estimate_usd: Any = None,
    billed_usd: Any = None,
    parent_job_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What a downloaded image carries so it can restore the form (no bytes, no keys)."""
    return {
        "app": RECIPE_APP,
        "version": 1,
        "provider": provider,
        "endpoint": endpoint,
        "job_id": job_id,
        "run_id": run_id,
        "parent_job_id": parent_job_id,
        "params": request.params(),
        "estimate_usd": None if estimate_usd is None else str(estimate_usd),
        "billed_usd": None if billed_usd is None else str(billed_usd),
        "saved_at": clock.now().isoformat(timespec="seconds"),
        **(dict(extra) if extra else {}),
    }


@dataclass(frozen=True)
class Restored:
    """Form values read back from a recipe; ``summary`` describes it in one line."""

    provider: str | None
    model: str | None
    prompt: str
    quality: str | None
    size: str | None
    background: str | None
    output_format: str | None
    output_compression: int | None
    moderation: str | None
    n: int | None
    resolution: str | None
    summary: str


def form_from_recipe(recipe: Mapping[str, Any] | None) -> Restored | None:
    """The form a recipe describes, or None when it is not one of ours or has no prompt."""
    if not isinstance(recipe, Mapping):
        return None
    params = recipe.get("params")
    if not isinstance(params, Mapping):
        return None
    prompt = params.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return None
    provider = recipe.get("provider") if recipe.get("provider") in PROVIDERS else None
    model = params.get("model") if isinstance(params.get("model"), str) else None
    if provider is not None and model not in PROVIDERS[provider].MODELS:
        model = None

    def text(name: str) -> str | None:
        value = params.get(name)
        return value if isinstance(value, str) and value else None

    def whole(name: str) -> int | None:
        value = params.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    where = registry.label(provider) if provider else "an unknown provider"
    short = prompt if len(prompt) <= 80 else prompt[:77] + "…"
    bits = [b for b in (text("quality"), text("size")) if b]
    return Restored(
        provider=provider,
        model=model,
        prompt=prompt,
        quality=text("quality"),
        size=text("size"),
        background=text("background"),
        output_format=text("output_format"),
        output_compression=whole("output_compression"),
        moderation=text("moderation"),
        n=whole("n"),
        resolution=text("resolution"),
        summary=f"“{short}” on {where}" + (f", {', '.join(bits)}" if bits else ""),
    )

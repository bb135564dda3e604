"""The Compare page's request builder: one request, and what to vary (side by side, or an X/Y grid).

Returns a ``core.compare.experiments.Plan`` (or None with the reason) for the
preview to price; it never submits anything itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from core.compare import experiments as ex
from core.images import prepare as imageprep
from core.prompts import draft
from providers import registry
from providers.errors import InvalidRequest
from providers.registry import PROVIDERS
from providers.types import QUALITY_WORDS, ImageRequest, InputImage
from ui import state

MODE = "compare_mode"
SIDE, GRID, PAST = "Side by side", "Experiment grid", "Past experiments"
PROMPT = "compare_prompt"
UPLOADS = "compare_uploads"
MODEL = "compare_model"
ASPECT = "compare_aspect"
TARGET_PROVIDERS = "compare_providers"
TARGET_QUALITIES = "compare_qualities"
ROWS = "compare_grid_rows"
COLS = "compare_grid_cols"
VALUES = "compare_grid_values_"  # + axis kind
FIXED = "compare_fixed_"  # + provider / quality / aspect
NAME = "compare_name"
MAX_SIDE_BY_SIDE = 8

_AXIS_HELP = {
    "prompt": "One prompt per line. Each line is a row (or column) of the grid.",
    "quality": "Quality tiers to try.",
    "aspect": "Aspect ratios to try.",
    "provider": "Providers to try. A provider without a key runs on the emulator.",
}


@dataclass(frozen=True)
class Built:
    plan: ex.Plan | None
    problem: str | None = None
    refused: bool = False  # the problem is an input that cannot be sent (shown as an error, not a tip)


def _models() -> list[str]:
    """Models any provider offers (not retired), the sidebar's first."""
    seen: dict[str, None] = {}
    for name in PROVIDERS:
        for m in state.offered_models(name):
            seen.setdefault(m, None)
    chosen = state.selection().model
    return [chosen, *[m for m in seen if m != chosen]] if chosen in seen else list(seen)


def _model_text(model: str) -> str:
    for cls in PROVIDERS.values():
        caps = cls.MODELS.get(model)
        if caps is not None:
            return caps.label
    return model


def _inputs() -> tuple[InputImage, ...]:
    files = st.session_state.get(UPLOADS) or []
    return tuple(InputImage(data=f.getvalue(), mime=f.type or "image/png", name=f.name) for f in files)


def _input_problem(images: tuple[InputImage, ...]) -> str | None:
    """Why an uploaded input cannot be sent (the image gate, not an image, a format no provider takes), or None.

    Said before anything is priced or run: a comparison meant as an edit must not run as text-to-image.
    """
    for image in images:
        assert image.data is not None
        try:
            info = imageprep.inspect(image.data, image.name)
        except InvalidRequest as err:
            return f"{err} Remove it from the input images to go on."
        if info.format not in imageprep.SUPPORTED:
            return (f"{image.name} is a {info.format.upper()} image; providers take PNG, JPEG or WEBP. "
                    "Remove it from the input images to go on.")
    return None


def _prompt() -> str:
    text = st.text_area(
        "Prompt",
        key=PROMPT,
        height=100,
        placeholder="Describe the image, e.g. A lighthouse on a cliff at dawn, watercolor",
        persist_state="session",
    )
    return text.strip()


def _model(where: DeltaGenerator) -> str:
    models = _models()
    where.selectbox("Model", models, key=MODEL, format_func=_model_text, persist_state="session",
                    help="A provider that does not offer this model uses its own default (the preview says so).")
    return st.session_state.get(MODEL) or models[0]


def _extras() -> tuple[InputImage, ...]:
    files = st.session_state.get(UPLOADS) or []
    label = "Input images and name" + (f" · {len(files)} image{'s' if len(files) != 1 else ''}" if files else "")
    with st.expander(label, icon=":material/add_photo_alternate:"):
        c1, c2 = st.columns([3, 2])
        c1.file_uploader(
            "Input images (optional: makes every cell an edit of them)",
            accept_multiple_files=True,  # any file: the image gate says what is wrong with one, as on Studio
            key=UPLOADS,
        )
        c2.text_input("Name (optional)", key=NAME, placeholder="Named after the prompt",
                      help="How this experiment is listed under Past experiments.")
    return _inputs()


def side_by_side() -> Built:
    prompt = _prompt()
    providers = list(PROVIDERS)
    c1, c2, c3, c4 = st.columns([3, 2, 1.3, 1.5])
    st.session_state.setdefault(TARGET_PROVIDERS, providers[:2])
    st.session_state.setdefault(TARGET_QUALITIES, ["medium"])
    picked = c1.multiselect("Providers", providers, key=TARGET_PROVIDERS, format_func=registry.label,
                            persist_state="session")
    qualities = c2.multiselect("Quality tiers", list(ex.QUALITIES), key=TARGET_QUALITIES, persist_state="session",
                               format_func=_quality_text)
    c3.selectbox("Aspect", list(ex.ASPECTS), key=ASPECT, format_func=_aspect_text, persist_state="session")
    aspect = st.session_state.get(ASPECT) or ex.ASPECTS[0]
    model = _model(c4)
    images = _extras()
    problem = _input_problem(images)
    if problem:
        return Built(None, problem, refused=True)
    if not prompt:
        return Built(None, "Write a prompt to see what it costs on each provider.")
    if not picked or not qualities:
        return Built(None, "Pick at least one provider and one quality tier.")
    targets = [(p, q) for p in picked for q in qualities]
    if len(targets) > MAX_SIDE_BY_SIDE:
        return Built(None, f"{len(targets)} columns is more than a side-by-side view can show well "
                           f"(up to {MAX_SIDE_BY_SIDE}). Use the experiment grid, or pick fewer.")
    base = ImageRequest(prompt=prompt, model=model, size=aspect, images=images)
    return Built(ex.plan_side_by_side(base, targets))


def _aspect_text(aspect: str) -> str:
    return draft.size_label(aspect)  # the Studio's spelling ("3:2 landscape")


def _quality_text(quality: str) -> str:
    return QUALITY_WORDS.get(quality, quality)


def _axis_text(kind: str) -> str:
    return ex.AXIS_KINDS.get(kind, kind)


def _axis_values(kind: str, where: DeltaGenerator) -> tuple[str, ...]:
    key = VALUES + kind
    if kind == "prompt":
        st.session_state.setdefault(key, "")
        text = where.text_area("Prompt variants", key=key, height=120, help=_AXIS_HELP[kind],
                               placeholder="A lighthouse at dawn, watercolor\nA lighthouse at dawn, photograph",
                               persist_state="session")
        return tuple(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))
    options = {"quality": list(ex.QUALITIES), "aspect": list(ex.ASPECTS), "provider": list(PROVIDERS)}[kind]
    defaults = {"quality": ["low", "high"], "aspect": ["1:1", "3:2"], "provider": options[:2]}[kind]
    st.session_state.setdefault(key, defaults)
    fmt: Callable[[str], str] = {"provider": registry.label, "aspect": _aspect_text,
                                 "quality": _quality_text}.get(kind, str)
    picked = where.multiselect(ex.AXIS_KINDS[kind] + " values", options, key=key, format_func=fmt,
                               help=_AXIS_HELP[kind], persist_state="session")
    return tuple(picked)


def grid() -> Built:
    kinds = list(ex.AXIS_KINDS)
    st.session_state.setdefault(ROWS, "quality")
    st.session_state.setdefault(COLS, "provider")
    c1, v1, c2, v2 = st.columns([1, 2, 1, 2])
    c1.selectbox("Rows vary", kinds, key=ROWS, format_func=_axis_text, persist_state="session")
    col_kinds = [k for k in kinds if k != st.session_state[ROWS]]
    if st.session_state.get(COLS) not in col_kinds:
        st.session_state[COLS] = col_kinds[0]
    c2.selectbox("Columns vary", col_kinds, key=COLS, format_func=_axis_text, persist_state="session")
    row_kind, col_kind = st.session_state[ROWS], st.session_state[COLS]
    row_values = _axis_values(row_kind, v1)
    col_values = _axis_values(col_kind, v2)
    used = {row_kind, col_kind}
    prompt = _prompt() if "prompt" not in used else ""
    fixed = [k for k in ("provider", "quality", "aspect") if k not in used]
    cols = st.columns([1.5] + [1] * len(fixed))
    model = _model(cols[0])
    cols = cols[1:]
    values: dict[str, str] = {}
    for col, kind in zip(cols, fixed, strict=False):
        key = FIXED + kind
        if kind == "provider":
            st.session_state.setdefault(key, state.selection().provider)
            col.selectbox("Provider (all cells)", list(PROVIDERS), key=key, format_func=registry.label,
                          persist_state="session")
        elif kind == "quality":
            st.session_state.setdefault(key, "medium")
            col.selectbox("Quality (all cells)", list(ex.QUALITIES), key=key, persist_state="session")
        else:
            st.session_state.setdefault(key, "1:1")
            col.selectbox("Aspect (all cells)", list(ex.ASPECTS), key=key, format_func=_aspect_text,
                          persist_state="session")
        values[kind] = st.session_state[key]
    images = _extras()
    problem = _input_problem(images)
    if problem:
        return Built(None, problem, refused=True)
    if "prompt" not in used and not prompt:
        return Built(None, "Write a prompt to see the grid and what it costs.")
    if not row_values or not col_values:
        return Built(None, "Give the rows and the columns at least one value each.")
    cells = len(row_values) * len(col_values)
    if cells > ex.MAX_CELLS:
        return Built(None, f"{len(row_values)}×{len(col_values)} is {cells} images: more than a grid can show well "
                           f"(up to {ex.MAX_CELLS}). Pick fewer values.")
    base = ImageRequest(
        prompt=prompt or row_values[0],
        model=model,
        size=values.get("aspect", "1:1"),
        quality=values.get("quality", "medium"),
        images=images,
    )
    plan = ex.plan_grid(base, values.get("provider", state.selection().provider),
                        ex.Axis(row_kind, row_values), ex.Axis(col_kind, col_values))
    return Built(plan)


def restore(grid: ex.Grid) -> None:
    """Put a past comparison's settings back in the builder (a callback: runs before the widgets draw)."""
    ss = st.session_state
    base = grid.base or {}
    if base.get("model"):
        ss[MODEL] = base["model"]
    if grid.kind == "grid":
        ss[MODE] = GRID
        ss[ROWS], ss[COLS] = grid.rows.kind, grid.cols.kind
        for axis in (grid.rows, grid.cols):
            ss[VALUES + axis.kind] = "\n".join(axis.values) if axis.kind == "prompt" else list(axis.values)
        if grid.base_provider:
            ss[FIXED + "provider"] = grid.base_provider
        if base.get("quality") in ex.QUALITIES:
            ss[FIXED + "quality"] = base["quality"]
        if base.get("size") in ex.ASPECTS:
            ss[FIXED + "aspect"] = base["size"]
    else:
        ss[MODE] = SIDE
        targets = [v.partition("|") for v in grid.cols.values]
        ss[TARGET_PROVIDERS] = list(dict.fromkeys(p for p, _, _ in targets if p in PROVIDERS))
        ss[TARGET_QUALITIES] = list(dict.fromkeys(q for _, _, q in targets if q in ex.QUALITIES))
        if base.get("size") in ex.ASPECTS:
            ss[ASPECT] = base["size"]
    if base.get("prompt") and grid.rows.kind != "prompt" and grid.cols.kind != "prompt":
        ss[PROMPT] = base["prompt"]

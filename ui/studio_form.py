"""The Studio form: prompt (``ui.studio_prompt``), inputs, parameters, live cost, Generate, results.

Every control is drawn from the chosen model's ``ModelCaps``, so it offers only
what that provider accepts. Widget values keep across page changes
(``persist_state="session"``); defaults are put in session state before a
widget draws (never through ``value=``), so a restored or template value wins.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from core.prompts import draft, templates
from core.spend.money import format_usd
from providers import registry, validation
from providers.registry import PROVIDERS
from providers.types import QUALITY_WORDS, ImageRequest, ModelCaps
from ui import previews, services, state, studio_actions, studio_cost, studio_inputs, studio_output, studio_prompt, text
from ui import studio_state as ss

# --------------------------------------------------------------------------- parameters


def _ensure(key: str, options: Sequence[object], default: object) -> None:
    """Put a valid value in place before the widget draws (a provider change can strand the old one)."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = default if default in options else options[0]


class _Pairs:
    """Hands out columns two by two, so optional controls pack without holes."""

    def __init__(self) -> None:
        self._cols: list[DeltaGenerator] = []

    def next(self) -> DeltaGenerator:
        if not self._cols:
            self._cols = list(st.columns(2))
        return self._cols.pop(0)


def _shape_hint(caps: ModelCaps, size: str, first_input: tuple[int, int]) -> str | None:
    """A note when the chosen shape differs from the first input's (the edit would crop or stretch it)."""
    pixels = size if "x" in size else caps.pixels_for(size)
    if pixels:
        w, h = (int(v) for v in pixels.split("x"))
    elif ":" in size:
        w, h = (int(v) for v in size.split(":"))
    else:
        return None
    iw, ih = first_input
    if abs((w / h) / (iw / ih) - 1) <= 0.05:
        return None
    tip = " Pick Auto to follow the image's shape." if "auto" in caps.sizes else ""
    return f"Your first image is {iw}×{ih}; the result will be {draft.size_label(size, caps)}.{tip}"


def _quality(caps: ModelCaps) -> str:
    qualities = draft.quality_options(caps)
    _ensure(ss.QUALITY, qualities, draft.default_quality(caps, st.session_state.get("default_quality")))
    picked = st.segmented_control(
        "Quality",
        qualities,
        key=ss.QUALITY,
        required=True,
        format_func=lambda q: QUALITY_WORDS.get(q, q),
        help="Low is a cheap draft, high costs several times more. Auto lets the model decide (priced as high).",
        persist_state="session",
        bind="query-params",
    )
    return picked or qualities[0]  # required=True: never empty, but the widget's type allows it


def _size(caps: ModelCaps, first_input: tuple[int, int] | None) -> str:
    """The aspect ratio or size (a custom one typed in pixels), with a note when it reshapes the first input."""
    sizes = draft.size_options(caps)
    values = [o.value for o in sizes]
    labels = {o.value: o.label for o in sizes}
    _ensure(ss.SIZE, values, draft.default_size(caps, st.session_state.get("default_size")))
    size: str = st.selectbox(
        "Aspect ratio / size",
        values,
        key=ss.SIZE,
        format_func=lambda v: labels.get(v, v),
        help="The shape of the image. Bigger images cost more.",
        persist_state="session",
        bind="query-params",
    )
    if size == draft.CUSTOM_SIZE:
        size = _custom_size()
    usable = size != "auto" and ("x" not in size or validation.check_free_size(size) is None)
    hint = _shape_hint(caps, size, first_input) if first_input and usable else None
    if hint:
        st.caption(f":material/aspect_ratio: {hint}")
    return size


def _custom_size() -> str:
    st.session_state.setdefault(ss.CUSTOM_SIZE, "1536x864")
    custom = st.text_input("Width × height in pixels", key=ss.CUSTOM_SIZE, placeholder="1536x864",
                           help="Multiples of 16, at most 3:1, 655,360 to 8,294,400 pixels.",
                           persist_state="session").strip().lower().replace("×", "x").replace(" ", "")
    why = validation.check_free_size(custom)
    if why:
        st.caption(f":red[{why}]")
    elif validation.is_experimental_size(custom):
        st.caption("Above 2560×1440 the output is experimental.")
    return custom


def _count_and_file(caps: ModelCaps, size: str, pairs: _Pairs, out: dict[str, Any]) -> None:
    """Images per prompt, resolution, file format and compression: what the output is."""
    st.session_state.setdefault(ss.N, 1)
    if st.session_state[ss.N] > caps.max_n:
        st.session_state[ss.N] = caps.max_n
    out["n"] = int(pairs.next().number_input(
        "Images per prompt", min_value=1, max_value=caps.max_n, step=1, key=ss.N,
        help=f"1 to {caps.max_n}. Each image is billed.", persist_state="session", bind="query-params",
    ))
    out["resolution"] = None
    if caps.resolutions and ":" in size:
        _ensure(ss.RESOLUTION, list(caps.resolutions), caps.resolutions[0])
        out["resolution"] = pairs.next().selectbox(
            "Resolution", list(caps.resolutions), key=ss.RESOLUTION,
            help="1K is about a megapixel; 2K and 4K cost more.", persist_state="session",
        )
    out["output_format"] = caps.default_output_format
    if caps.output_formats:
        formats = list(caps.output_formats)
        _ensure(ss.FORMAT, formats, caps.default_output_format)
        out["output_format"] = pairs.next().selectbox(
            "File format", formats, key=ss.FORMAT, format_func=str.upper,
            help="PNG is lossless; JPEG and WebP make smaller files.", persist_state="session",
        )
    out["output_compression"] = None
    if caps.compression and out["output_format"] in ("jpeg", "webp"):
        st.session_state.setdefault(ss.COMPRESSION, 100)
        out["output_compression"] = int(pairs.next().slider(
            "Compression quality", 0, 100, key=ss.COMPRESSION,
            help="100 keeps the most detail; lower values make smaller files with visible artefacts.",
            persist_state="session",
        ))


def _filters(caps: ModelCaps, has_inputs: bool, pairs: _Pairs, out: dict[str, Any]) -> None:
    """Background, content filter and input fidelity, where the model takes them."""
    out["background"] = "auto"
    if caps.backgrounds:
        backgrounds = list(caps.backgrounds)
        _ensure(ss.BACKGROUND, backgrounds, "auto")
        out["background"] = pairs.next().selectbox(
            "Background", backgrounds, key=ss.BACKGROUND, format_func=str.capitalize,
            help="Opaque fills the background; transparent needs PNG or WebP.", persist_state="session",
        )
    out["moderation"] = "auto"
    if caps.moderations:
        moderations = list(caps.moderations)
        _ensure(ss.MODERATION, moderations, "auto")
        out["moderation"] = pairs.next().selectbox(
            "Content filter", moderations, key=ss.MODERATION, format_func=str.capitalize,
            help="Low is a less strict filter; auto is the provider's standard one.", persist_state="session",
        )
    out["input_fidelity"] = None
    if caps.input_fidelities and has_inputs:
        options = ["", *caps.input_fidelities]
        _ensure(ss.FIDELITY, options, "")
        chosen = pairs.next().selectbox(
            "Input fidelity", options, key=ss.FIDELITY, format_func=lambda f: f.capitalize() if f else "Default",
            help="High keeps faces and details of the input closer, at a higher input cost.",
            persist_state="session",
        )
        out["input_fidelity"] = chosen or None
    out["partial_images"] = 0
    if caps.max_partial_images:
        st.session_state.setdefault(previews.WIDGET_KEY, min(previews.DEFAULT, caps.max_partial_images))
        out["partial_images"] = int(pairs.next().number_input(
            "Previews", min_value=0, max_value=caps.max_partial_images, step=1, key=previews.WIDGET_KEY,
            help="Pictures streamed while the image forms (one image per prompt only); 0 turns them off. "
            "Each is billed as extra image output tokens: see the cost.", persist_state="session",
        ))


def _fixed_notes(caps: ModelCaps, has_inputs: bool, moderation: str) -> None:
    """Say which settings the provider decides itself, so a missing control is not a mystery."""
    who = registry.label(caps.provider)
    fixed = [w for w, offered in (("file format", caps.output_formats), ("background", caps.backgrounds),
                                  ("content filter", caps.moderations)) if not offered]
    if fixed:
        listed = fixed[0] if len(fixed) == 1 else ", ".join(fixed[:-1]) + " and " + fixed[-1]
        st.caption(f"{who} sets the {listed} itself.")
    if has_inputs and not caps.moderation_on_edits and moderation != "auto":
        st.caption(f"{who} applies its standard content filter to edits.")


def _parameters(caps: ModelCaps, *, has_inputs: bool, first_input: tuple[int, int] | None = None) -> dict[str, Any]:
    """Quality, shape and count in view; file format, background and the rest folded (a phone reaches Generate)."""
    out: dict[str, Any] = {"quality": _quality(caps)}
    out["size"] = _size(caps, first_input)
    with st.expander("More settings and model details", icon=":material/tune:"):
        pairs = _Pairs()
        _count_and_file(caps, out["size"], pairs, out)
        _filters(caps, has_inputs, pairs, out)
        _fixed_notes(caps, has_inputs, out["moderation"])
        _model_details(caps)
    return out


def _model_text(provider: str) -> Any:
    models = PROVIDERS[provider].MODELS

    def label(model: str) -> str:
        caps = models[model]
        return f"{caps.label} (shuts down {caps.shutdown.isoformat()})" if caps.shutdown else caps.label

    return label


def _provider_changed() -> None:
    st.session_state["model"] = PROVIDERS[st.session_state["provider"]].default_model


def _provider_model() -> state.Selection:
    """Where the request goes: provider and model side by side; retired models and notes behind details."""
    state.init()
    c1, c2 = st.columns(2)
    c1.selectbox("Provider", list(PROVIDERS), key="provider", format_func=registry.label,
                 on_change=_provider_changed, persist_state="session", bind="query-params",
                 help="Where requests go. Each provider has its own prices and limits.")
    provider = st.session_state["provider"]
    c2.selectbox("Model", state.offered_models(provider), key="model", format_func=_model_text(provider),
                 persist_state="session", bind="query-params",
                 help="Models past their shutdown date are not offered.")
    sel = state.selection()
    caps = PROVIDERS[sel.provider].MODELS[sel.model]
    if caps.caution:
        st.warning(caps.caution, icon=":material/help:")
    return sel


def _model_details(caps: ModelCaps) -> None:
    """The model's notes and its provider's retired models: details, not chrome on every page."""
    retired = [c for c in PROVIDERS[caps.provider].MODELS.values() if c.retired()]
    if caps.notes:
        st.caption(f"**{text.md(caps.label)}**: {text.md(caps.notes)}")
    if retired:
        st.caption("Retired: " + " ".join(c.retirement_text() for c in retired))


# --------------------------------------------------------------------------- generate


AGAIN_SECONDS = 30.0  # the same batch clicked again this soon after it was sent is taken for a double click
_monotonic = time.monotonic  # a wait, not a date (see clock.py); tests move it


def _fingerprint(provider: str, request: ImageRequest, batch: draft.Batch) -> str:
    """What makes two Generate clicks the same batch: provider, every parameter, each prompt, each input's hash."""
    body = json.dumps([provider, request.params(), list(batch.prompts), batch.template], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _double_click(provider: str, request: ImageRequest, batch: draft.Batch, clicked: bool) -> str | None:
    """The batch's fingerprint when it is to be sent now, else None. A click on the batch this session sent under
    ``AGAIN_SECONDS`` ago is held back (issue 17: with a room on the app the first click's card can take seconds
    to show, and a second click paid for the same batch twice) and offers to send it again instead."""
    held = st.session_state.get(ss.HELD)
    if not clicked and held is None:
        return None
    fp = _fingerprint(provider, request, batch)  # hashes every input image: only for a click or a held one
    last = st.session_state.get(ss.LAST_SENT)
    if clicked:
        ago = _monotonic() - last["at"] if last and last["fp"] == fp else None
        if ago is None or ago >= AGAIN_SECONDS:
            st.session_state.pop(ss.HELD, None)
            return fp
        st.session_state[ss.HELD] = held = fp
    if held != fp:  # the form changed since: a click on it is a new batch
        st.session_state.pop(ss.HELD, None)
        return None
    jobs = last["jobs"] if last else 0
    ago_s = max(1, round(_monotonic() - last["at"])) if last else 0
    st.warning(f"Not sent again: this same batch went {ago_s} s ago ({jobs} job{'s' if jobs != 1 else ''}); its "
               "images appear beside the form as they are made.", icon=":material/back_hand:")
    if st.button("Send the same batch again", key=ss.SEND_AGAIN, icon=":material/replay:",
                 help="Makes it once more, and pays for it once more."):
        st.session_state.pop(ss.HELD, None)
        return fp
    return None


def _generate(
    *, provider: str, caps: ModelCaps, request: ImageRequest, batch: draft.Batch, inputs: studio_inputs.Inputs,
    cost: studio_cost.CostView, endpoint: str,
) -> None:
    reasons: list[str] = []
    if not request.prompt.strip() and not batch.template:
        reasons.append("Write a prompt (or pick a template) to start.")
    else:
        reasons += list(batch.problems)
        if batch.prompts:
            reasons += draft.problems(request, caps, batch.prompts, can_upload=endpoint == "emulator")
    reasons += [p for p in inputs.problems if p not in reasons]
    if cost.blocker:
        reasons.append(cost.blocker)
    if endpoint not in ("live", "emulator"):
        reasons.append(f"{registry.label(provider)} has no API key and no emulator: "
                       f"add {PROVIDERS[provider].key_env} in Settings.")

    if caps.caution:  # said before any paid call, not only in the sidebar
        st.warning(caps.caution, icon=":material/help:")
    images = batch.size * request.n
    price = ""
    if cost.estimate is not None and cost.estimate.usd is not None:
        price = f" · {format_usd(cost.estimate.usd)}"
    label = f"Generate {images} image{'s' if images != 1 else ''}{price}" if images else "Generate"
    clicked = st.button(label, key=ss.GENERATE, type="primary", icon=":material/auto_awesome:", width="stretch",
                        disabled=bool(reasons), shortcut="Ctrl+Shift+Enter",
                        help="Sends the batch; you can keep working while it runs. The result appears beside the "
                        "form (below it on a phone).")
    for reason in reasons[:4]:
        st.caption(f":material/block: {text.md(reason)}")
    sent_fp = _double_click(provider, request, batch, clicked and not reasons)
    if sent_fp is not None:
        out = studio_actions.submit(
            provider,
            request,
            prompts=batch.prompts if batch.template else None,
            variables=batch.variables if batch.template else None,
            template=batch.template,
            parent_job_id=st.session_state.get(ss.PARENT) if request.images else None,
            keep_outside=inputs.keep_outside if request.mask is not None else None,
        )
        if out.error or out.submitted is None:
            st.error(text.md(out.error or "Nothing was sent."), icon=":material/block:")
        else:
            sub = out.submitted
            st.session_state[ss.LAST_SENT] = {"fp": sent_fp, "at": _monotonic(), "jobs": len(sub.job_ids)}
            st.session_state[ss.SHOW_OUTPUT] = True  # on a phone the pane is below the form: scroll to it
            st.toast(f"Sent {len(sub.job_ids)} job{'s' if len(sub.job_ids) != 1 else ''}: the result appears "
                     "in the output pane as it is made.", icon=":material/rocket_launch:")
            st.rerun(scope="app")  # the form is a fragment: the output pane beside it shows the new run


# --------------------------------------------------------------------------- hand-over from History


SWITCH = "studio_switch_offer"


def _take_prefill() -> None:
    """Fill the form from a job another page handed over (before any widget draws)."""
    pre = st.session_state.pop(ss.PREFILL, None)
    if not isinstance(pre, dict) or not pre.get("job_id"):
        return
    store = services.store()
    job = store.get_job(pre["job_id"])
    if job is None:
        ss.flash("warning", "That job is no longer in the history.")
        return
    try:
        request = store.load_request(job.id)
    except (OSError, KeyError, ValueError):
        ss.flash("warning", "That job's request could not be read back from the history.")
        return
    mode = pre.get("mode", "rerun")
    restored = draft.form_from_recipe({"provider": job.provider, "params": request.params()})
    if restored is None:
        return
    if mode == "high":
        restored = replace(restored, quality="high")
    # An edit keeps the prompt being written, unless it is a {{variable}} batch: one result is edited, not a batch.
    batch_prompt = bool(templates.variables(st.session_state.get(ss.PROMPT) or ""))
    studio_actions.fill_form(restored, set_selection=False, prompt=mode != "edit" or batch_prompt)
    if mode != "edit":
        studio_actions.clear_uploader()
        st.session_state[ss.KEPT] = [
            ss.TrayItem(f"job:{job.id}:in{i}", img.name, img.data, "history")
            for i, img in enumerate(request.images) if img.data is not None
        ]
        urls = [img.url for img in request.images if img.url]
        if urls:
            st.session_state[ss.URLS] = "\n".join(urls)
        st.session_state[ss.PARENT] = None
    sel = state.selection()
    if (job.provider, job.model) != (sel.provider, sel.model):
        st.session_state[SWITCH] = {"provider": job.provider, "model": job.model}
    message = {
        "high": "The form holds that request at high quality: check the cost, then generate.",
        "edit": f"The image is now the input, at {QUALITY_WORDS.get(restored.quality or '', 'the same')} quality. "
        "Describe the change in the prompt and generate.",
    }.get(mode, "The form holds that request: check the cost, then generate.")
    if mode == "edit":
        st.session_state[ss.FLASH] = []  # this says it all (the card's own note would repeat it)
    ss.flash("info", message)
    st.toast(text.md(message), icon=":material/edit:")  # seen wherever the page is scrolled


def _switch(offer: dict[str, str]) -> None:
    st.session_state["provider"] = offer["provider"]
    st.session_state["model"] = offer["model"]
    st.session_state.pop(SWITCH, None)


def _switch_banner(sel: state.Selection) -> None:
    offer = st.session_state.get(SWITCH)
    if not offer:
        return
    cls = PROVIDERS.get(offer["provider"])
    if cls is None or offer["model"] not in cls.MODELS or (offer["provider"], offer["model"]) == (
        sel.provider, sel.model
    ):
        st.session_state.pop(SWITCH, None)
        return
    now = PROVIDERS[sel.provider]
    with st.container(border=True):
        then, current = registry.label(offer["provider"]), registry.label(sel.provider)
        st.markdown(f":material/swap_horiz: That request ran on **{then} · {cls.MODELS[offer['model']].label}**;"
                    f" the form is set to {current} · {now.MODELS[sel.model].label}.")
        row = st.container(horizontal=True)
        row.button(f"Switch to {then}", key="studio_switch_yes", type="primary", on_click=_switch,
                   args=(offer,))
        row.button(f"Stay on {current}", key="studio_switch_no", on_click=st.session_state.pop,
                   args=(SWITCH, None))


# --------------------------------------------------------------------------- page


def _restore_from_url() -> None:
    """A reload starts a new session: the draft comes back from the address bar, checked like any input."""
    if st.session_state.get(ss.RESTORED):
        return
    qp = st.query_params
    for key in ss.BOUND:
        raw = qp.get(key)
        if raw is None or key in st.session_state:
            continue
        if key == ss.N:
            if raw.isdigit() and 1 <= int(raw) <= 10:
                st.session_state[key] = int(raw)
        else:
            st.session_state[key] = raw[:32_000]  # the widgets and _ensure() check the values themselves
    ss.restore_runs(_job_ids_of)


def _job_ids_of(run_id: str) -> list[str] | None:
    run = services.store().get_run(run_id)
    return None if run is None else [j.id for j in run.jobs]


def _simulated_notice(provider: str, endpoint: str) -> None:
    """In the main area, so a phone (sidebar folded) sees it too."""
    if endpoint == "emulator":
        st.caption(f":orange-badge[:material/science: Simulated] {registry.label(provider)} has no API key: the "
                   "built-in emulator makes the images here and nothing is billed. Add a key in Settings for "
                   "the real service.")


# Layout touches Streamlit has no parameter for: less empty space above the title, so Generate is on the first
# screen at 1400×1000; no keyboard-shortcut hint where there is no keyboard (a phone, a touch screen).
_STYLE = """<style>
[data-testid="stMainBlockContainer"] { padding-top: 2.5rem; }
@media (max-width: 640px), (pointer: coarse) { .st-key-studio_generate kbd { display: none; } }
/* The same batch elsewhere: four columns in the form's width, a phone's included (nothing cut off). */
.st-key-studio_compare_table table { font-size: 0.875rem; }
.st-key-studio_compare_table th, .st-key-studio_compare_table td { padding: 0.35rem 0.4rem; }
</style>"""


_DRAWN = "_studio_drawn_selection"


def render() -> None:
    st.html(_STYLE)
    ss.init()
    _restore_from_url()
    _take_prefill()
    for kind, message in ss.take_flashes():  # they can name templates and files: shown as text
        {"success": st.success, "error": st.error, "warning": st.warning}.get(kind, st.info)(text.md(message))
    sel = state.selection()
    st.session_state[_DRAWN] = (sel.provider, sel.model)  # what the sidebar and the rest of this run show

    # The output pane gets the wider half: the image is the payoff (at least 400 px on a desktop).
    left, right = st.columns([4, 5], gap="medium")
    with left:
        _form()
    with right, st.container(key=studio_output.PANE_KEY):
        studio_output.render()
    if st.session_state.pop(ss.SHOW_OUTPUT, False):
        studio_output.bring_into_view()
    ss.publish_runs()


@st.fragment
def _form() -> None:
    """The form column as a fragment: a change of prompt, quality, size or an upload reruns the form and its
    cost alone, not the sidebar, the menu and the output pane (issue 17: a quality change cost the browser
    ~200 ms of work for a whole page). Generate, and a change of provider or model (the sidebar names the
    provider), rerun the whole page."""
    notice = st.container()
    studio_prompt.template_row(studio_prompt.library())
    prompt_box = st.container()
    settings = st.container(border=True)
    cost_box = st.container(border=True)
    inputs_box = st.container()
    more = st.container()
    with settings:
        st.markdown("**Settings**")
        sel = _provider_model()
    if st.session_state.get(_DRAWN, (sel.provider, sel.model)) != (sel.provider, sel.model):
        st.rerun(scope="app")
    caps = PROVIDERS[sel.provider].MODELS[sel.model]
    route = services.route(sel.provider)
    with notice:
        _simulated_notice(sel.provider, route.endpoint)
        _switch_banner(sel)
    with prompt_box:
        prompt, values = studio_prompt.prompt(caps)
        batch_line = st.empty()
    with inputs_box:
        inputs = studio_inputs.render(caps, sel.provider, sel.model, route.endpoint)
        studio_prompt.builder()
    with settings:
        params = _parameters(caps, has_inputs=bool(inputs.images),
                             first_input=inputs.sizes[0] if inputs.sizes else None)
    batch = draft.batch(prompt, values)
    request = ImageRequest(
        prompt=batch.prompts[0] if batch.prompts else prompt,
        model=sel.model,
        images=inputs.images,
        mask=inputs.mask,
        **params,
    )
    if batch.template:
        batch_line.caption(f"Batch: {text.md(batch.describe(request.n))}" if batch.prompts else "Batch: —")
    with cost_box:
        cost = studio_cost.render(sel.provider, caps, request, batch, route.endpoint, input_sizes=inputs.sizes)
        _generate(provider=sel.provider, caps=caps, request=request, batch=batch, inputs=inputs, cost=cost,
                  endpoint=route.endpoint)
    with more:
        studio_cost.details(sel.provider, request, batch, cost)

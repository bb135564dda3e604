"""The Studio's prompt: start from a template (or save one), the prompt builder, the prompt and its variables.

Templates and the builder fill the prompt through callbacks, before the widgets draw; the
prompt's ``{{variables}}`` get one text area each, whose lines expand into a batch.
"""

from __future__ import annotations

import streamlit as st

from core import config
from core.accounts import PermissionDenied
from core.prompts import draft, templates
from providers import registry
from providers.errors import InvalidRequest
from providers.registry import PROVIDERS
from providers.types import ModelCaps
from ui import services, state, text
from ui import studio_state as ss

__all__ = ["builder", "library", "prompt", "template_row"]

_BUILDER = (
    ("subject", "Subject", "A red fox curled up asleep in fresh snow"),
    ("style", "Style", "watercolour illustration, soft edges"),
    ("composition", "Composition", "close-up, fox in the lower third, lots of empty snow"),
    ("lighting", "Lighting", "pale winter morning light"),
    ("text", "Exact text to render", "Winter Sale"),
    ("language", "Language of the text", "Japanese"),
)


# --------------------------------------------------------------------------- templates


def library() -> templates.TemplateLibrary:
    return templates.TemplateLibrary(config.data_dir() / "templates.json")


def _caps_now() -> ModelCaps:
    sel = state.selection()
    return PROVIDERS[sel.provider].MODELS[sel.model]


def _apply_template() -> None:
    """Callback: the chosen template fills the prompt, its variables' defaults and its suggested settings."""
    name = st.session_state.get(ss.TEMPLATE)
    if not name:
        return
    t = library().get(name)
    if t is None:
        return
    caps = _caps_now()
    st.session_state[ss.PROMPT] = t.prompt
    for var in t.variables:
        st.session_state[ss.var_key(var)] = t.defaults.get(var, "")
    if t.quality in caps.qualities:
        st.session_state[ss.QUALITY] = t.quality
    if t.size in {o.value for o in draft.size_options(caps)}:
        st.session_state[ss.SIZE] = t.size
    if t.output_format in caps.output_formats:
        st.session_state[ss.FORMAT] = t.output_format
    if t.needs_image:
        ss.flash("info", f"“{t.name}” edits an image: add one under Images to edit or compose.")


def _save_template() -> None:
    name = st.session_state.get("studio_tpl_name", "").strip()
    prompt = st.session_state.get(ss.PROMPT, "")
    values = {v: draft.split_values(st.session_state.get(ss.var_key(v)))[:1] for v in templates.variables(prompt)}
    try:
        services.user().require("generate")  # a template is a maker's (server-side, whatever the page showed)
        saved = library().save(templates.Template(
            name=name,
            prompt=prompt,
            description=st.session_state.get("studio_tpl_desc", "").strip(),
            size=st.session_state.get(ss.SIZE, "1:1"),
            quality=st.session_state.get(ss.QUALITY, "auto"),
            output_format=st.session_state.get(ss.FORMAT, "png"),
            defaults={k: v[0] for k, v in values.items() if v},
        ))
    except (InvalidRequest, PermissionDenied) as err:
        ss.flash("error", str(err))
        return
    st.session_state[ss.TEMPLATE] = saved.name
    ss.flash("success", f"Saved the template “{saved.name}”.")


def template_row(lib: templates.TemplateLibrary) -> None:
    all_templates = lib.all()
    names = [""] + [t.name for t in all_templates]
    by_name = {t.name: t for t in all_templates}
    if st.session_state.get(ss.TEMPLATE) not in names:
        st.session_state[ss.TEMPLATE] = ""
    c1, c2 = st.columns([4, 1.4], vertical_alignment="bottom")
    c1.selectbox(
        "Start from a template",
        names,
        key=ss.TEMPLATE,
        format_func=lambda n: "Blank prompt" if not n else (n if by_name[n].builtin else f"{n} (yours)"),
        on_change=_apply_template,
        help="Example prompts from the providers' documentation, and the ones you saved. "
        "Picking one replaces the prompt.",
        persist_state="session",
        bind="query-params",
    )
    chosen = by_name.get(st.session_state.get(ss.TEMPLATE) or "")
    if lib.load_error:
        st.caption(f":material/warning: {text.md(lib.load_error)}")
    with c2.popover("Save", icon=":material/bookmark_add:", help="Save this prompt as a template",
                    width="stretch"):
        st.text_input("Template name", key="studio_tpl_name", placeholder="Spring poster")
        st.text_input("Description (optional)", key="studio_tpl_desc")
        st.caption("Saves the prompt with its {{variables}}, their first values, and the size, quality and format.")
        st.button("Save as template", key="studio_tpl_save", type="primary", on_click=_save_template,
                  disabled=not st.session_state.get(ss.PROMPT, "").strip())
    if chosen is not None and chosen.description:
        st.caption(text.md(chosen.description))


# --------------------------------------------------------------------------- prompt


def _write_from_builder() -> None:
    parts = {k: st.session_state.get(ss.BUILDER_PREFIX + k, "") for k, _, _ in _BUILDER}
    st.session_state[ss.PROMPT] = templates.build_prompt(
        subject=parts["subject"], style=parts["style"], composition=parts["composition"],
        lighting=parts["lighting"], text_to_render=parts["text"], language=parts["language"],
    )
    st.session_state[ss.TEMPLATE] = ""


def builder() -> None:
    with st.expander("Prompt builder", icon=":material/construction:"):
        st.caption("Fill in what matters; empty parts are left out. Text to render is quoted so the model "
                   "copies it letter for letter.")
        cols = st.columns(2)
        for i, (k, label, example) in enumerate(_BUILDER):
            cols[i % 2].text_input(label, key=ss.BUILDER_PREFIX + k, placeholder=example, persist_state="session")
        st.button("Write the prompt", key="studio_builder_write", icon=":material/edit_note:",
                  on_click=_write_from_builder, help="Replaces the prompt above with one built from these parts.")


def prompt(caps: ModelCaps) -> tuple[str, dict[str, str]]:
    st.session_state.setdefault(ss.PROMPT, "")
    prompt = st.text_area(
        "Prompt",
        key=ss.PROMPT,
        height=110,
        placeholder="Describe the image: subject, style, composition, lighting. Put exact text in quotes. "
        "Use {{name}} for a part you want to vary.",
        help="{{name}} marks a variable: give it several values to make a batch. On a keyboard, Ctrl+Enter "
        "applies the text.",
        persist_state="session",
        bind="query-params",
    ) or ""
    usage = draft.prompt_usage(prompt, caps)
    limit_text = f"{usage.text} · {registry.label(caps.provider)} limit"
    st.caption(f":red[{limit_text}: shorten it]" if usage.over else limit_text)
    values: dict[str, str] = {}
    names = templates.variables(prompt)
    if names:
        st.markdown("**Variables** · one value per line; every combination is made")
        cols = st.columns(min(len(names), 2))
        for i, name in enumerate(names):
            key = ss.var_key(name)
            st.session_state.setdefault(key, "")
            values[name] = cols[i % len(cols)].text_area(
                f"{{{{{name}}}}}", key=key, height=96, placeholder="one value per line",
                help=f"Each line is one value of {{{{{name}}}}}. Blank lines and repeats are ignored.",
                persist_state="session",
            ) or ""
    return prompt, values

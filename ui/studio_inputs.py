"""Studio: images to edit or compose (upload, URLs, a result from history) and the optional mask."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import streamlit as st
from streamlit.errors import StreamlitAPIException

from core.history.files import is_content_hash
from core.history.views import JobFilter
from core.images import prepare as imageprep
from core.images import recipe
from core.images.mask import ERASE_COLOR, PAINT_COLOR
from core.images.prepare import ImageInfo
from core.prompts import draft
from providers import imagegate, registry, urlpolicy
from providers.errors import InvalidRequest
from providers.registry import PROVIDERS
from providers.types import InputImage, ModelCaps
from ui import format as fmt
from ui import media_route, services, studio_actions, text
from ui import studio_state as ss

_FORMATS = "PNG, JPEG or WEBP"
_WHY = re.compile(r"\((.+)\)")


@dataclass
class Inputs:
    images: tuple[InputImage, ...] = ()
    sizes: tuple[tuple[int, int], ...] = ()  # pixel size of each local image, for the cost
    mask: InputImage | None = None
    keep_outside: bool = True
    problems: list[str] = field(default_factory=list)  # each one blocks Generate


def _mb(n: int) -> str:
    return f"{n / 2**20:.0f} MB"


def limits_text(caps: ModelCaps, *, size: bool = True) -> str:
    """The provider's input limits; ``size=False`` beside the uploader, which states the per-file size itself."""
    who = registry.label(caps.provider)
    count = f"up to {caps.max_input_images} image{'s' if caps.max_input_images != 1 else ''}"
    each = f", {_mb(caps.max_input_bytes)} each" if size else ""
    return f"{who} takes {count} ({_FORMATS}{each}) for {caps.label}."


# Kept by the item's content hash, as shared values (bytes and frozen dataclasses): st.cache_data hashed the
# whole photo for its key and unpickled a copy of the prepared image on every rerun (issue 17: a quality change
# with a 12-MB photo in the tray took 143 ms instead of 27). A leading underscore keeps an argument out of the key.
def _thumb(item: ss.TrayItem) -> bytes | None:
    return _thumb_of(item.sha256, item.data)


@st.cache_resource(max_entries=128, show_spinner=False)
def _thumb_of(sha256: str, _data: bytes) -> bytes | None:
    try:
        return imageprep.thumbnail(_data, 320)
    except InvalidRequest:
        return None


def _prepared(
    item: ss.TrayItem, provider: str, model: str
) -> tuple[InputImage | None, ImageInfo | None, tuple[str, ...], str | None]:
    """(image, info, notices, error) for one file at this provider; cached because phone photos are big."""
    return _prepared_of(item.sha256, item.name, provider, model, item.data)


@st.cache_resource(max_entries=32, show_spinner=False)  # a prepared photo can be megabytes
def _prepared_of(
    sha256: str, name: str, provider: str, model: str, _data: bytes
) -> tuple[InputImage | None, ImageInfo | None, tuple[str, ...], str | None]:
    caps = PROVIDERS[provider].MODELS[model]
    try:
        prepared = imageprep.prepare([(name, _data)], caps)
    except InvalidRequest as err:
        return None, None, (), str(err)
    return prepared.images[0], prepared.infos[0], tuple(prepared.notices), None


def _check_upload(name: str, data: bytes, caps: ModelCaps) -> str | None:
    """Why an uploaded file can't be used at all (not an image, damaged, wrong format), naming the limits."""
    try:
        imagegate.check(data, name)  # too many pixels, or a header that says none: said as the gate says it
    except InvalidRequest as err:
        return f"{err} {limits_text(caps)}"
    try:
        info = imageprep.inspect(data, name)
    except InvalidRequest as err:
        # imageprep says why in parentheses ("it looks like text"); the library's name means nothing to people.
        why = _WHY.search(str(err))
        reason = f" ({why.group(1)})" if why else ""
        return f"{name} is not a picture this app can read{reason}. {limits_text(caps)}"
    if info.format not in imageprep.SUPPORTED:
        return f"{name} is a {info.format.upper()} image. {limits_text(caps)} Save it as PNG, JPEG or WEBP."
    return None


# --------------------------------------------------------------------------- recipe restore


def _offer_recipe(item: ss.TrayItem) -> None:
    if item.sha256 in st.session_state[ss.RECIPE_SEEN]:
        return
    restored = draft.form_from_recipe(recipe.extract(item.data))
    st.session_state[ss.RECIPE_SEEN].add(item.sha256)
    if restored is not None:
        st.session_state[ss.RECIPE_OFFER] = {"sha": item.sha256, "name": item.name, "restored": restored,
                                             "inputs": _recipe_inputs(item.data)}


def _recipe_inputs(data: bytes) -> list[dict[str, Any]]:
    meta = recipe.extract(data) or {}
    params = meta.get("params") if isinstance(meta, dict) else None
    images = params.get("images") if isinstance(params, dict) else None
    return [i for i in images if isinstance(i, dict)][:16] if isinstance(images, list) else []


def _restore(offer: dict[str, Any]) -> None:
    """Callback: put a recipe's provider, model, prompt and settings into the form (before widgets draw)."""
    state = st.session_state
    studio_actions.fill_form(offer["restored"], set_selection=True)
    # The dropped file was a carrier for its recipe: keep the other uploads, put back the recipe's own inputs.
    others = [i for i in state.get(ss.UPLOAD_SNAPSHOT, []) if i.sha256 != offer["sha"]]
    studio_actions.clear_uploader()
    state[ss.KEPT] = [*state.get(ss.KEPT, []), *others]
    files = services.store().files
    missing = 0
    for n, ref in enumerate(offer.get("inputs") or [], 1):
        sha = ref.get("sha256")
        # The recipe came inside a file someone uploaded: only a content hash names a stored image.
        try:
            data = files.read(sha) if is_content_hash(sha) else None
        except (OSError, KeyError, ValueError):
            data = None
        if data is None:
            missing += 1
            continue
        name = ref.get("name")
        ss.keep(ss.TrayItem(id=f"recipe:{sha}", name=name if isinstance(name, str) and name else f"input-{n}.png",
                            data=data, source="history"))
    state.pop(ss.RECIPE_OFFER, None)
    note = f" {missing} of its input images are not in this app's history; add them again." if missing else ""
    ss.flash("success", f"Form restored from {offer['name']}.{note}")


def _dismiss_offer() -> None:
    st.session_state.pop(ss.RECIPE_OFFER, None)


def _recipe_banner() -> None:
    offer = st.session_state.get(ss.RECIPE_OFFER)
    if not offer:
        return
    with st.container(border=True):
        st.markdown(f":material/receipt_long: **{text.md(offer['name'])}** was made with Image Studio: "
                    f"{text.md(offer['restored'].summary)}.")
        row = st.container(horizontal=True)
        row.button("Restore the form", key="studio_recipe_restore", type="primary", on_click=_restore,
                   args=(offer,), help="Provider, model, prompt and every setting, as they were.")
        row.button("Just use the image", key="studio_recipe_dismiss", on_click=_dismiss_offer)


# --------------------------------------------------------------------------- tray


def _tray_cell(item: ss.TrayItem, provider: str, model: str, out: Inputs) -> tuple[InputImage | None, ImageInfo | None]:
    """One input's thumbnail, size, notes and problem; returns what it adds to the request."""
    image, info, notices, error = _prepared(item, provider, model)
    thumb = _thumb(item)
    if thumb is not None:
        st.image(thumb, width="stretch")
    if info is not None:
        st.caption(f"**{text.md(item.name)}**  \n{info.width}×{info.height} · {info.format.upper()} · "
                   f"{fmt.nbytes(len(item.data))}")
    else:
        st.caption(f"**{text.md(item.name)}** · {fmt.nbytes(len(item.data))}")
    for note in notices:
        st.caption(f":material/info: {text.md(note)}")
    if error:
        st.error(text.md(error), icon=":material/block:")
        out.problems.append(error)
    if item.source != "upload":
        st.button("Remove", key=f"studio_drop_{item.id}", type="tertiary", icon=":material/close:",
                  on_click=ss.drop, args=(item.id,))
    return image, info


def _tray(items: list[ss.TrayItem], caps: ModelCaps, provider: str, model: str, out: Inputs) -> None:
    if not items:
        return
    if len(items) > caps.max_input_images:
        extra = len(items) - caps.max_input_images
        message = (f"{len(items)} input images given; {registry.label(caps.provider)} takes at most "
                   f"{caps.max_input_images} for {caps.label}. Remove {extra}.")
        st.error(message, icon=":material/block:")
        out.problems.append(message)
    images, sizes = [], []
    per_row = 4
    for start in range(0, len(items), per_row):
        cols = st.columns(per_row)
        for col, item in zip(cols, items[start:start + per_row], strict=False):
            with col:
                image, info = _tray_cell(item, provider, model, out)
            if image is not None:
                images.append(image)
                sizes.append(info.display_size if info else (1024, 1024))
    out.images = tuple(images)
    out.sizes = tuple(sizes)


def _history_picker() -> None:
    picker = st.expander("Use a result from history", key="studio_hist_open", on_change="rerun")
    if not picker.open:
        return  # collapsed: no query and no thumbnails for what nobody sees (issue 17)
    with picker:
        try:
            jobs = services.store().list_jobs(JobFilter(statuses=("succeeded",)), limit=12)
        except OSError:
            jobs = []
        cells = [(j, i) for j in jobs for i in j.images][:8]
        if not cells:
            st.caption("No finished images yet. Results you generate show up here.")
            return
        for start in range(0, len(cells), 4):
            cols = st.columns(4)
            for col, (job, image) in zip(cols, cells[start:start + 4], strict=False):
                with col:
                    shown = image.thumb_path or image.path
                    st.image(media_route.image_url(shown) or str(shown), width="stretch")
                    st.button("Use", key=f"studio_hist_{job.id}_{image.idx}", type="tertiary",
                              icon=":material/add_photo_alternate:", on_click=studio_actions.use_from_history,
                              args=(job, image), help=text.short_md(job.prompt, 200))


def _urls(caps: ModelCaps, endpoint: str, out: Inputs) -> None:
    who = registry.label(caps.provider)
    if endpoint == "emulator":
        hint = "On the emulator, uploaded files are hosted locally, so uploads work too."
    else:
        hint = f"{who} fetches input images from public links: uploaded files cannot be sent to it."
    typed = st.text_area(
        "Image URLs (one per line)",
        key=ss.URLS,
        height=68,
        placeholder="https://example.com/photo.jpg",
        help=f"{who} takes input images as public https links. {hint}",
        persist_state="session",
    )
    st.caption(hint)
    usable = []
    for url in draft.split_values(typed):
        why = _url_problem(url)
        if why is None:
            usable.append(url)
            continue
        problem = f"{url}: {why}. Give a public https link to the image, or upload the file instead."
        st.error(text.md(problem), icon=":material/block:")
        out.problems.append(problem)
    out.images = out.images + tuple(InputImage(url=u, name=u.rsplit("/", 1)[-1] or "image") for u in usable)


@st.cache_data(ttl=300, max_entries=256, show_spinner=False)
def _url_problem(url: str) -> str | None:
    """Why an image link cannot be used (the URL policy, its host resolved), or None; before any call."""
    try:
        urlpolicy.check(url)
    except urlpolicy.UrlRefused as refused:
        return refused.reason
    return None


# --------------------------------------------------------------------------- mask


def _canvas() -> Callable[..., Any] | None:
    """streamlit-drawable-canvas, or None where it cannot load (it needs a running server)."""
    try:
        from streamlit_drawable_canvas import st_canvas
    except (ImportError, StreamlitAPIException):
        return None
    return cast(Callable[..., Any], st_canvas)


_MASK_MODES = {"none": "No mask", "draw": "Draw on the first image", "upload": "Upload a mask"}


def _mask_mode(drawable: bool) -> str:
    modes = ["none", "draw", "upload"] if drawable else ["none", "upload"]
    if st.session_state.get(ss.MASK_MODE) not in modes:
        st.session_state[ss.MASK_MODE] = "none"
    mode = st.segmented_control(
        "Mask",
        modes,
        key=ss.MASK_MODE,
        format_func=lambda m: _MASK_MODES.get(m, m),
        label_visibility="collapsed",
        required=True,
        help="Paint the area the model may change. Without a mask the model may change anything.",
        persist_state="session",
    )
    if not drawable:
        st.caption("Drawing is unavailable here; upload a PNG mask instead.")
    return mode or "none"  # required=True: never empty, but the widget's type allows it


CANVAS_WIDTH = 340
BRUSH = "studio_mask_brush"
INK = "studio_mask_ink"  # Paint or Erase (the canvas has no eraser: erasing is painting in the eraser's ink)
CANVAS_GEN = "studio_mask_canvas_generation"  # a new canvas key empties it (its strokes live in the browser)


def _clear_canvas() -> None:
    st.session_state[CANVAS_GEN] = st.session_state.get(CANVAS_GEN, 0) + 1


def _drawn_mask(canvas: Callable[..., Any], first: ss.TrayItem, info: ImageInfo | None) -> bytes | None:
    """The strokes painted over the first image as a mask at its size; None until something is painted."""
    w, h = info.display_size if info else (1024, 1024)
    # Fits the form's column at 1400 px and a phone's width (the canvas has a fixed pixel size).
    width = CANVAS_WIDTH
    height = max(64, round(width * h / w))
    tools = st.container(horizontal=True, vertical_alignment="bottom")
    st.session_state.setdefault(BRUSH, 28)
    ink = tools.segmented_control("Brush", ["Paint", "Erase"], default="Paint", key=INK,
                                  help="Erase takes painted parts back out of the mask (its strokes show blue).")
    brush = tools.slider("Brush size", 4, 96, key=BRUSH, step=2, width=200, persist_state="session",
                         help="Width of the brush in canvas pixels.")
    tools.button("Clear the mask", key="studio_mask_clear", icon=":material/ink_eraser:", on_click=_clear_canvas,
                 help="Remove every stroke and start again (the canvas's own arrow undoes the last one).")
    generation = st.session_state.get(CANVAS_GEN, 0)
    result = canvas(
        stroke_width=int(brush),
        stroke_color=ERASE_COLOR if ink == "Erase" else PAINT_COLOR,
        background_image=_thumb(first) or first.data,
        height=height,
        width=width,
        drawing_mode="freedraw",
        return_image_data=True,
        key=ss.MASK_CANVAS if generation == 0 else f"{ss.MASK_CANVAS}_{generation}",
    )
    st.caption("Paint over what should change; Erase takes a part back out. Unpainted areas are kept.")
    strokes = result.image_data if result is not None else None
    if strokes is None:
        return None
    try:
        return imageprep.mask_from_strokes(strokes, (w, h))
    except InvalidRequest:
        return None  # nothing painted yet: no mask, no error


def _uploaded_mask() -> bytes | None:
    up = st.file_uploader("Mask (PNG: transparent or white where the image may change)", key=ss.MASK_UPLOAD,
                          help="Same shape as the first image. Transparent (or white) areas are edited.")
    return up.getvalue() if up is not None else None


def _mask(first: ss.TrayItem, info: ImageInfo | None, caps: ModelCaps, out: Inputs) -> None:
    st.markdown("**Mask** (optional)")
    canvas = _canvas()
    mode = _mask_mode(canvas is not None)
    mask_bytes: bytes | None = None
    if mode == "draw" and canvas is not None:
        mask_bytes = _drawn_mask(canvas, first, info)
    elif mode == "upload":
        mask_bytes = _uploaded_mask()
    if mask_bytes is not None and info is not None:
        notices: list[str] = []
        try:
            out.mask = imageprep.prepare_mask(mask_bytes, info, caps, notices=notices)
        except InvalidRequest as err:
            st.error(text.md(err), icon=":material/block:")
            out.problems.append(str(err))
        for note in notices:
            st.caption(f":material/info: {text.md(note)}")
    st.session_state.setdefault(ss.KEEP_OUTSIDE, True)
    out.keep_outside = st.checkbox(
        "Keep everything outside the mask",
        key=ss.KEEP_OUTSIDE,
        disabled=mode == "none",
        help="GPT Image models may repaint the whole picture even with a mask. With this on, the original is put "
        "back outside the mask after the edit, and the result says how much the model had changed there.",
        persist_state="session",
    )


# --------------------------------------------------------------------------- section


def _keep_forgotten_uploads(key: str) -> None:
    """The uploader forgets its files on a page change: keep them as plain inputs."""
    if key not in st.session_state and st.session_state[ss.UPLOAD_SNAPSHOT]:
        for item in st.session_state[ss.UPLOAD_SNAPSHOT]:
            ss.keep(ss.TrayItem(item.id, item.name, item.data, "kept"))
        st.session_state[ss.UPLOAD_SNAPSHOT] = []


def _uploads(caps: ModelCaps, out: Inputs) -> list[ss.TrayItem]:
    """The uploader and what it holds that can be used; a file with a recipe offers to restore the form.

    A file that cannot be used is a problem that blocks Generate until it is taken out:
    the person meant to send it, and a text-to-image run without it would be paid for.
    """
    key = studio_actions.upload_key()
    _keep_forgotten_uploads(key)
    files = st.file_uploader(
        "Images to edit or compose",
        accept_multiple_files=True,
        key=key,
        label_visibility="collapsed",
        # The uploader says this size once ("50MB per file"): the provider's own limit, not Streamlit's default.
        max_upload_size=max(1, caps.max_input_bytes // 2**20),
        help=f"Drop {_FORMATS} files. An image downloaded from Image Studio can restore the whole form. "
        + limits_text(caps, size=False),
    )
    uploads: list[ss.TrayItem] = []
    # A file already checked on an earlier run is the same item (its bytes, its hash), not a copy to check again.
    earlier = {i.id: i for i in st.session_state.get(ss.UPLOAD_SNAPSHOT, [])}
    for f in files or []:
        item = earlier.get(f.file_id)
        if item is None or item.name != f.name or len(item.data) != f.size:
            data = f.getvalue()
            problem = _check_upload(f.name, data, caps)
            if problem:
                problem += " Remove it from the uploads to go on."
                st.error(text.md(problem), icon=":material/block:")
                out.problems.append(problem)
                continue
            item = ss.TrayItem(f.file_id, f.name, data, "upload")
        uploads.append(item)
        _offer_recipe(item)
    st.session_state[ss.UPLOAD_SNAPSHOT] = uploads
    offer = st.session_state.get(ss.RECIPE_OFFER)
    if offer and offer["sha"] not in {u.sha256 for u in uploads}:
        st.session_state.pop(ss.RECIPE_OFFER, None)  # its file was taken out again
    return uploads


def _chain_note(has_items: bool) -> None:
    parent = st.session_state.get(ss.PARENT)
    if parent and has_items:
        st.caption(f":material/link: Continues the edit of job {parent[:8]} (kept as a chain in History).")
    elif parent:
        st.session_state[ss.PARENT] = None


def render(caps: ModelCaps, provider: str, model: str, endpoint: str) -> Inputs:
    """Draw the inputs section; returns what the request should carry and what blocks it."""
    ss.init()
    out = Inputs()
    st.markdown("**Images to edit or compose**")
    url_only = not caps.accepts_local_files
    st.caption(
        f"Optional: leave empty to generate from the prompt alone. {limits_text(caps, size=False)}"
        + (" It fetches them from public links." if url_only else "")
    )
    uploads = _uploads(caps, out)
    _recipe_banner()

    items = ss.kept() + uploads
    _tray(items, caps, provider, model, out)
    if url_only:
        _urls(caps, endpoint, out)
    _history_picker()
    _chain_note(bool(items))

    if items and caps.accepts_mask:
        first = items[0]
        _, info, _, _ = _prepared(first, provider, model)
        _mask(first, info, caps, out)
    elif items:
        st.caption(f"{registry.label(caps.provider)} does not take a mask: describe the change in the prompt. "
                   "(OpenAI takes masks.)")
    return out

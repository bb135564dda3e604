"""Masks: making one a provider takes, drawing one from a canvas, and checking (or undoing)
what a masked edit changed outside its edit area.

GPT Image models treat a mask as a hint and often repaint the whole image:
``mask_report`` measures that, ``composite_outside_mask`` puts the original back.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageChops, ImageFilter, ImageStat

from providers import imagegate, registry
from providers.errors import InvalidRequest
from providers.types import InputImage, ModelCaps

from .info import (
    DECODE_ERRORS,
    SUPPORTED,
    TRANSPOSE,
    ImageInfo,
    has_alpha,
    inspect,
    orientation_of,
    size_words,
    sniff_format,
    unreadable,
    what_is_it,
)

__all__ = [
    "CHANGE_THRESHOLD",
    "ERASE_COLOR",
    "PAINT_COLOR",
    "MaskReport",
    "composite_outside_mask",
    "mask_from_strokes",
    "mask_report",
    "prepare_mask",
]

# Per-channel difference that counts as "changed": JPEG/WEBP re-encoding noise stays below it.
CHANGE_THRESHOLD = 24


@dataclass(frozen=True)
class MaskReport:
    """How many pixels outside the mask's edit area the model changed."""

    changed_outside: int
    total_outside: int
    fraction: float  # the edit's spill: changed / total outside the edit area (0 when the mask keeps nothing)
    resized: bool = False  # the edited image came back at another size and was scaled to the original's
    mean_change: float = 0.0  # mean of the largest channel difference outside, 0..1 of full scale

    @property
    def percent(self) -> float:
        return round(self.fraction * 100, 1)



def _binary(alpha: Image.Image) -> Image.Image:
    """0 or 255 only: OpenAI edits where alpha is 0, so half-transparent edges are decided once, here."""
    return alpha.point(lambda v: 255 if v >= 128 else 0)


def _mask_png(alpha: Image.Image) -> bytes:
    black = Image.new("L", alpha.size, 0)
    out = io.BytesIO()
    Image.merge("RGBA", (black, black, black, alpha)).save(out, "PNG", compress_level=9)
    return out.getvalue()


def prepare_mask(
    mask_bytes: bytes,
    first_image: ImageInfo | bytes,
    caps: ModelCaps,
    *,
    notices: list[str] | None = None,
    name: str = "mask.png",
) -> InputImage:
    """A mask the provider takes: PNG with alpha (0 = edit here), the first image's size, under the limit.

    A mask without transparency is read as black-and-white, white = area to edit
    (the convention of most inpainting tools). ``notices`` receives what was changed.
    """
    who = registry.label(caps.provider)
    notes = notices if notices is not None else []
    if not caps.accepts_mask:
        raise InvalidRequest(
            f"{who} does not take a mask for {caps.label}; describe the change in the prompt instead, "
            "or pick a provider that takes masks.",
            field="mask",
            value=name,
            allowed="no mask",
            provider=caps.provider,
        )
    if isinstance(first_image, ImageInfo):
        target = first_image.display_size
    else:
        target = inspect(first_image, "image").display_size
    minfo = inspect(mask_bytes, name)
    tw, th = target
    with Image.open(io.BytesIO(mask_bytes)) as m:
        m.load()
        untouched = (
            minfo.format == "png"
            and m.mode in ("RGBA", "LA")
            and m.size == target
            and len(mask_bytes) <= caps.mask_max_bytes
        )
        if minfo.has_alpha:
            alpha = (m.convert("RGBA") if m.mode not in ("RGBA", "LA") else m).getchannel("A")
        else:
            # No alpha: read luminance, white = edit (alpha 0), as most inpainting tools draw masks.
            alpha = m.convert("L").point(lambda v: 0 if v >= 128 else 255)
            notes.append(f"{name} has no transparency, so its white areas were taken as the area to edit.")
    if alpha.size != target:
        mw, mh = alpha.size
        if abs((mw / mh) / (tw / th) - 1) > 0.02:
            raise InvalidRequest(
                f"The mask is {mw}×{mh} but the image is {tw}×{th}; their proportions differ, so the mask "
                "cannot line up. Draw the mask over this image, or upload a mask made from it.",
                field="mask",
                value=f"{mw}x{mh}",
                allowed=f"{tw}x{th}",
                provider=caps.provider,
            )
        alpha = alpha.resize(target, Image.Resampling.BILINEAR)
        notes.append(f"The mask was {mw}×{mh} and was resized to {tw}×{th} to match the image.")
    alpha = _binary(alpha)
    hist = alpha.histogram()
    if hist[0] == 0:
        raise InvalidRequest(
            "The mask has no transparent area, so nothing would be edited. Paint (erase to transparent) "
            "the part of the image to change.",
            field="mask",
            value=name,
            allowed="a PNG whose transparent pixels mark the area to edit",
            provider=caps.provider,
        )
    if hist[255] == 0:
        notes.append("The mask covers the whole image, so the model may change everything.")
    data = mask_bytes if untouched else _mask_png(alpha)
    if len(data) > caps.mask_max_bytes:
        raise InvalidRequest(
            f"The mask is {size_words(len(data))}; {who} takes masks up to {size_words(caps.mask_max_bytes)}. "
            "Use a smaller image.",
            field="mask",
            value=name,
            allowed=f"at most {size_words(caps.mask_max_bytes)}",
            provider=caps.provider,
        )
    return InputImage(data=data, mime="image/png", name="mask.png")


# The canvas's two inks. The drawing canvas has no eraser, so erasing is painting in ERASE_COLOR:
# strokes are composited in order, so a later stroke decides what its pixels are (a blue-dominant
# pixel is erased, whatever pink is beneath it; pink painted over blue is painted again).
PAINT_COLOR = "rgba(255, 0, 110, 0.55)"
ERASE_COLOR = "rgba(0, 180, 255, 0.55)"
_ERASED_MARGIN = 32  # blue above red by this much: an eraser stroke on top


def mask_from_strokes(strokes: Any, size: tuple[int, int]) -> bytes:
    """A mask PNG from a drawing canvas: painted pixels become transparent (alpha 0 = area to edit).

    ``strokes`` is an RGBA array (``H×W×4`` uint8, as drawing canvases return) or
    a PIL image; painted means alpha above a small threshold (for images without
    alpha: not black) and not in the eraser's blue (``ERASE_COLOR`` on top). The
    drawing is scaled to ``size`` (the image's width, height).
    """
    if isinstance(strokes, Image.Image):
        img = strokes
    else:
        dtype = getattr(strokes, "dtype", None)
        if dtype is not None and str(dtype) != "uint8":
            strokes = strokes.clip(0, 255).astype("uint8")  # canvases sometimes hand back floats
        try:
            img = Image.fromarray(strokes)
        except (TypeError, ValueError, AttributeError) as exc:
            raise InvalidRequest(
                "The drawn mask could not be read; draw it again.",
                field="mask",
                value=type(strokes).__name__,
                allowed="an RGBA drawing",
            ) from exc
    if img.mode == "P":
        img = img.convert("RGBA")
    if "A" in img.getbands():
        rgba = img.convert("RGBA")
        red, _, blue, painted = rgba.split()
        # Erased where the eraser's blue is on top: those pixels count as unpainted.
        erased = ImageChops.subtract(blue, red).point(lambda v: 255 if v > _ERASED_MARGIN else 0)
        painted = ImageChops.subtract(painted, erased)
    else:
        painted = img.convert("L")
    width, height = size
    if painted.size != (width, height):
        # Bilinear plus a low threshold grows the strokes by a hair: better to edit a little more than to leave a seam.
        painted = painted.resize((width, height), Image.Resampling.BILINEAR)
    alpha = painted.point(lambda v: 0 if v > 32 else 255)
    if alpha.histogram()[0] == 0:
        raise InvalidRequest(
            "Nothing is painted on the mask yet; paint over the part of the image to change.",
            field="mask",
            value="empty drawing",
            allowed="at least one painted stroke",
        )
    return _mask_png(alpha)


def _open_upright(data: bytes, what: str) -> Image.Image:
    imagegate.check(data, what[:1].upper() + what[1:], field="mask")
    try:
        im = Image.open(io.BytesIO(data))
        im.load()
    except DECODE_ERRORS as exc:
        raise unreadable(what, what_is_it(data) if sniff_format(data) is None else "it is damaged") from exc
    transpose = TRANSPOSE.get(orientation_of(im))
    return im.transpose(transpose) if transpose is not None else im


def _largest_difference(a: Image.Image, b: Image.Image) -> Image.Image:
    """Per pixel, the largest difference over the channels (0-255)."""
    bands = ImageChops.difference(a, b).split()
    out = bands[0]
    for band in bands[1:]:
        out = ImageChops.lighter(out, band)
    return out


def _changed(difference: Image.Image, threshold: int) -> Image.Image:
    """255 where the largest channel difference is over ``threshold``, else 0."""
    return difference.point([0] * (threshold + 1) + [255] * (255 - threshold))


def _aligned(original: bytes, edited: bytes, mask: bytes) -> tuple[Image.Image, Image.Image, Image.Image, bool]:
    """Original and edited in one mode and size, and the keep-mask (255 = outside the edit area)."""
    orig = _open_upright(original, "the original image")
    edit = _open_upright(edited, "the edited image")
    mask_im = _open_upright(mask, "the mask")
    mode = "RGBA" if has_alpha(orig) or has_alpha(edit) else "RGB"
    orig, edit = orig.convert(mode), edit.convert(mode)
    resized = edit.size != orig.size
    if resized:
        edit = edit.resize(orig.size, Image.Resampling.LANCZOS)
    if "A" in mask_im.getbands() or "transparency" in mask_im.info:
        alpha = mask_im.convert("RGBA").getchannel("A")
    else:
        alpha = mask_im.convert("L").point(lambda v: 0 if v >= 128 else 255)  # white = edit, as in prepare_mask
    if alpha.size != orig.size:
        alpha = alpha.resize(orig.size, Image.Resampling.NEAREST)
    return orig, edit, _binary(alpha), resized


def _report(orig: Image.Image, edit: Image.Image, keep: Image.Image, threshold: int, resized: bool) -> MaskReport:
    total = keep.histogram()[255]
    difference = _largest_difference(orig, edit)
    changed = ImageChops.multiply(_changed(difference, threshold), keep).histogram()[255]
    mean = ImageStat.Stat(difference, mask=keep).mean[0] / 255 if total else 0.0
    return MaskReport(
        changed_outside=changed, total_outside=total, fraction=changed / total if total else 0.0, resized=resized,
        mean_change=mean,
    )


def mask_report(original: bytes, edited: bytes, mask: bytes, *, threshold: int = CHANGE_THRESHOLD) -> MaskReport:
    """Count pixels outside the mask's edit area that the model changed, without changing anything."""
    orig, edit, keep, resized = _aligned(original, edited, mask)
    return _report(orig, edit, keep, threshold, resized)


def _encode_output(im: Image.Image, fmt: str) -> bytes:
    fmt = "jpeg" if fmt.lower() == "jpg" else fmt.lower()
    out = io.BytesIO()
    if fmt == "jpeg":
        # 4:4:4: chroma subsampling would smear the edit's colours across the mask edge.
        im.convert("RGB").save(out, "JPEG", quality=95, subsampling=0)
    elif fmt == "webp":
        im.save(out, "WEBP", quality=95, method=4)
    elif fmt == "png":
        im.save(out, "PNG", compress_level=6)
    else:
        raise InvalidRequest(field="output_format", value=fmt, allowed=SUPPORTED)
    return out.getvalue()


def composite_outside_mask(
    original: bytes,
    edited: bytes,
    mask: bytes,
    output_format: str,
    *,
    threshold: int = CHANGE_THRESHOLD,
    feather: int = 2,
) -> tuple[bytes, MaskReport]:
    """Put the original back wherever the mask is opaque; report what the model had changed there.

    GPT Image models treat a mask as a hint and often repaint the whole image, so
    this makes the edit a true inpaint. ``feather`` softens the seam by blending a
    few pixels *inside* the edit area; pixels outside it are exactly the original's
    before ``output_format``'s own compression (PNG keeps them exactly, JPEG is
    written 4:4:4 at quality 95; lossy WEBP always halves colour resolution, so a
    thin seam along a high-contrast mask edge can shift). An edited image of
    another size is scaled to the original's first (``MaskReport.resized``).
    """
    orig, edit, keep, resized = _aligned(original, edited, mask)
    report = _report(orig, edit, keep, threshold, resized)
    blend = keep
    if feather > 0:
        # lighter() keeps 255 everywhere outside, so the blur only reaches into the edit area.
        blend = ImageChops.lighter(keep, keep.filter(ImageFilter.GaussianBlur(feather)))
    result = Image.composite(orig, edit, blend)
    return _encode_output(result, output_format), report

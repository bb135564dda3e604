"""Making uploaded images ready for a provider, before any paid call.

Everything here works on bytes and answers with bytes, so pages, the job runner
and the store can share it. Problems a person can fix are raised as
``InvalidRequest`` with a message that names the problem and the fix; changes
made on the person's behalf (rotation, downscaling, mask resizing) are reported
as plain-language notices for the page to show.

Files that need no change are never decoded in full. The steps live beside this
module, one job each: ``info`` (what a file is), ``codec`` (decode/encode,
previews), ``mask`` (masks and what an edit changed outside one). Their public
names are importable from here, where the pages and tests always found them.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import PurePath

from PIL import Image

from providers import registry
from providers.errors import InvalidRequest
from providers.types import MIME_BY_FORMAT, InputImage, ModelCaps

from .codec import decode, encode, is_lossless_webp, thumbnail
from .info import (
    FORMAT_WORDS,
    ORIENTATION_WORDS,
    SUPPORTED,
    TRANSPOSE,
    ImageInfo,
    formats_words,
    info_for,
    inspect,
    size_words,
    sniff_format,
)
from .mask import CHANGE_THRESHOLD, MaskReport, composite_outside_mask, mask_from_strokes, mask_report, prepare_mask

__all__ = [
    "CHANGE_THRESHOLD",
    "MIN_USEFUL_LONG_SIDE",
    "SUPPORTED",
    "ImageInfo",
    "MaskReport",
    "Prepared",
    "composite_outside_mask",
    "inspect",
    "mask_from_strokes",
    "mask_report",
    "prepare",
    "prepare_mask",
    "sniff_format",
    "thumbnail",
]

# Below this the model sees too little detail for an edit to be worth paying for.
MIN_USEFUL_LONG_SIDE = 512
_EXTENSIONS = {"png": (".png",), "jpeg": (".jpg", ".jpeg"), "webp": (".webp",)}


@dataclass
class Prepared:
    """The result of :func:`prepare`: images ready to send, what they are, and what was changed."""

    images: tuple[InputImage, ...] = ()
    infos: tuple[ImageInfo, ...] = ()  # describe the prepared images, not the uploads
    notices: list[str] = field(default_factory=list)



def _fit(data: bytes, info: ImageInfo, caps: ModelCaps, name: str, notices: list[str]) -> tuple[bytes, ImageInfo]:
    """Turn upright and/or bring under ``caps.max_input_bytes``; files needing neither come back untouched."""
    if info.orientation not in TRANSPOSE and len(data) <= caps.max_input_bytes:
        return data, info
    with Image.open(io.BytesIO(data)) as probe:
        fitting = _Fitting(data, info, caps, name, probe)
        # Cheapest first: a rotation alone, a lower quality at full size, then smaller sizes.
        fitted = fitting.turned_only() or fitting.resaved() or fitting.scaled_down()
    if fitted is None:
        raise fitting.too_big()
    out, out_info, notice = fitted
    notices.append(notice)
    return out, out_info


class _Fitting:
    """One upload being brought within a provider's limit, one cheaper attempt after another.

    ``base`` is the upright decode (full size, or a JPEG's reduced-scale one), kept so each
    later step resamples it once; ``measured`` and ``long_side`` are the last attempt's.
    """

    def __init__(self, data: bytes, info: ImageInfo, caps: ModelCaps, name: str, probe: Image.Image) -> None:
        self.data, self.info, self.caps, self.name, self.probe = data, info, caps, name, probe
        self.limit = caps.max_input_bytes
        self.who = registry.label(caps.provider)
        self.fmt = info.format
        self.icc = probe.info.get("icc_profile")
        self.lossless = self.fmt == "webp" and is_lossless_webp(data)
        self.needs_turn = info.orientation in TRANSPOSE
        self.turned = (
            f", and {ORIENTATION_WORDS[info.orientation]} to stand upright as its camera tag asks"
            if self.needs_turn
            else ""
        )
        self.base: Image.Image | None = None
        self.measured = len(data)
        self.long0 = max(info.display_size)
        self.long_side = self.long0

    def _full(self) -> Image.Image:
        if self.base is None:
            self.base = decode(self.data, self.info, None)
        return self.base

    def _over(self) -> str:
        size, limit = size_words(self.info.bytes), size_words(self.limit)
        return f"{self.name} was {size}, over {self.who}'s {limit} limit per image"

    def turned_only(self) -> _Fitted | None:
        """A sideways photo under the limit: turn it upright, keeping its JPEG quantisation."""
        if not self.needs_turn or len(self.data) > self.limit:
            return None
        base = self._full()
        source = self.probe if self.fmt == "jpeg" else None
        out = encode(base, self.fmt, source=source, icc=self.icc, lossless=self.lossless)
        if len(out) > self.limit:
            self.measured = len(out)
            return None
        notice = (
            f"{self.name} was {ORIENTATION_WORDS[self.info.orientation]} to stand upright, as its camera "
            "orientation tag asks; the provider would otherwise see it sideways."
        )
        return out, info_for(self.name, self.fmt, base, out), notice

    def resaved(self) -> _Fitted | None:
        """A mild overshoot of a lossy file usually fits at a lower quality, keeping every pixel
        (and an encode costs less than resampling a big image)."""
        if self.fmt not in ("jpeg", "webp") or self.measured > 1.5 * self.limit:
            return None
        base = self._full()
        quality = 85 if self.measured <= 1.1 * self.limit else 75
        out = encode(base, self.fmt, quality=quality, icc=self.icc)
        if len(out) > self.limit:
            self.measured = len(out)
            return None
        notice = (
            f"{self._over()}; re-saved at {FORMAT_WORDS[self.fmt]} quality {quality} ({size_words(len(out))}), "
            f"same {base.width}×{base.height} size{self.turned}."
        )
        return out, info_for(self.name, self.fmt, base, out), notice

    def scaled_down(self) -> _Fitted | None:
        """Smaller and smaller, down to ``MIN_USEFUL_LONG_SIDE``, until it fits."""
        if self.fmt != "jpeg":
            self._full()  # PNG/WEBP have no reduced-scale decode
        while self.long_side > MIN_USEFUL_LONG_SIDE:
            # Bytes grow slower than pixels shrink (detail gets denser), hence the margin below 1.
            factor = min(0.9, max(0.25, math.sqrt(self.limit / self.measured) * 0.85))
            img = self._step(max(MIN_USEFUL_LONG_SIDE, int(self.long_side * factor)))
            out = encode(img, self.fmt, quality=None if self.fmt == "png" else 90, icc=self.icc)
            if len(out) <= self.limit:
                notice = (
                    f"{self._over()}; scaled down from {self.long0} px to {max(img.size)} px on the long side "
                    f"({img.width}×{img.height}, {size_words(len(out))}){self.turned}."
                )
                return out, info_for(self.name, self.fmt, img, out), notice
            self.long_side, self.measured = max(img.size), len(out)
        return None

    def _step(self, target: int) -> Image.Image:
        """The image at about ``target`` px on the long side, always smaller than the last step."""
        if self.base is None:
            if self.long0 // 2 < target < self.long0:
                # Between full and half size: take libjpeg's half-scale decode as the step. Resampling
                # a full 24 MP decode would cost several times more for a little extra resolution.
                target = max(MIN_USEFUL_LONG_SIDE, (self.long0 + 1) // 2)
            # JPEG: draft() decodes straight at 1/2, 1/4 or 1/8 scale (at least ``target``); later
            # steps resample this smaller decode instead of decoding again.
            self.base = decode(self.data, self.info, target, exact=False)
        base = self.base
        # A fresh decode within 10% of the target is taken as is (resampling costs two image-sized
        # buffers); otherwise resample, which also guarantees each step is smaller than the last.
        if max(base.size) <= target * 1.1 and max(base.size) < self.long_side:
            return base
        scale = target / max(base.size)
        size = (max(1, round(base.width * scale)), max(1, round(base.height * scale)))
        # Bilinear is antialiased when shrinking and a third faster than bicubic on big images.
        return base.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)

    def too_big(self) -> InvalidRequest:
        tail = " or save it as JPEG." if self.fmt == "png" else "."
        limit = size_words(self.limit)
        return InvalidRequest(
            f"{self.name} is {size_words(self.info.bytes)}; {self.who} takes at most {limit} per image, and even "
            f"at {self.long_side} px on the long side it would still be {size_words(self.measured)}. "
            f"Upload a smaller image{tail}",
            field="images",
            value=self.name,
            allowed=f"at most {limit} per image",
            provider=self.caps.provider,
        )


# An upload that fits: its bytes, what they are, and the notice saying what was changed.
_Fitted = tuple[bytes, ImageInfo, str]


def _sent_name(name: str, fmt: str, notices: list[str]) -> str:
    """A file name whose extension matches the content: multipart uploads are typed by it."""
    path = PurePath(name or "image")
    if path.suffix.lower() in _EXTENSIONS.get(fmt, ()):
        return path.name
    fixed = path.stem + _EXTENSIONS.get(fmt, ("." + fmt,))[0]
    if path.suffix:
        notices.append(f"{path.name} is really a {FORMAT_WORDS.get(fmt, fmt)} file; it is sent as {fixed}.")
    return fixed


# --------------------------------------------------------------------------- prepare


def prepare(files: Sequence[tuple[str, bytes]], caps: ModelCaps) -> Prepared:
    """Check and adapt uploads for one provider/model; raise ``InvalidRequest`` for what can't be fixed."""
    who = registry.label(caps.provider)
    if len(files) > caps.max_input_images:
        extra = len(files) - caps.max_input_images
        raise InvalidRequest(
            f"{who} takes at most {caps.max_input_images} input image{'s' if caps.max_input_images != 1 else ''} "
            f"for {caps.label}; you gave {len(files)}. Remove {extra}.",
            field="images",
            value=len(files),
            allowed=f"at most {caps.max_input_images}",
            provider=caps.provider,
        )
    notices: list[str] = []
    images: list[InputImage] = []
    infos: list[ImageInfo] = []
    for name, data in files:
        info = inspect(data, name)
        if info.format not in caps.input_formats or info.format not in SUPPORTED:
            raise InvalidRequest(
                f"{name} is a {FORMAT_WORDS.get(info.format, info.format.upper())} image; {who} takes "
                f"{formats_words(caps.input_formats)} for {caps.label}. Save it in one of those formats and "
                "upload it again.",
                field="images",
                value=name,
                allowed=tuple(caps.input_formats),
                provider=caps.provider,
            )
        sent_name = _sent_name(name, info.format, notices)
        out, out_info = _fit(data, info, caps, sent_name, notices)
        images.append(InputImage(data=out, mime=MIME_BY_FORMAT[info.format], name=sent_name))
        infos.append(replace(out_info, name=sent_name))
    return Prepared(images=tuple(images), infos=tuple(infos), notices=notices)

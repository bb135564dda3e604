"""What an uploaded file is, read from its content: format, size, alpha, camera orientation.

``inspect`` is the first look at every upload: the image gate (``providers.imagegate``)
sizes it from its header first, then it refuses non-images and damaged files with a
message that names the fix. The words and tables the other image modules share
when they talk about a file (format names, sizes in KB/MB, EXIF orientations) live here.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from providers import imagegate, validation
from providers.errors import InvalidRequest
from providers.types import MIME_BY_FORMAT

__all__ = [
    "DECODE_ERRORS",
    "FORMAT_WORDS",
    "ORIENTATION_WORDS",
    "SUPPORTED",
    "TRANSPOSE",
    "ImageInfo",
    "formats_words",
    "has_alpha",
    "info_for",
    "inspect",
    "orientation_of",
    "size_words",
    "sniff_format",
    "unreadable",
    "what_is_it",
]
SUPPORTED = ("png", "jpeg", "webp")
FORMAT_WORDS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "gif": "GIF", "bmp": "BMP", "tiff": "TIFF"}
_ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transpose that makes the pixels upright (the table ImageOps.exif_transpose uses).
TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
ORIENTATION_WORDS = {
    2: "mirrored",
    3: "turned 180°",
    4: "flipped upside down",
    5: "turned and mirrored",
    6: "turned 90° clockwise",
    7: "turned and mirrored",
    8: "turned 90° counter-clockwise",
}
# What Pillow raises on damaged or truncated data (UnidentifiedImageError is an OSError).
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError)


@dataclass(frozen=True)
class ImageInfo:
    """What an image file is, read from its content (never its file name).

    ``width``/``height`` are as stored; ``orientation`` is the EXIF orientation
    tag (1 = upright) and ``display_size`` the size once it is applied.
    """

    name: str
    format: str  # png / jpeg / webp (or another format Pillow reads, which prepare() refuses)
    width: int
    height: int
    bytes: int
    has_alpha: bool
    mode: str
    orientation: int = 1

    @property
    def mime(self) -> str:
        return MIME_BY_FORMAT.get(self.format, f"image/{self.format}")

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)

    @property
    def display_size(self) -> tuple[int, int]:
        if self.orientation in (5, 6, 7, 8):
            return (self.height, self.width)
        return (self.width, self.height)

    @property
    def long_side(self) -> int:
        return max(self.width, self.height)




def sniff_format(data: bytes) -> str | None:
    """png / jpeg / webp from the file's first bytes, else None (a GIF is not an input format here)."""
    fmt = validation.sniff_format(data)
    return fmt if fmt in ("png", "jpeg", "webp") else None


def size_words(n: float) -> str:
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KB"
    value = n / (1024 * 1024)
    if value >= 10 or value == int(value):
        return f"{value:.0f} MB"
    return f"{value:.1f} MB"


def formats_words(formats: Sequence[str]) -> str:
    words = [FORMAT_WORDS.get(f, f.upper()) for f in formats]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def what_is_it(data: bytes) -> str:
    """A guess, for the error message, at what a non-image upload really is."""
    if not data:
        return "the file is empty"
    head = data[:2048]
    if head.lstrip().lower().startswith((b"<svg", b"<?xml")) and b"<svg" in head.lower():
        return "it is an SVG drawing"
    if head.startswith(b"%PDF"):
        return "it is a PDF document"
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftyphevc", b"ftypavif"):
        return "it is a HEIC/AVIF photo; export it as JPEG first"
    if head.startswith(b"PK\x03\x04"):
        return "it is a ZIP archive"
    if b"\x00" not in head:
        printable = sum(1 for b in head if b >= 0x20 or b in b"\t\r\n\x0c")
        if printable / len(head) > 0.95:
            return "it looks like text"
    return "its content is not a picture format this app knows"


def unreadable(name: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"{name} is not an image Pillow can read ({why}); upload a PNG, JPEG or WEBP file",
        field="images",
        value=name,
        allowed=SUPPORTED,
    )


def _damaged(name: str) -> InvalidRequest:
    return unreadable(name, "it is cut off or damaged, often from an interrupted download or copy")


def orientation_of(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except (*DECODE_ERRORS, KeyError, TypeError):
        return 1  # unreadable EXIF is treated as "no rotation" rather than failing the upload
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info


def _check_complete(data: bytes, fmt: str, name: str) -> None:
    """Catch truncated files cheaply, without decoding whole images where possible."""
    if fmt == "png":
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.verify()  # walks every chunk and checks CRCs, no decompression
        except DECODE_ERRORS as exc:
            raise _damaged(name) from exc
    elif fmt == "jpeg":
        if data.rstrip(b"\x00")[-2:] == b"\xff\xd9":
            return
        # No end marker: either truncated or followed by a trailer (motion photos append
        # a video). Decoding at 1/8 scale reads the whole entropy stream, so it tells.
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.draft(None, (max(1, im.width // 8), max(1, im.height // 8)))
                im.load()
        except DECODE_ERRORS as exc:
            raise _damaged(name) from exc
    elif fmt == "webp":
        riff_size = int.from_bytes(data[4:8], "little") + 8
        if riff_size > len(data):
            raise _damaged(name)


# --------------------------------------------------------------------------- inspect


def info_for(name: str, fmt: str, im: Image.Image, data: bytes, *, orientation: int = 1) -> ImageInfo:
    """What ``data`` (encoded as ``fmt``, decoded as ``im``) is; prepared images are upright (1)."""
    return ImageInfo(
        name=name,
        format=fmt,
        width=im.width,
        height=im.height,
        bytes=len(data),
        has_alpha=has_alpha(im),
        mode=im.mode,
        orientation=orientation,
    )



def inspect(data: bytes, name: str = "image") -> ImageInfo:
    """Read what an uploaded file is, by content. Raises ``InvalidRequest`` for non-images and damaged files."""
    if not data:
        raise unreadable(name, "the file is empty")
    imagegate.check(data, name)  # its size from the header, before Pillow decodes anything
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = (im.format or "").lower()
            if fmt == "mpo":  # phone cameras' multi-picture JPEG: the first picture is a plain JPEG
                fmt = "jpeg"
            info = info_for(name, fmt, im, data, orientation=orientation_of(im))
    except Image.DecompressionBombError as exc:  # a format the gate sizes through Pillow
        raise InvalidRequest(
            f"{name} has too many pixels to open safely; the limit is {imagegate.megapixels(imagegate.MAX_PIXELS)}. "
            "Scale it down and upload it again",
            field="images",
            value=name,
            allowed=f"at most {imagegate.MAX_PIXELS:,} pixels",
        ) from exc
    except DECODE_ERRORS as exc:
        sniffed = sniff_format(data)
        why = "it is cut off or damaged" if sniffed else what_is_it(data)
        raise unreadable(name, why) from exc
    _check_complete(data, fmt, name)
    return info

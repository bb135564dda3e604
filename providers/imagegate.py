"""The one image gate: every picture that enters the app is sized from its header before anything decodes it.

A PNG of 30000×30000 plain pixels compresses to about 100 KB and decodes to 900
million pixels (2.7 GB as RGB): a "decompression bomb". So every image from
outside (Studio and Compare uploads, masks, image links, provider results,
images a recipe restores, files the history stores) passes ``check`` first. It
reads the width and height from the file's header (PNG ``IHDR``, JPEG ``SOFn``,
WebP ``VP8``/``VP8L``/``VP8X``, GIF's screen) with no decoder involved, and refuses
more than ``MAX_PIXELS`` with a message such as "bomb.png is 30000×30000, 900 MP;
the limit is 50 MP".

The limit, 50 MP: the largest photos people commonly have pass (a 48 MP phone
photo is 8064×6048, 48.8 MP; 50 MP Android sensors shoot 8160×6120, 49.9 MP),
while one decode stays at most 200 MB (RGBA) and a 12000×12000 image (144 MP,
576 MB) is refused. No provider needs more: GPT Image models make at most
3840×2160 (8.3 MP) and scale larger inputs down anyway.

Pillow's own guard is set to the same figure (``Image.MAX_IMAGE_PIXELS``) as a
backstop for any code path that opens an image without asking here first: Pillow
refuses outright above twice it.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
from dataclasses import dataclass

from PIL import Image

from .errors import InvalidRequest

__all__ = ["MAX_PIXELS", "Header", "ImageTooLarge", "check", "megapixels", "read_header"]

MAX_PIXELS = 50_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# Between the limit and twice it Pillow only warns; the gate has already said no to those.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})


@dataclass(frozen=True)
class Header:
    """What an image's header says: its format and stored size."""

    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


class ImageTooLarge(InvalidRequest):
    """An image with more pixels than ``MAX_PIXELS``: refused before any decode."""


def megapixels(pixels: int) -> str:
    mp = pixels / 1_000_000
    return f"{mp:,.0f} MP" if mp >= 10 else f"{mp:.1f} MP"


def _png(data: bytes) -> Header | None:
    if not data.startswith(b"\x89PNG\r\n\x1a\n") or len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return Header("png", width, height)


def _jpeg(data: bytes) -> Header | None:
    if not data.startswith(b"\xff\xd8"):
        return None
    i, end = 2, len(data)
    while i + 4 <= end:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _JPEG_STANDALONE:
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in _JPEG_SOF:
            if i + 9 > end:
                return None
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return Header("jpeg", width, height)
        if marker == 0xDA or length < 2:  # scan data before any frame header: damaged
            return None
        i += 2 + length
    return None


def _webp(data: bytes) -> Header | None:
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    kind = data[12:16]
    if kind == b"VP8X":
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        return Header("webp", width, height)
    if kind == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return Header("webp", width & 0x3FFF, height & 0x3FFF)
    if kind == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return Header("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    return None


def _gif(data: bytes) -> Header | None:
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 10:
        return None
    width, height = struct.unpack("<HH", data[6:10])
    return Header("gif", width, height)


def _other(data: bytes) -> Header | None:
    """Formats without a parser here (BMP, TIFF...): Pillow reads only their header on open."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return Header((im.format or "unknown").lower(), im.width, im.height)
    except Image.DecompressionBombError:
        return Header("unknown", MAX_PIXELS * 2 + 1, 1)  # Pillow refused it for more than twice the limit
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError):
        return None


def read_header(data: bytes) -> Header | None:
    """The format and size an image's header states, or None when ``data`` is not an image read here."""
    for parse in (_png, _jpeg, _webp, _gif):
        header = parse(data)
        if header is not None:
            return header
    return _other(data) if data else None


def _smaller(header: Header) -> str:
    scale = math.sqrt(MAX_PIXELS / header.pixels)
    return f"{max(1, int(header.width * scale))}×{max(1, int(header.height * scale))}"


def check(data: bytes, what: str = "The image", *, field: str = "images") -> Header | None:
    """Raise ``ImageTooLarge`` when ``data``'s header says more than ``MAX_PIXELS``.

    Returns the header (None for bytes that are no image this reads: the caller's own
    checks say what they are). Nothing is decoded.
    """
    header = read_header(data)
    if header is None:
        return None
    if header.width <= 0 or header.height <= 0:
        raise InvalidRequest(
            f"{what} says it is {header.width}×{header.height} pixels: it is damaged. Save it again and retry.",
            field=field, value=f"{header.width}x{header.height}", allowed="a picture with pixels",
        )
    if header.pixels > MAX_PIXELS:
        raise ImageTooLarge(
            f"{what} is {header.width}×{header.height}, {megapixels(header.pixels)}; the limit is "
            f"{megapixels(MAX_PIXELS)}. Scale it down (to {_smaller(header)} or less) and try again.",
            field=field,
            value=f"{header.width}x{header.height}",
            allowed=f"at most {MAX_PIXELS:,} pixels",
        )
    return header

"""Images that carry their own recipe: prompt, provider, model, parameters and cost.

``embed`` writes the recipe as JSON into the file and ``extract`` reads it back,
so a downloaded image can restore the form that made it.

* PNG: an ``iTXt`` chunk with keyword ``image-studio`` (UTF-8, so Japanese prompts survive).
* JPEG: an XMP packet (APP1 segment), attribute ``imgstudio:recipe``.
* WEBP: an XMP chunk (the ``VP8X`` header is added or updated to announce it).

All three are written by splicing the container, never by re-encoding, so there
is no quality loss and everything else in the file is kept: ICC profiles, EXIF,
and C2PA provenance (OpenAI signs its images). A C2PA validator will report that
the file changed after signing, which is true; keep the provider's original
bytes where an untouched signature matters (``has_c2pa`` tells). Only when a file
cannot be parsed as a container does ``embed`` fall back to re-saving through
Pillow at high quality (95), with the XMP attached.

Secrets never go in: any key whose name contains "key", "secret", "password",
"authorization" or "credential" is dropped, and strings that look like API keys
are redacted, however deep they sit.
"""

from __future__ import annotations

import base64
import datetime as _dt
import io
import json
import re
import struct
import zlib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import PurePath
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from PIL import Image

from core.images.info import sniff_format
from providers.errors import InvalidRequest
from providers.redact import redact

__all__ = ["KEYWORD", "XMP_NAMESPACE", "embed", "extract", "has_c2pa", "sanitize"]

KEYWORD = "image-studio"
XMP_NAMESPACE = "http://ns.image-studio.dev/recipe/1.0/"
_XMP_PREFIX = "imgstudio"
_JPEG_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
# An APP segment holds at most 65535 bytes including its 2-byte length and the XMP header.
_JPEG_XMP_MAX = 65535 - 2 - len(_JPEG_XMP_HEADER)
_SECRET_NAMES = ("key", "secret", "password", "passwd", "authorization", "credential")
# Characters XML 1.0 forbids; JSON escapes control characters but not these when ensure_ascii=False.
_XML_INVALID = re.compile("[\ufffe\uffff\ud800-\udfff]")


# --------------------------------------------------------------------------- recipe content


def _is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_NAMES)


def sanitize(recipe: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-able copy of ``recipe`` with anything secret-looking removed."""

    def clean(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): clean(v) for k, v in value.items() if not _is_secret_name(str(k))}
        if isinstance(value, (list, tuple, set, frozenset)):
            return [clean(v) for v in value]
        if isinstance(value, str):
            return redact(value)  # the one redaction rule: key shapes and every configured key
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, Decimal):
            return str(value)  # money: keep every digit rather than a float approximation
        if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
            return value.isoformat()
        if isinstance(value, (bytes, bytearray)):
            return f"<{len(value)} bytes>"  # image bytes never belong in a recipe
        if isinstance(value, PurePath):
            return str(value)
        return redact(str(value))

    cleaned: dict[str, Any] = clean(dict(recipe))  # a mapping comes back a dict
    return cleaned


def _json(recipe: dict[str, Any]) -> str:
    text = json.dumps(recipe, ensure_ascii=False, separators=(",", ":"), sort_keys=False)
    # Non-ASCII only occurs inside JSON strings, where \uXXXX is an equivalent spelling.
    return _XML_INVALID.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _loads(text: str | bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (ValueError, TypeError):
        return None
    return value if isinstance(value, dict) else None


# --------------------------------------------------------------------------- XMP


def _description(recipe_json: str, compressed: bool) -> str:
    if compressed:
        packed = base64.b64encode(zlib.compress(recipe_json.encode("utf-8"), 9)).decode("ascii")
        attr = f'{_XMP_PREFIX}:recipez="{packed}"'
    else:
        attr = f"{_XMP_PREFIX}:recipe={_quoteattr(recipe_json)}"
    return f'<rdf:Description rdf:about="" xmlns:{_XMP_PREFIX}="{XMP_NAMESPACE}" {attr}/>'


def _quoteattr(text: str) -> str:
    return '"' + escape(text, {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}) + '"'


_OUR_DESCRIPTION = re.compile(
    r"<rdf:Description\b[^>]*" + re.escape(XMP_NAMESPACE) + r"[^>]*?(?:/>|>.*?</rdf:Description>)", re.S
)


def _xmp_packet(recipe_json: str, existing: bytes | None, compressed: bool) -> bytes:
    """Our description merged into an existing XMP packet (other tools' data kept), or a new packet."""
    ours = _description(recipe_json, compressed)
    if existing:
        text = existing.decode("utf-8", "replace")
        text = _OUR_DESCRIPTION.sub("", text)
        end = text.rfind("</rdf:RDF>")
        if end != -1:
            return (text[:end] + ours + text[end:]).encode("utf-8")
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f"{ours}</rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()


def _recipe_from_xmp(xmp: bytes) -> dict[str, Any] | None:
    if XMP_NAMESPACE.encode() not in xmp:
        return None
    plain, packed = f"{{{XMP_NAMESPACE}}}recipe", f"{{{XMP_NAMESPACE}}}recipez"
    try:
        root = ElementTree.fromstring(xmp.strip(b"\x00 \r\n\t"))
    except ElementTree.ParseError:
        root = None
    if root is not None:
        for node in root.iter():
            # Written as attributes; tools that rewrite XMP may turn them into elements.
            for value, is_packed in ((node.get(plain), False), (node.get(packed), True)):
                if value:
                    return _decode_value(value, is_packed)
            if node.tag in (plain, packed) and node.text:
                return _decode_value(node.text.strip(), node.tag == packed)
    return None


# A recipe is a few KB of JSON; a compressed text chunk from a file someone uploaded may inflate to gigabytes.
_MAX_INFLATED = 4 * 1024 * 1024


def _inflate(data: bytes) -> bytes:
    """zlib-inflate at most ``_MAX_INFLATED`` bytes; more is no recipe (raises zlib.error)."""
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, _MAX_INFLATED + 1)
    if len(out) > _MAX_INFLATED or inflater.unconsumed_tail:
        raise zlib.error("compressed text larger than a recipe can be")
    return out


def _decode_value(value: str, packed: bool) -> dict[str, Any] | None:
    if not packed:
        return _loads(value)
    try:
        return _loads(_inflate(base64.b64decode(value)).decode("utf-8"))
    except (ValueError, zlib.error, UnicodeDecodeError):
        return None


# --------------------------------------------------------------------------- PNG


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, payload) for every chunk; raises ValueError when the container is broken."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("not a PNG")
    pos, chunks = 8, []
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise ValueError("truncated PNG chunk")
        chunks.append((kind, data[pos + 8 : pos + 8 + length]))
        pos = end
        if kind == b"IEND":
            break
    if not chunks or chunks[0][0] != b"IHDR" or chunks[-1][0] != b"IEND":
        raise ValueError("PNG without IHDR/IEND")
    return chunks


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_text(kind: bytes, payload: bytes) -> tuple[str, str] | None:
    """(keyword, text) of a tEXt/zTXt/iTXt chunk, or None if unreadable."""
    try:
        keyword, _, rest = payload.partition(b"\x00")
        if kind == b"tEXt":
            return keyword.decode("latin-1"), rest.decode("latin-1")
        if kind == b"zTXt":
            return keyword.decode("latin-1"), _inflate(rest[1:]).decode("latin-1")
        if kind == b"iTXt":
            flag, _method = rest[0], rest[1]
            _lang, _, rest = rest[2:].partition(b"\x00")
            _translated, _, text = rest.partition(b"\x00")
            if flag:
                text = _inflate(text)
            return keyword.decode("latin-1"), text.decode("utf-8")
    except (IndexError, UnicodeDecodeError, zlib.error):
        return None
    return None


def _embed_png(data: bytes, recipe_json: str) -> bytes:
    chunks = _png_chunks(data)
    text = recipe_json.encode("utf-8")
    compressed = len(text) > 4096  # long prompts: deflate, as iTXt allows
    body = zlib.compress(text, 9) if compressed else text
    ours = _png_chunk(b"iTXt", KEYWORD.encode() + b"\x00" + bytes([int(compressed), 0]) + b"\x00\x00" + body)
    out, placed = [data[:8]], False
    for kind, payload in chunks:
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            parsed = _png_text(kind, payload)
            if parsed and parsed[0] == KEYWORD:
                continue  # replace an earlier recipe rather than stacking two
        if kind in (b"IDAT", b"IEND") and not placed:
            out.append(ours)  # before the pixels, so readers find it without reading the image data
            placed = True
        out.append(_png_chunk(kind, payload) if kind != b"IEND" else _png_chunk(b"IEND", b""))
    return b"".join(out)


def _extract_png(data: bytes) -> dict[str, Any] | None:
    for kind, payload in _png_chunks(data):
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            parsed = _png_text(kind, payload)
            if parsed is None:
                continue
            if parsed[0] == KEYWORD:
                return _loads(parsed[1])
            if parsed[0] == "XML:com.adobe.xmp":
                found = _recipe_from_xmp(parsed[1].encode("utf-8"))
                if found is not None:
                    return found
    return None


# --------------------------------------------------------------------------- JPEG


def _jpeg_segments(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Marker segments before the scan as (marker, whole segment bytes), and the rest of the file."""
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG")
    pos = 2
    segments: list[tuple[int, bytes]] = []
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError("JPEG marker expected")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:  # start of scan: everything from here is image data
            return segments, data[pos:]
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        end = pos + 2 + length
        if length < 2 or end > len(data):
            raise ValueError("truncated JPEG segment")
        segments.append((marker, data[pos:end]))
        pos = end
    raise ValueError("JPEG without image data")


def _is_xmp_segment(marker: int, segment: bytes) -> bool:
    return marker == 0xE1 and segment[4:].startswith(_JPEG_XMP_HEADER)


def _embed_jpeg(data: bytes, recipe: dict[str, Any]) -> bytes:
    segments, rest = _jpeg_segments(data)
    existing = next((seg[4 + len(_JPEG_XMP_HEADER) :] for m, seg in segments if _is_xmp_segment(m, seg)), None)
    packet = _fit_jpeg_packet(recipe, existing)
    ours = b"\xff\xe1" + struct.pack(">H", 2 + len(_JPEG_XMP_HEADER) + len(packet)) + _JPEG_XMP_HEADER + packet
    kept = [(m, s) for m, s in segments if not _is_xmp_segment(m, s)]
    # After JFIF (APP0) and EXIF (APP1), where readers look for XMP; other segments (C2PA's APP11) stay put.
    at = 0
    while at < len(kept) and kept[at][0] in (0xE0, 0xE1):
        at += 1
    parts = [s for _, s in kept[:at]] + [ours] + [s for _, s in kept[at:]]
    return b"\xff\xd8" + b"".join(parts) + rest


def _fit_jpeg_packet(recipe: dict[str, Any], existing: bytes | None) -> bytes:
    """An XMP packet within one APP1 segment: plain, then compressed, then with the prompt shortened."""
    recipe_json = _json(recipe)
    for base in (existing, None):  # if someone else's XMP leaves no room, ours replaces it
        for compressed in (False, True):
            packet = _xmp_packet(recipe_json, base, compressed)
            if len(packet) <= _JPEG_XMP_MAX:
                return packet
    prompt = str(recipe.get("prompt", ""))
    while len(prompt) > 200:
        prompt = prompt[: len(prompt) * 3 // 4]
        shorter = _json({**recipe, "prompt": prompt, "prompt_truncated": True})
        packet = _xmp_packet(shorter, None, True)
        if len(packet) <= _JPEG_XMP_MAX:
            return packet
    minimal = {k: v for k, v in recipe.items() if k in ("provider", "model", "cost", "size", "quality")}
    return _xmp_packet(_json({**minimal, "prompt_truncated": True}), None, True)


def _extract_jpeg(data: bytes) -> dict[str, Any] | None:
    segments, _ = _jpeg_segments(data)
    for marker, segment in segments:
        if _is_xmp_segment(marker, segment):
            found = _recipe_from_xmp(segment[4 + len(_JPEG_XMP_HEADER) :])
            if found is not None:
                return found
    return None


# --------------------------------------------------------------------------- WEBP


def _webp_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a WEBP")
    end = min(len(data), 8 + struct.unpack("<I", data[4:8])[0])
    pos, chunks = 12, []
    while pos + 8 <= end:
        kind, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if pos + 8 + size > end:
            raise ValueError("truncated WEBP chunk")
        chunks.append((kind, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size & 1)  # chunks are padded to even length
    if not chunks:
        raise ValueError("empty WEBP")
    return chunks


def _webp_canvas(kind: bytes, payload: bytes) -> tuple[int, int, bool]:
    """Width, height and alpha of a simple-format WEBP, from its VP8/VP8L header."""
    if kind == b"VP8L":
        if payload[:1] != b"\x2f":
            raise ValueError("bad VP8L header")
        bits = int.from_bytes(payload[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)
    if kind == b"VP8 ":
        if payload[3:6] != b"\x9d\x01\x2a":
            raise ValueError("bad VP8 header")
        w, h = struct.unpack("<HH", payload[6:10])
        return w & 0x3FFF, h & 0x3FFF, False
    raise ValueError("unknown WEBP image chunk")


def _riff_chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) & 1 else b"")


def _embed_webp(data: bytes, recipe_json: str) -> bytes:
    chunks = _webp_chunks(data)
    existing = next((payload for kind, payload in chunks if kind == b"XMP "), None)
    packet = _xmp_packet(recipe_json, existing, False)
    chunks = [(k, p) for k, p in chunks if k != b"XMP "]
    if chunks[0][0] == b"VP8X":
        flagged = bytearray(chunks[0][1])
        flagged[0] |= 0x04  # "XMP metadata present"
        chunks[0] = (b"VP8X", bytes(flagged))
    else:
        # A simple (VP8/VP8L-only) file must become "extended" to carry metadata.
        width, height, alpha = _webp_canvas(*chunks[0])
        flags = 0x04 | (0x10 if alpha else 0)
        header = bytes([flags, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        chunks.insert(0, (b"VP8X", header))
    chunks.append((b"XMP ", packet))  # the container spec puts XMP after the image data
    body = b"WEBP" + b"".join(_riff_chunk(k, p) for k, p in chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _extract_webp(data: bytes) -> dict[str, Any] | None:
    for kind, payload in _webp_chunks(data):
        if kind == b"XMP ":
            return _recipe_from_xmp(payload)
    return None


# --------------------------------------------------------------------------- public


def _resave(data: bytes, fmt: str, recipe_json: str) -> bytes:
    """Last resort for files whose container could not be spliced: re-save through Pillow at quality 95."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            out = io.BytesIO()
            packet = _xmp_packet(recipe_json, None, len(recipe_json) > _JPEG_XMP_MAX // 2)
            if fmt == "png":
                from PIL.PngImagePlugin import PngInfo

                info = PngInfo()
                info.add_itxt(KEYWORD, recipe_json)
                im.save(out, "PNG", pnginfo=info)
            elif fmt == "jpeg":
                im.convert("RGB").save(out, "JPEG", quality=95, xmp=packet)
            else:
                im.save(out, "WEBP", quality=95, xmp=packet)
            return out.getvalue()
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise InvalidRequest(
            "This file is not an image the recipe can be written into.",
            field="image",
            value=fmt,
            allowed=("png", "jpeg", "webp"),
        ) from exc


def embed(data: bytes, fmt: str, recipe: Mapping[str, Any]) -> bytes:
    """``data`` with ``recipe`` (sanitised) written into it; pixels untouched.

    ``fmt`` is the format the caller believes the bytes are; the content decides
    when they disagree (a provider may answer PNG when WEBP was asked).
    """
    clean = sanitize(recipe)
    fmt = {"jpg": "jpeg"}.get(fmt.lower(), fmt.lower())
    actual = sniff_format(data) or fmt
    recipe_json = _json(clean)
    try:
        if actual == "png":
            return _embed_png(data, recipe_json)
        if actual == "jpeg":
            return _embed_jpeg(data, clean)
        if actual == "webp":
            return _embed_webp(data, recipe_json)
    except (ValueError, IndexError, struct.error):
        return _resave(data, actual, recipe_json)
    raise InvalidRequest(
        f"Recipes can be written into PNG, JPEG or WEBP images, not {fmt.upper()}.",
        field="output_format",
        value=fmt,
        allowed=("png", "jpeg", "webp"),
    )


def extract(data: bytes) -> dict[str, Any] | None:
    """The recipe stored by :func:`embed`, or None (no recipe, another tool's file, or damaged data)."""
    try:
        kind = sniff_format(data)
        if kind == "png":
            return _extract_png(data)
        if kind == "jpeg":
            return _extract_jpeg(data)
        if kind == "webp":
            return _extract_webp(data)
    except (ValueError, IndexError, struct.error):
        return None
    return None


def has_c2pa(data: bytes) -> bool:
    """Whether the file carries a C2PA provenance manifest (which embedding would mark as edited)."""
    kind = sniff_format(data)
    try:
        if kind == "png":
            return any(k == b"caBX" for k, _ in _png_chunks(data))
        if kind == "jpeg":
            segments, _ = _jpeg_segments(data)
            return any(m == 0xEB and b"c2pa" in s for m, s in segments)  # APP11 JUMBF boxes
        if kind == "webp":
            return any(k == b"C2PA" for k, _ in _webp_chunks(data))
    except (ValueError, IndexError, struct.error):
        return False
    return False

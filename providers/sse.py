"""A server-sent events reader (the WHATWG ``text/event-stream`` format), typed and bounded.

Fed raw bytes as they arrive, it hands back whole events: ``data:`` lines joined by
newlines, ``event:`` and ``id:`` kept, comments (``:``) and unknown fields ignored, an
event dispatched on a blank line. Lines may end in CRLF, LF or CR. OpenAI's Images API
streams one JSON object per event (``data: {"type": "image_generation.partial_image", ...}``);
an event can carry a whole base64 image, so the bound is generous but finite.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["MAX_EVENT_BYTES", "SseEvent", "SseReader", "SseTooLarge", "events"]

# A 3840x2160 PNG in base64 is ~40 MB; anything far past that is no image event.
MAX_EVENT_BYTES = 96 * 1024 * 1024


class SseTooLarge(ValueError):
    """One event (or one line) grew past ``MAX_EVENT_BYTES``."""


@dataclass(frozen=True)
class SseEvent:
    data: str
    event: str | None = None
    id: str | None = None


class SseReader:
    """Bytes in, events out. ``feed`` as chunks arrive; ``close`` at the end of the stream.

    An event left without its closing blank line when the stream ends is dropped, as
    the spec says: a cut stream never yields a half event.
    """

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self.max_event_bytes = max_event_bytes
        self._buffer = b""
        self._scanned = 0  # the buffer's first bytes known to hold no line break
        self._data: list[str] = []
        self._size = 0
        self._event: str | None = None
        self._id: str | None = None
        self._first = True

    def feed(self, chunk: bytes) -> list[SseEvent]:
        self._buffer += chunk
        out: list[SseEvent] = []
        while True:
            end = self._line_end()
            if end is None:
                break
            cut, skip = end
            line, self._buffer = self._buffer[:cut], self._buffer[cut + skip :]
            self._scanned = 0
            event = self._line(line)
            if event is not None:
                out.append(event)
        if len(self._buffer) + self._size > self.max_event_bytes:
            raise SseTooLarge(f"a server-sent event is larger than {self.max_event_bytes:,} bytes")
        return out

    def close(self) -> list[SseEvent]:
        """The end of the stream: a pending event with no blank line after it is discarded."""
        out = self.feed(b"\n") if self._buffer.endswith(b"\r") else []  # a final CR ended its line
        self._buffer = b""
        self._scanned = 0
        self._reset()
        return out

    def _line_end(self) -> tuple[int, int] | None:
        """Where the first line of the buffer ends and how long its line break is; None if not yet.

        Only the bytes not yet scanned are searched, so a long ``data:`` line arriving in
        many chunks costs one pass, not one per chunk."""
        buffer, start = self._buffer, self._scanned
        lf, cr = buffer.find(b"\n", start), buffer.find(b"\r", start)
        if cr == -1 or (lf != -1 and lf < cr):
            if lf == -1:
                self._scanned = len(buffer)
                return None
            return lf, 1
        if cr + 1 == len(buffer):  # a CR at the very end may be half a CRLF: wait for the next byte
            self._scanned = cr
            return None
        return cr, 2 if buffer[cr + 1] == 0x0A else 1

    def _line(self, raw: bytes) -> SseEvent | None:
        if self._first:
            self._first = False
            raw = raw.removeprefix(b"\xef\xbb\xbf")  # a byte-order mark may open the stream
        line = raw.decode("utf-8", errors="replace")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._size += len(value) + 1
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None

    def _dispatch(self) -> SseEvent | None:
        if not self._data:
            self._event = None  # an event with no data is not dispatched
            return None
        event = SseEvent(data="\n".join(self._data), event=self._event or None, id=self._id)
        self._reset()
        return event

    def _reset(self) -> None:
        self._data = []
        self._size = 0
        self._event = None


def events(chunks: Iterable[bytes], max_event_bytes: int = MAX_EVENT_BYTES) -> Iterator[SseEvent]:
    """Every whole event in a stream of byte chunks."""
    reader = SseReader(max_event_bytes)
    for chunk in chunks:
        yield from reader.feed(chunk)
    yield from reader.close()

"""The server-sent events reader: the WHATWG parsing rules the OpenAI stream relies on."""

from __future__ import annotations

import pytest

from providers.sse import SseEvent, SseReader, SseTooLarge, events


def test_events_split_anywhere_are_whole_and_cut_events_are_dropped():
    stream = b'\xef\xbb\xbf: comment\r\nevent: image_generation.partial_image\r\ndata: {"a"'
    stream += b':1}\r\n\r\ndata: one\ndata:two\nid: 7\n\nevent: x\n\ndata: cut short'
    for size in (1, 2, 3, 7, len(stream)):
        chunks = [stream[i:i + size] for i in range(0, len(stream), size)]
        assert list(events(chunks)) == [
            SseEvent('{"a":1}', "image_generation.partial_image"),
            SseEvent("one\ntwo", None, "7"),
        ]


def test_a_lone_cr_ends_a_line_even_across_chunks():
    assert list(events([b"data: a\r", b"\r", b"data: b\r\r"])) == [SseEvent("a"), SseEvent("b")]


def test_an_event_past_the_bound_is_refused():
    reader = SseReader(max_event_bytes=100)
    reader.feed(b"data: " + b"x" * 60 + b"\n")
    with pytest.raises(SseTooLarge):
        reader.feed(b"data: " + b"y" * 60)


def test_a_long_line_in_many_chunks_is_scanned_once():
    reader = SseReader()
    piece = b"A" * 65536
    reader.feed(b"data: ")
    for _ in range(200):  # 13 MB in 64 KB chunks: quadratic rescanning would take minutes
        assert reader.feed(piece) == []
    out = reader.feed(b"\n\n")
    assert len(out) == 1 and len(out[0].data) == 200 * 65536

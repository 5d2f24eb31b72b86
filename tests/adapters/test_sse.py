"""The SSE and NDJSON decoders give the same result however the bytes are split."""

from __future__ import annotations

import itertools
import random

import pytest

from adapters.sse import NDJSONDecoder, SSEDecoder, SSEEvent
from tests.adapters.wire import FIXTURES

# Every line ending, a comment, multi-line data, a field without a colon, id and retry, an
# event without data, non-ASCII text (2-, 3- and 4-byte UTF-8) and a leading BOM.
STREAM = (
    "\ufeff: keep-alive comment\r\n"
    "event: greeting\r\ndata: héllo 漢字 🙂\r\ndata: second line\r\nid: 7\r\n\r\n"
    'data: {"a": 1}\n\n'
    "retry: 3000\rdata: cr-only\r\r"
    "event: empty\nid: 8\n\n"
    "data\ndata:no-space\n\n"
    "retry: soon\ndata: [DONE]\n\n"
).encode()
EXPECTED = [
    SSEEvent("greeting", "héllo 漢字 🙂\nsecond line", "7", None),
    SSEEvent("message", '{"a": 1}', "7", None),
    SSEEvent("message", "cr-only", "7", 3000),
    SSEEvent("message", "\nno-space", "8", 3000),
    SSEEvent("message", "[DONE]", "8", 3000),
]


def sse(pieces: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [event for piece in pieces for event in decoder.feed(piece)]
    return events + decoder.close()


def ndjson(pieces: list[bytes]) -> list[str]:
    decoder = NDJSONDecoder()
    return [line for piece in pieces for line in decoder.feed(piece)] + decoder.close()


def cut(raw: bytes, *points: int) -> list[bytes]:
    bounds = [0, *sorted(points), len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(bounds)]


def test_decodes_the_spec_cases() -> None:
    assert sse([STREAM]) == EXPECTED


def test_any_single_split_point() -> None:
    for point in range(len(STREAM) + 1):
        assert sse(cut(STREAM, point)) == EXPECTED, point


def test_any_two_split_points() -> None:
    for first in range(len(STREAM) + 1):
        for second in range(first, len(STREAM) + 1, 3):
            assert sse(cut(STREAM, first, second)) == EXPECTED, (first, second)


def test_random_chunkings_and_single_bytes() -> None:
    rng = random.Random(20240601)
    for _ in range(300):
        points = rng.sample(range(1, len(STREAM)), rng.randint(1, 40))
        assert sse(cut(STREAM, *points)) == EXPECTED, points
    assert sse([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.sse")))
def test_fixture_byte_by_byte_matches_whole(name: str) -> None:
    raw = (FIXTURES / name).read_bytes()
    whole = sse([raw])
    assert whole and all(event.data for event in whole)
    assert sse([raw[i : i + 1] for i in range(len(raw))]) == whole


def test_crlf_split_between_cr_and_lf_is_one_line_end() -> None:
    assert sse([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]) == [SSEEvent(data="a\nb")]
    # A lone CR followed by CRLF is a line end and then a blank line, not one line end.
    assert sse([b"data: a\r", b"\r\n"]) == [SSEEvent(data="a")]


def test_multibyte_character_split_inside() -> None:
    raw = "data: 漢🙂\n\n".encode()
    for point in range(len(raw) + 1):
        assert sse(cut(raw, point)) == [SSEEvent(data="漢🙂")], point


def test_end_of_body_dispatches_whole_lines_but_drops_a_cut_off_line() -> None:
    assert sse([b"data: complete\n"]) == [SSEEvent(data="complete")]
    assert sse([b"data: complete\n\ndata: cut of"]) == [SSEEvent(data="complete")]


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert sse([b"data: \xff\xfe\n\n"]) == [SSEEvent(data="\ufffd\ufffd")]


NDJSON = '{"a": "漢"}\r\n\n  {"b": 2}\n{"c": 3}'.encode()


def test_ndjson_any_split_point() -> None:
    want = ['{"a": "漢"}', '{"b": 2}', '{"c": 3}']
    for point in range(len(NDJSON) + 1):
        assert ndjson(cut(NDJSON, point)) == want, point
    rng = random.Random(7)
    for _ in range(200):
        points = rng.sample(range(1, len(NDJSON)), rng.randint(1, 10))
        assert ndjson(cut(NDJSON, *points)) == want, points


def test_ndjson_fixture_byte_by_byte() -> None:
    raw = (FIXTURES / "ollama_stream.ndjson").read_bytes()
    want = [line for line in raw.decode().split("\n") if line]
    assert ndjson([raw[i : i + 1] for i in range(len(raw))]) == want == ndjson([raw])

"""The SSE and NDJSON decoders survive bytes split at every possible point."""

from __future__ import annotations

from adapters.sse import NDJSONDecoder, SSEDecoder, SSEEvent
from tests.adapters.wire import fixture

STREAM = (
    ": comment\r\n"
    "event: greeting\r\ndata: héllo 漢字\r\ndata: second line\r\nid: 7\r\n\r\n"
    'data: {"a": 1}\n\n'
    "retry: 3000\rdata: cr-only\r\r"
    "data: [DONE]\n\n"
).encode()
EXPECTED = [
    SSEEvent("greeting", "héllo 漢字\nsecond line", "7", None),
    SSEEvent("message", '{"a": 1}', "7", None),
    SSEEvent("message", "cr-only", "7", 3000),
    SSEEvent("message", "[DONE]", "7", 3000),
]


def _decode(chunks: list[bytes]) -> list[SSEEvent]:
    decoder, events = SSEDecoder(), []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.close())
    return events


def test_sse_decodes_whole() -> None:
    got = _decode([STREAM])
    assert [(e.event, e.data) for e in got] == [(e.event, e.data) for e in EXPECTED]
    assert got[2].retry == 3000 and got[0].id == "7"


def test_sse_split_at_every_byte_boundary() -> None:
    want = [(e.event, e.data) for e in _decode([STREAM])]
    for cut in range(1, len(STREAM)):
        assert [(e.event, e.data) for e in _decode([STREAM[:cut], STREAM[cut:]])] == want, cut
    for size in (1, 2, 3, 5, 7):
        pieces = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
        assert [(e.event, e.data) for e in _decode(pieces)] == want, size


def test_sse_fixture_byte_by_byte_matches_whole() -> None:
    raw = fixture("anthropic_stream.sse")
    whole = _decode([raw])
    assert [e.event for e in whole][:2] == ["message_start", "content_block_start"]
    assert _decode([raw[i : i + 1] for i in range(len(raw))]) == whole


def test_ndjson_split_anywhere() -> None:
    raw = fixture("ollama_stream.ndjson")
    want = [line for line in raw.decode().split("\n") if line.strip()]
    for cut in range(1, len(raw)):
        decoder = NDJSONDecoder()
        got = [*decoder.feed(raw[:cut]), *decoder.feed(raw[cut:]), *decoder.close()]
        assert got == want, cut

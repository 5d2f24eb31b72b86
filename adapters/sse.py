"""Incremental decoders for streamed upstream bodies: Server-Sent Events and NDJSON.

Both are pure: feed them bytes as they arrive, split anywhere (inside a line ending or a UTF-8
character too), and they yield complete events or lines.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class SSEEvent:
    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """The SSE parsing algorithm of the WHATWG HTML spec, fed incrementally."""

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._pending_cr = False
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> Iterator[SSEEvent]:
        yield from self._lines(self._text.decode(chunk))

    def close(self) -> Iterator[SSEEvent]:
        yield from self._lines(self._text.decode(b"", final=True) + "\n")

    def _lines(self, text: str) -> Iterator[SSEEvent]:
        for char in text:
            if self._pending_cr:
                self._pending_cr = False
                if char == "\n":
                    continue
            if char in "\r\n":
                self._pending_cr = char == "\r"
                line, self._buffer = self._buffer, ""
                event = self._line(line)
                if event is not None:
                    yield event
            else:
                self._buffer += char

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = SSEEvent(self._event or "message", "\n".join(self._data), self._id, self._retry)
        self._event, self._data = "", []
        return event


class NDJSONDecoder:
    """Newline-delimited JSON: yields each complete non-empty line."""

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""

    def feed(self, chunk: bytes) -> Iterator[str]:
        self._buffer += self._text.decode(chunk)
        *lines, self._buffer = self._buffer.split("\n")
        yield from (line.strip() for line in lines if line.strip())

    def close(self) -> Iterator[str]:
        rest = (self._buffer + self._text.decode(b"", final=True)).strip()
        self._buffer = ""
        if rest:
            yield rest

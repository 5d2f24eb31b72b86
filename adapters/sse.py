"""Incremental decoders for streamed upstream bodies: Server-Sent Events and NDJSON.

Both are pure and fed bytes as they arrive, split anywhere: inside a ``\\r\\n`` pair or inside a
multi-byte UTF-8 character. ``feed`` returns the events (or lines) the chunk completed, and
``close`` whatever the end of the body completes. Lists, not generators, so a caller that stops
early cannot leave a decoder half-advanced.

The SSE decoder follows the WHATWG HTML "event stream interpretation" algorithm: ``\\n``,
``\\r\\n`` and ``\\r`` end lines, ``:`` starts a comment, ``data`` lines join with ``\\n``, an
event without data is not dispatched, and ``id`` persists across events. One leniency: at the
end of the body an event whose lines all arrived whole is dispatched even without the closing
blank line (some servers omit it); a cut-off last line is dropped.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

_LINE_END = re.compile(r"\r\n|\r|\n")
_BOM = "\ufeff"


@dataclass(frozen=True)
class SSEEvent:
    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


class _Lines:
    """UTF-8 bytes in, complete lines out (without their line ending)."""

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending: list[str] = []  # pieces of the unfinished line
        self._skip_lf = False  # the last chunk ended in "\r": a leading "\n" belongs to it
        self._started = False

    def feed(self, chunk: bytes) -> list[str]:
        return self._split(self._text.decode(chunk))

    def close(self) -> tuple[list[str], str]:
        """The lines the end completes, and the unterminated rest (possibly cut off)."""
        lines = self._split(self._text.decode(b"", final=True))
        rest, self._pending = "".join(self._pending), []
        return lines, rest

    def _split(self, text: str) -> list[str]:
        if not self._started and text:
            self._started, text = True, text.removeprefix(_BOM)
        if self._skip_lf and text:
            self._skip_lf, text = False, text.removeprefix("\n")
        if not text:
            return []
        pieces = _LINE_END.split(text)
        if len(pieces) == 1:
            self._pending.append(text)
            return []
        first = "".join(self._pending) + pieces[0]
        self._pending = [pieces[-1]] if pieces[-1] else []
        self._skip_lf = text.endswith("\r")
        return [first, *pieces[1:-1]]


class SSEDecoder:
    """Server-Sent Events, decoded incrementally."""

    def __init__(self) -> None:
        self._lines = _Lines()
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        return self._events(self._lines.feed(chunk))

    def close(self) -> list[SSEEvent]:
        lines, _cut_off = self._lines.close()
        return self._events([*lines, ""])

    def _events(self, lines: list[str]) -> list[SSEEvent]:
        events = []
        for line in lines:
            if not line:
                event = self._dispatch()
                if event is not None:
                    events.append(event)
            elif not line.startswith(":"):
                self._field(*line.partition(":")[::2])
        return events

    def _field(self, name: str, value: str) -> None:
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)

    def _dispatch(self) -> SSEEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return SSEEvent(event or "message", "\n".join(data), self._id, self._retry)


class NDJSONDecoder:
    """Newline-delimited JSON (Ollama's stream): each complete non-blank line, stripped."""

    def __init__(self) -> None:
        self._lines = _Lines()

    def feed(self, chunk: bytes) -> list[str]:
        return [line.strip() for line in self._lines.feed(chunk) if line.strip()]

    def close(self) -> list[str]:
        lines, rest = self._lines.close()
        return [line.strip() for line in [*lines, rest] if line.strip()]

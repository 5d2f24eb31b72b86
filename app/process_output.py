"""The last lines a child process wrote: read as they come, kept in a bounded ring buffer.

A child whose pipe nobody reads blocks once the pipe is full, and one that prints forever must
not grow our memory: ``OutputTail`` reads continuously and keeps only the last ``lines`` lines,
each cut to ``width`` characters, so a crash can be logged with what the child said last.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque


class OutputTail:
    def __init__(self, lines: int = 40, width: int = 400) -> None:
        self.width = width
        self._lines: deque[str] = deque(maxlen=lines)
        self._reader: asyncio.Task[None] | None = None

    def follow(self, stream: asyncio.StreamReader) -> None:
        """Read ``stream`` to its end in the background (a new stream replaces the last one)."""
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
        self._reader = asyncio.get_running_loop().create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        pending = b""
        skipping = False  # inside an overlong line whose start is already kept
        while chunk := await stream.read(1 << 16):
            *complete, rest = (pending + chunk).split(b"\n")
            if skipping and complete:
                complete, skipping = complete[1:], False
            for line in complete:
                self.add(line.decode("utf-8", errors="replace"))
            pending = b"" if skipping else rest
            if len(pending) > self.width:  # keep the start of a line that has no end yet
                self.add(pending.decode("utf-8", errors="replace"))
                pending, skipping = b"", True
        if pending:
            self.add(pending.decode("utf-8", errors="replace"))

    def add(self, line: str) -> None:
        line = line.rstrip("\r")
        self._lines.append(line if len(line) <= self.width else line[: self.width] + "...")

    async def drained(self, timeout_s: float = 2.0) -> None:
        """Wait (briefly) until the stream ended, so the last lines are in."""
        reader = self._reader
        if reader is None or reader.done():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(reader), timeout_s)

    def lines(self) -> list[str]:
        return list(self._lines)

    def text(self) -> str:
        return "\n".join(self._lines) if self._lines else "(no output)"

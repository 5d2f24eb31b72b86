"""A streamed answer read in a task of its own, so its end is accounted whatever the client does.

When a client drops a stream, the server cancels the task writing the response, and keeps
cancelling it at every ``await`` until it is done (anyio's cancel scopes): cleanup written in that
task's ``finally`` -- closing the upstream stream, settling the budget hold -- can be cut off
half-way, and a dropped stream was then charged nothing. So the upstream stream is read by a
``Pump`` task the pipeline owns; the response task only takes chunks from a small queue. When the
response side stops (finished, cancelled or abandoned without a word), the pump is told without
an ``await``, closes the upstream stream, and runs ``finish`` (usage, records, the settlement)
to its end in its own task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from app.errors import SwitchboardError, UpstreamError
from app.schemas import ChatChunk

log = logging.getLogger(__name__)

QUEUE_CHUNKS = 64
IDLE_CONSUMER_S = 60.0
"""A response side that takes no chunk for this long has gone without closing: stop reading."""


@dataclass
class Tally:
    """What the client was sent: text, tool-call deltas and the usage the provider reported."""

    text: list[str] = field(default_factory=list)
    usage: ChatChunk | None = None
    finished: bool = False
    """The provider's stream ended normally (not cut by the client, an error or a timeout)."""
    error: SwitchboardError | None = None


Finish = Callable[[Tally], Awaitable[None]]

_END = object()


class Pump:
    """Reads ``first`` + ``rest`` into a queue in its own task; ``finish`` runs when it stops."""

    def __init__(
        self,
        first: ChatChunk,
        rest: AsyncGenerator[ChatChunk, None],
        finish: Finish,
        tasks: set[asyncio.Task[None]],
    ) -> None:
        self._first = first
        self._rest = rest
        self._finish = finish
        self._queue: asyncio.Queue[object] = asyncio.Queue(QUEUE_CHUNKS)
        self.tally = Tally()
        self._tasks = tasks
        self._reading = True
        self._finished: asyncio.Task[None] | None = None
        self._task = self._spawn(self._run(), "stream-pump")

    def _spawn(self, work: Awaitable[None], name: str) -> asyncio.Task[None]:
        async def run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(run(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _put(self, item: object) -> None:
        async with asyncio.timeout(IDLE_CONSUMER_S):
            await self._queue.put(item)

    async def _run(self) -> None:
        try:
            if self._first.choices or self._first.usage is not None:
                await self._put(self._first)
            async for chunk in self._rest:
                await self._put(chunk)
            self.tally.finished = True
            await self._put(_END)
        except UpstreamError as exc:
            self.tally.error = exc
            with contextlib.suppress(TimeoutError):
                await self._put(exc)
        except (asyncio.CancelledError, TimeoutError):
            pass  # the client left, or stopped reading
        finally:
            self._reading = False
            # In a task of its own: a late cancel of this one cannot cut it short.
            self._finished = self._spawn(self._close_and_finish(), "stream-finish")
        await asyncio.shield(self._finished)

    async def _close_and_finish(self) -> None:
        try:
            await self._rest.aclose()
        except Exception as exc:
            log.warning("closing an upstream stream failed: %s", type(exc).__name__)
        try:
            await self._finish(self.tally)
        except Exception:
            log.exception("finishing a stream failed")

    def stop(self) -> None:
        """The response side is done reading (called without awaiting, from any ``finally``)."""
        if self._reading and not self._task.done():
            self._task.cancel()

    async def chunks(self) -> AsyncIterator[ChatChunk]:
        """The chunks in order; an upstream failure after the first raises ``UpstreamError``.
        Whoever iterates must call ``stop`` in a ``finally`` when it ends early."""
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            if isinstance(item, UpstreamError):
                raise item
            assert isinstance(item, ChatChunk)
            self._note(item)
            yield item

    def _note(self, chunk: ChatChunk) -> None:
        if chunk.usage is not None:
            self.tally.usage = chunk
        self.tally.text.extend(c.delta.content or "" for c in chunk.choices)

    async def wait(self) -> None:
        """Until ``finish`` has run (for tests and shutdown)."""
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._task)
        if self._finished is not None:
            await asyncio.shield(self._finished)

"""Async embedding for the request path: an LRU cache and micro-batching over one encoder.

Requests that arrive while the encoder is busy wait in a queue; when it frees up, everything
queued is embedded in one encoder call (up to ``max_batch``): one padded batch for fp32, texts
side by side for int8 (``app.embedding.encoder.OnnxEncoder``). Under load that turns N thread
hops and N encoder runs, each reading all the weights, into a few. When requests have been
arriving together (the last batch held more than one text), a batch whose first text finds the
encoder free also waits up to ``max_wait_s`` (1 ms) for the texts of requests just behind it;
with one request at a time nothing waits. A text the encoder refuses fails its own request
only: the batch is then encoded text by text. An encoder that takes microseconds
(``Encoder.inline``: static embeddings) runs on the event loop at once, with no queue.

The queue is bounded in time: from the encoder's recent seconds per text, a text that would
wait longer than ``max_queue_s`` behind the ones already queued is refused at once with
``Overloaded`` (503 with ``Retry-After``), so that a burst larger than the encoder can take gets
quick refusals instead of every request waiting and timing out together.

Texts are cut to what the encoder reads (``Encoder.max_chars``) before anything else, so long
texts with the same beginning share one entry, and the cache is bounded in bytes (keys, vectors
and bookkeeping), not entries: a few thousand entries of megabyte-long keys would otherwise
hold gigabytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import OrderedDict

import numpy as np

from app.embedding.encoder import Encoder, Vectors
from app.errors import Overloaded

ENTRY_OVERHEAD = 200
"""Bytes an entry costs beyond its key and vector (the dict slot, the array header)."""
SMOOTHING = 0.2
"""Weight of the newest batch in the running seconds-per-text estimate."""


class EmbeddingService:
    def __init__(
        self,
        encoder: Encoder,
        *,
        cache_bytes: int = 32 * 1024 * 1024,
        max_batch: int = 64,
        max_wait_s: float = 0.001,
        max_queue_s: float | None = None,
    ) -> None:
        self.encoder = encoder
        self.max_queue_s = max_queue_s
        """The longest a text may expect to wait for the encoder; None: no bound."""
        self.seconds_per_text: float | None = None
        """Running estimate of the encoder's wall time per text, from recent batches."""
        self._in_flight = 0
        self.refused = 0
        self.max_cache_bytes = cache_bytes
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._together = False
        """Whether the last batch held more than one text: requests are arriving together."""
        self.cache_bytes = 0
        self._cache: OrderedDict[str, Vectors] = OrderedDict()
        self._queue: asyncio.Queue[tuple[str, asyncio.Future[Vectors]]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self.batches = 0
        self.embedded = 0

    @property
    def dim(self) -> int:
        return self.encoder.dim

    async def embed(self, text: str, *, shed: bool = True) -> Vectors:
        """One L2-normalised vector for ``text`` (shape ``(dim,)``).

        Raises ``Overloaded`` when the text would wait longer than ``max_queue_s``, unless
        ``shed`` is False (work already paid for, such as caching an answer, is never shed).
        """
        text = text[: self.encoder.max_chars]
        cached = self._cache.get(text)
        if cached is not None:
            self._cache.move_to_end(text)
            return cached
        if self.encoder.inline:  # microseconds: a queue and a thread would cost more
            by_text = self._encode([text])
            found = by_text[text]
            if isinstance(found, Exception):
                raise found
            self._remember({text: found})
            return found
        wait = self.expected_wait_s()
        if shed and self.max_queue_s is not None and wait > self.max_queue_s:
            self.refused += 1
            raise Overloaded(
                f"too busy to route now: about {wait:.1f} s of queries are waiting to be read",
                retry_after=wait,
            )
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="embedding-batcher")
        future: asyncio.Future[Vectors] = asyncio.get_running_loop().create_future()
        await self._queue.put((text, future))
        return await future

    def expected_wait_s(self) -> float:
        """How long a text queued now would wait for its vector, from recent batches."""
        if self.seconds_per_text is None:
            return 0.0
        return (self._queue.qsize() + self._in_flight + 1) * self.seconds_per_text

    async def _gather(self) -> list[tuple[str, asyncio.Future[Vectors]]]:
        """The next batch: what is queued, and under load what arrives within ``max_wait_s``."""
        batch = [await self._queue.get()]
        if self._together and self.max_wait_s > 0:
            deadline = asyncio.get_running_loop().time() + self.max_wait_s
            while len(batch) < self.max_batch:
                left = deadline - asyncio.get_running_loop().time()
                try:
                    batch.append(
                        self._queue.get_nowait() if left <= 0 else
                        await asyncio.wait_for(self._queue.get(), left)
                    )  # fmt: skip
                except (asyncio.QueueEmpty, TimeoutError):
                    break
        while not self._queue.empty() and len(batch) < self.max_batch:
            batch.append(self._queue.get_nowait())
        self._together = len(batch) > 1
        return batch

    async def _run(self) -> None:
        while True:
            batch = await self._gather()
            texts = list(dict.fromkeys(text for text, _ in batch))
            self._in_flight = len(batch)
            started = time.perf_counter()
            try:
                by_text = await asyncio.to_thread(self._encode, texts)
            finally:
                self._in_flight = 0
            per_text = (time.perf_counter() - started) / len(texts)
            self.seconds_per_text = (
                per_text if self.seconds_per_text is None
                else SMOOTHING * per_text + (1 - SMOOTHING) * self.seconds_per_text
            )  # fmt: skip
            self.batches += 1
            for text, future in batch:
                if future.done():
                    continue
                result = by_text[text]
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
            self._remember({t: v for t, v in by_text.items() if not isinstance(v, Exception)})

    def _encode(self, texts: list[str]) -> dict[str, Vectors | Exception]:
        """Each text's vector, or the error the encoder raised on that text alone."""
        try:
            vectors = self.encoder.encode(texts)
        except Exception as exc:
            if len(texts) == 1:
                return {texts[0]: exc}
            found: dict[str, Vectors | Exception] = {}
            for text in texts:
                found |= self._encode([text])
            return found
        self.embedded += len(texts)
        return {text: np.ascontiguousarray(v) for text, v in zip(texts, vectors, strict=True)}

    @staticmethod
    def _size(text: str, vector: Vectors) -> int:
        return sys.getsizeof(text) + vector.nbytes + ENTRY_OVERHEAD

    def _remember(self, by_text: dict[str, Vectors]) -> None:
        for text, vec in by_text.items():
            size = self._size(text, vec)
            if size > self.max_cache_bytes:
                continue
            old = self._cache.pop(text, None)
            if old is not None:
                self.cache_bytes -= self._size(text, old)
            self._cache[text] = vec
            self.cache_bytes += size
        while self.cache_bytes > self.max_cache_bytes:
            text, vec = self._cache.popitem(last=False)
            self.cache_bytes -= self._size(text, vec)

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

"""Async embedding for the request path: an LRU cache and micro-batching over one encoder.

Requests that arrive while the encoder is busy wait in a queue; when it frees up, everything
queued is embedded in one encoder call (up to ``max_batch``), which runs the texts side by side
on every core (``app.embedding.encoder.OnnxEncoder``). Under load that turns N thread hops and N
one-core-at-a-time encodings into a few calls that keep both cores busy; with one request at a
time it adds no waiting at all.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict

import numpy as np

from app.embedding.encoder import Encoder, Vectors


class EmbeddingService:
    def __init__(self, encoder: Encoder, *, cache_size: int = 4096, max_batch: int = 64) -> None:
        self.encoder = encoder
        self.cache_size = cache_size
        self.max_batch = max_batch
        self._cache: OrderedDict[str, Vectors] = OrderedDict()
        self._queue: asyncio.Queue[tuple[str, asyncio.Future[Vectors]]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self.batches = 0
        self.embedded = 0

    @property
    def dim(self) -> int:
        return self.encoder.dim

    async def embed(self, text: str) -> Vectors:
        """One L2-normalised vector for ``text`` (shape ``(dim,)``)."""
        cached = self._cache.get(text)
        if cached is not None:
            self._cache.move_to_end(text)
            return cached
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="embedding-batcher")
        future: asyncio.Future[Vectors] = asyncio.get_running_loop().create_future()
        await self._queue.put((text, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < self.max_batch:
                batch.append(self._queue.get_nowait())
            texts = list(dict.fromkeys(text for text, _ in batch))
            try:
                vectors = await asyncio.to_thread(self.encoder.encode, texts)
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.batches += 1
            self.embedded += len(texts)
            by_text = {
                text: np.ascontiguousarray(vec) for text, vec in zip(texts, vectors, strict=True)
            }
            for text, future in batch:
                if not future.done():
                    future.set_result(by_text[text])
            self._remember(by_text)

    def _remember(self, by_text: dict[str, Vectors]) -> None:
        if self.cache_size <= 0:
            return
        for text, vec in by_text.items():
            self._cache[text] = vec
            self._cache.move_to_end(text)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

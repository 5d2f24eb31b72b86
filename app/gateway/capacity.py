"""Backpressure: how many upstream calls may run at once, per model and in total.

A local llama.cpp server answers one request at a time and a hosted provider's pool is finite,
so the gateway takes a slot before each upstream call and gives it back when the call ends.
When every slot is taken a call waits in a bounded queue for at most ``queue_timeout_s``, then
gives up with ``UpstreamBusy``: a 503 with ``Retry-After`` if no other model can take the call.

Waiting for a slot is not a provider failure: it never opens a breaker, never counts as the
model's latency, and is never retried on the same model (the gateway moves down the order).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from app.errors import UpstreamBusy

BUSY_RETRY_AFTER_S = 1.0


@dataclass(frozen=True)
class Limit:
    """One model's slots: ``concurrency`` calls at once, ``queue`` more waiting at most."""

    concurrency: int
    queue: int
    queue_timeout_s: float


class _Gate:
    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        self.slots = asyncio.Semaphore(limit.concurrency)
        self.waiting = 0


class Capacity:
    """Per-model and total slots for upstream calls (see the module docstring)."""

    def __init__(self, limits: Mapping[str, Limit], total: Limit) -> None:
        self._gates = {model: _Gate(limit) for model, limit in limits.items()}
        self._total = _Gate(total)

    @contextlib.asynccontextmanager
    async def slot(self, model: str) -> AsyncIterator[float]:
        """Hold a slot for one call to ``model``; yields the seconds spent queueing."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        gates = [g for g in (self._gates.get(model), self._total) if g is not None]
        taken: list[_Gate] = []
        try:
            for gate in gates:
                await self._take(gate, model)
                taken.append(gate)
            yield loop.time() - started
        finally:
            for gate in taken:
                gate.slots.release()

    @staticmethod
    async def _take(gate: _Gate, model: str) -> None:
        if not gate.slots.locked():
            await gate.slots.acquire()
            return
        if gate.waiting >= gate.limit.queue:
            raise UpstreamBusy(
                f"{model} is at capacity ({gate.limit.concurrency} calls running, "
                f"{gate.waiting} waiting)",
                retry_after=BUSY_RETRY_AFTER_S,
            )
        gate.waiting += 1
        try:
            async with asyncio.timeout(gate.limit.queue_timeout_s):
                await gate.slots.acquire()
        except TimeoutError:
            raise UpstreamBusy(
                f"{model} stayed at capacity for {gate.limit.queue_timeout_s:g} s",
                retry_after=BUSY_RETRY_AFTER_S,
            ) from None
        finally:
            gate.waiting -= 1

    def busy(self) -> dict[str, int]:
        """Calls waiting for a slot, per model (for metrics and readiness)."""
        return {model: gate.waiting for model, gate in self._gates.items() if gate.waiting}

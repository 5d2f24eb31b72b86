"""Circuit breakers shared by all workers through the state store.

Each worker keeps its own breakers (``app.gateway.breaker``) on the request path, no I/O there. At
most once a second it publishes the breakers it opened and adopts those opened elsewhere, so
when one worker sees a provider fail repeatedly, all of them stop sending to it.
"""

from __future__ import annotations

import time

from app.gateway.breaker import CircuitBreakers
from app.state import StateStore, StateUnavailable

SYNC_INTERVAL_S = 1.0


class BreakerSync:
    def __init__(self, store: StateStore, breakers: CircuitBreakers) -> None:
        self.store = store
        self.breakers = breakers
        self._synced_at = 0.0

    async def sync(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._synced_at < SYNC_INTERVAL_S:
            return
        self._synced_at = now
        opened, self.breakers.opened = self.breakers.opened, []
        try:
            for model in dict.fromkeys(opened):
                await self.store.mark_open(model, self.breakers.cooldown_s)
            for model, remaining in (await self.store.open_models()).items():
                self.breakers.open_for(model, remaining)
        except StateUnavailable:
            self.breakers.opened = opened + self.breakers.opened  # publish when the store is back

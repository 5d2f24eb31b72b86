"""The money of one request: budget holds before upstream calls, one settlement after them.

A key with a budget is charged by reserving each call's worst case before it is made (atomic in
the store, so concurrent calls on many workers cannot overspend) and settling what the calls
really cost afterwards. ``Ledger`` is that for one request, whatever happens to it:

- ``admit`` checks the key's rate limits and holds the first call's worst case;
- ``hold_more`` holds one more call's worst case before a call that may be billed on top of the
  first (a hedge, a retry after a timeout): the gateway asks before making it;
- ``settle`` releases every hold and records the real cost, exactly once. It runs in a task of its
  own (``Outbox.settle``), so a client that disconnects, a cancelled handler or an exception
  after admission cannot skip it; when the store is down the settlement waits in a bounded local
  outbox and is replayed once the store answers again.

If the store is down at admission, ``SWITCHBOARD_FAIL_OPEN`` decides: serve without limits (the
spend is still recorded later through the outbox) or refuse with 503.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field

from app.errors import RateLimited
from app.pipeline.access import Caller
from app.state import RateDecision, StateStore, StateUnavailable

log = logging.getLogger(__name__)

WINDOW_S = 60.0
OUTBOX_SIZE = 10_000
FLUSH_INTERVAL_S = 2.0


@dataclass(frozen=True)
class Settlement:
    key_id: str
    reserved_usd: float
    actual_usd: float


class Outbox:
    """Settlements not yet in the store, replayed in order when it answers again (bounded)."""

    def __init__(self, store: StateStore, size: int = OUTBOX_SIZE) -> None:
        self.store = store
        self._pending: deque[Settlement] = deque()
        self._size = size
        self._tasks: set[asyncio.Task[None]] = set()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._pending)

    async def settle(self, settlement: Settlement) -> None:
        """Record ``settlement`` in a task of its own: cancelling the caller cannot stop it."""
        task = asyncio.get_running_loop().create_task(self._settle(settlement))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await asyncio.shield(task)

    async def _settle(self, settlement: Settlement) -> None:
        if self._pending:  # keep the order: older settlements first
            self._keep(settlement)
            await self.flush()
            return
        try:
            await self.store.settle(
                settlement.key_id, settlement.reserved_usd, settlement.actual_usd
            )
        except StateUnavailable:
            log.warning("state store down: settlement for %s kept in the outbox", settlement.key_id)
            self._keep(settlement)

    def _keep(self, settlement: Settlement) -> None:
        if len(self._pending) >= self._size:
            lost = self._pending.popleft()
            self.dropped += 1
            log.error(
                "spend outbox full: %.6f USD of %s not recorded", lost.actual_usd, lost.key_id
            )
        self._pending.append(settlement)

    async def flush(self) -> None:
        """Replay what is pending, oldest first; stop at the first failure."""
        while self._pending:
            head = self._pending[0]
            try:
                await self.store.settle(head.key_id, head.reserved_usd, head.actual_usd)
            except StateUnavailable:
                return
            self._pending.popleft()

    async def run(self) -> None:
        """Background task: flush every ``FLUSH_INTERVAL_S`` while anything is pending."""
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            if self._pending:
                await self.flush()

    async def drain(self) -> None:
        """At shutdown: let running settlements finish and try the outbox once more."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.flush()
        if self._pending:
            log.error("%d settlements not recorded at shutdown (state store down)", len(self))


def _headers(kind: str, decision: RateDecision) -> dict[str, str]:
    return {
        f"x-ratelimit-limit-{kind}": str(decision.limit),
        f"x-ratelimit-remaining-{kind}": str(decision.remaining),
        f"x-ratelimit-reset-{kind}": f"{decision.reset_s:.3f}s",
    }


@dataclass
class Ledger:
    """One request's holds and charges (see the module docstring)."""

    caller: Caller
    store: StateStore
    outbox: Outbox
    fail_open: bool
    held_usd: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    limited: bool = False
    """True when the key's limits and budget were checked (False: anonymous, or failed open)."""
    _settled: bool = False

    @property
    def budgeted(self) -> bool:
        """A budget applies to this request (so output must stay within what was held)."""
        return self.caller.key is not None and self.caller.key.budget_usd is not None

    async def admit(self, tokens: int, worst_usd: float) -> None:
        """Apply the key's rate limits to ~``tokens`` tokens and hold ``worst_usd``; raise 429."""
        key = self.caller.key
        if key is None:
            return
        try:
            for kind, limit, amount in (("requests", key.rpm, 1), ("tokens", key.tpm, tokens)):
                if limit is None:
                    continue
                decision = await self.store.hit(f"{key.id}:{kind}", amount, limit, WINDOW_S)
                self.headers |= _headers(kind, decision)
                if not decision.allowed:
                    raise RateLimited(
                        f"rate limit of {limit} {kind} per minute reached for this key",
                        retry_after=decision.retry_after,
                    )
            if key.budget_usd is not None:
                if not await self.store.reserve(key.id, worst_usd, key.budget_usd):
                    raise RateLimited(f"the key's budget of ${key.budget_usd:g} is spent",
                                      code="insufficient_quota", retry_after=3600)  # fmt: skip
                self.held_usd = worst_usd
            self.limited = True
        except StateUnavailable:
            if not self.fail_open:
                raise
            log.warning("state store down: serving without rate limits or budget (fail open)")

    async def hold_more(self, usd: float) -> bool:
        """Hold ``usd`` more for one extra billed call; False when the budget cannot take it."""
        key = self.caller.key
        if key is None or key.budget_usd is None or not self.limited:
            return True
        try:
            if not await self.store.reserve(key.id, usd, key.budget_usd):
                return False
        except StateUnavailable:
            return self.fail_open
        self.held_usd += usd
        return True

    async def settle(self, actual_usd: float) -> None:
        """Release the holds and record ``actual_usd``; once, and never cancelled half-way."""
        if self._settled or self.caller.key is None:
            return
        self._settled = True
        await self.outbox.settle(Settlement(self.caller.key.id, self.held_usd, actual_usd))

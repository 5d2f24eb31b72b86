"""The decision log: where every finished call went and what it cost, for the operator console.

The pipeline's ``Recorder`` hands each finished call here (``DecisionLog.write``). The write goes
to the state store in a background task: the reply never waits for it, and a failing store costs a
warning in the log, never the user's call. Two things are kept, both shared by every worker
through the store:

- the newest ``max_entries`` entries (default 1,000, gone 24 h after the last call) for the live
  view: time, key name, chosen model, capabilities, latency, overhead, cost, fallbacks, cache
  hit, error, and what the strongest candidate would have cost;
- integer counters per model and 5-minute bucket (calls, nano-USD spent, nano-USD the strongest
  model would have cost), kept 25 h, which ``savings`` sums over the last hour and day.

Counters rather than sums over the log: at 10 calls a second a 10,000-entry log spans 17 minutes,
so a day's figures from it would be wrong exactly when traffic is high; counters cost three
fields per model per bucket whatever the traffic, and add up exactly across workers.

A call's *strongest model* is the eligible candidate of its decision with the highest predicted
quality; its cost is that model's catalog price times the call's real token usage when known
(else the selector's estimate). Calls that named a model (no routing), failed calls and cache
hits count the same both ways, so the savings are only what routing chose differently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from pydantic import JsonValue

from app.catalog import Catalog
from app.schemas import Usage
from app.selection.selector import Decision
from app.state import JsonDict, StateStore

log = logging.getLogger(__name__)

MAX_ENTRIES = 1000
LOG_TTL_S = 24 * 3600.0
BUCKET_S = 300
USAGE_TTL_S = 25 * 3600.0
MAX_PENDING = 1000
"""Writes in flight beyond this are dropped (with a warning) rather than queued without end."""
NANO = 1_000_000_000
WINDOWS = {"hour": 3600, "day": 24 * 3600}


@dataclass(frozen=True)
class Call:
    """A finished call, as ``app.pipeline.accounting.Recorder`` describes it to the log."""

    decision: Decision | None
    model: str | None
    key_name: str | None
    latency_s: float
    overhead_s: float
    cost_usd: float
    fallbacks: list[str] = field(default_factory=list)
    usage: Usage | None = None
    error: str | None = None
    cache_hit: bool = False
    streamed: bool = False
    api: str = "chat"
    """Which API the call came in on (chat, responses, messages, noa)."""


def _usd(nano: int) -> float:
    return round(nano / NANO, 9)


class DecisionLog:
    def __init__(
        self,
        store: StateStore,
        catalog: Catalog,
        *,
        max_entries: int = MAX_ENTRIES,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.max_entries = max_entries
        self.max_pending = max_pending
        self._pending: set[asyncio.Task[None]] = set()

    def write(self, call: Call, now: float | None = None) -> None:
        """Record ``call`` in the background; returns at once (call it on the event loop)."""
        if len(self._pending) >= self.max_pending:
            log.warning("decision log: %d writes pending, one entry dropped", len(self._pending))
            return
        try:
            task = asyncio.get_running_loop().create_task(self._store(call, now or time.time()))
        except RuntimeError:  # no event loop (a sync caller): lose the entry, not the call
            log.warning("decision log: no event loop, one entry dropped")
            return
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self, timeout_s: float = 2.0) -> None:
        """Wait (a little) for writes in flight, before the store closes."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout_s)

    async def _store(self, call: Call, now: float) -> None:
        model = call.model or "none"
        try:
            entry = self.entry(call, now)
            counts = {
                f"calls:{model}": 1,
                f"cost:{model}": round(call.cost_usd * NANO),
                f"strongest:{model}": round(self.strongest(call)[1] * NANO),
            }
            await self.store.log_decision(entry, self.max_entries, LOG_TTL_S)
            await self.store.add_usage(int(now // BUCKET_S), counts, USAGE_TTL_S)
        except Exception as exc:  # the call is answered already: a lost entry must not matter
            log.warning("decision log: entry not stored (%s: %s)", type(exc).__name__, exc)

    def entry(self, call: Call, now: float) -> JsonDict:
        """The log entry for ``call`` finished at ``now`` (Unix time)."""
        decision = call.decision
        strongest, strongest_cost = self.strongest(call)
        capabilities: list[JsonValue] = [
            str(c) for c in getattr(decision, "capabilities", ()) or ()
        ]
        return {
            "ts": round(now, 3),
            "decision_id": decision.decision_id if decision else None,
            "key": call.key_name,
            "model": call.model,
            "capabilities": capabilities,
            "latency_ms": round(call.latency_s * 1000, 2),
            "overhead_ms": round(call.overhead_s * 1000, 2),
            "cost_usd": round(call.cost_usd, 9),
            "strongest_model": strongest,
            "strongest_cost_usd": round(strongest_cost, 9),
            "fallbacks": list[JsonValue](call.fallbacks),
            "cache_hit": call.cache_hit,
            "streamed": call.streamed,
            "api": call.api,
            "error": call.error,
        }

    def strongest(self, call: Call) -> tuple[str | None, float]:
        """The strongest eligible candidate of the call's decision, and its cost for the call."""
        candidates = call.decision.candidates if call.decision else []
        rated = [c for c in candidates if c.eligible and c.quality is not None]
        if call.error is not None or call.cache_hit or not rated:
            return None, call.cost_usd
        best = max(rated, key=lambda c: c.quality or 0.0)
        if best.model == call.model:
            return best.model, call.cost_usd
        entry = self.catalog.get(best.model)
        if call.usage is not None and entry is not None:
            usage = call.usage
            return best.model, entry.cost_usd(usage.prompt_tokens, usage.completion_tokens)
        return best.model, best.cost_usd

    async def recent(self, limit: int, model: str | None = None) -> list[JsonDict]:
        """The newest ``limit`` entries (of ``model`` only, if given), newest first."""
        entries = await self.store.recent_decisions(self.max_entries if model else limit)
        if model:
            entries = [e for e in entries if e.get("model") == model]
        return entries[:limit]

    async def savings(self, now: float | None = None) -> JsonDict:
        """Calls, spend and all-to-the-strongest spend per model (last hour, last day), and per
        clock hour of the last day."""
        latest = int((now or time.time()) // BUCKET_S)
        per_hour = 3600 // BUCKET_S
        first = latest - WINDOWS["day"] // BUCKET_S + 1
        counts = await self.store.usage(list(range(first, latest + 1)))
        windows: dict[str, JsonValue] = {
            name: _window([c for b, c in counts.items() if b > latest - span // BUCKET_S])
            for name, span in WINDOWS.items()
        }
        timeline: list[JsonValue] = []
        for hour in range(first // per_hour, latest // per_hour + 1):  # clock hours, oldest first
            sums = _window([c for b, c in counts.items() if b // per_hour == hour])
            timeline.append({"start": hour * 3600, "calls": sums["calls"],
                             "cost_usd": sums["cost_usd"],
                             "strongest_cost_usd": sums["strongest_cost_usd"]})  # fmt: skip
        return {"bucket_s": BUCKET_S, "windows": windows, "timeline": timeline}


def _window(buckets: list[dict[str, int]]) -> JsonDict:
    """Sum counter buckets into totals and per-model rows (most calls first)."""
    sums: dict[str, dict[str, int]] = {}
    for counts in buckets:
        for name, amount in counts.items():
            kind, _, model = name.partition(":")
            row = sums.setdefault(model, {"calls": 0, "cost": 0, "strongest": 0})
            row[kind] = row.get(kind, 0) + amount
    calls = sum(r["calls"] for r in sums.values())
    cost = sum(r["cost"] for r in sums.values())
    strongest = sum(r["strongest"] for r in sums.values())
    models: list[JsonValue] = [
        {"model": model, "calls": r["calls"], "share": r["calls"] / calls if calls else 0.0,
         "cost_usd": _usd(r["cost"]), "strongest_cost_usd": _usd(r["strongest"])}
        for model, r in sorted(sums.items(), key=lambda item: (-item[1]["calls"], item[0]))
    ]  # fmt: skip
    return {"calls": calls, "cost_usd": _usd(cost), "strongest_cost_usd": _usd(strongest),
            "saved_usd": _usd(strongest - cost), "models": models}  # fmt: skip

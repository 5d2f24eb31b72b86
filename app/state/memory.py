"""The in-memory store: one process, same behaviour as Redis (asyncio makes each call atomic)."""

from __future__ import annotations

import time

from app.state import ApiKeyRecord, RateDecision, key_hash, to_micro


class MemoryStore:
    def __init__(self) -> None:
        self._keys: dict[str, ApiKeyRecord] = {}
        self._by_hash: dict[str, str] = {}
        self._windows: dict[str, tuple[float, int]] = {}
        self._spend: dict[str, int] = {}
        self._held: dict[str, int] = {}
        self._decisions: dict[str, tuple[float, str]] = {}
        self._feedback: list[str] = []
        self._seen: set[str] = set()
        self._epoch = 0
        self._cache: dict[str, tuple[float, str]] = {}
        self._semantic: dict[str, tuple[float, list[str]]] = {}
        self._open: dict[str, float] = {}

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None

    async def create_key(self, record: ApiKeyRecord, key: str) -> None:
        self._keys[record.id] = record
        self._by_hash[key_hash(key)] = record.id

    async def lookup_key(self, key: str) -> ApiKeyRecord | None:
        key_id = self._by_hash.get(key_hash(key))
        return self._keys.get(key_id) if key_id else None

    async def get_key(self, key_id: str) -> ApiKeyRecord | None:
        return self._keys.get(key_id)

    async def list_keys(self) -> list[ApiKeyRecord]:
        return sorted(self._keys.values(), key=lambda r: r.created)

    async def delete_key(self, key_id: str) -> bool:
        self._by_hash = {h: k for h, k in self._by_hash.items() if k != key_id}
        return self._keys.pop(key_id, None) is not None

    async def hit(self, bucket: str, amount: int, limit: int, window_s: float) -> RateDecision:
        now = time.monotonic()
        start, used = self._windows.get(bucket, (now, 0))
        if now - start >= window_s:
            start, used = now, 0
        reset = window_s - (now - start)
        if used + amount > limit:
            return RateDecision(False, limit, max(0, limit - used), reset)
        self._windows[bucket] = (start, used + amount)
        return RateDecision(True, limit, limit - used - amount, reset)

    async def reserve(self, key_id: str, amount_usd: float, budget_usd: float) -> bool:
        amount = to_micro(amount_usd)
        committed = self._spend.get(key_id, 0) + self._held.get(key_id, 0)
        if committed + amount > to_micro(budget_usd):
            return False
        self._held[key_id] = self._held.get(key_id, 0) + amount
        return True

    async def settle(self, key_id: str, reserved_usd: float, actual_usd: float) -> None:
        self._held[key_id] = max(0, self._held.get(key_id, 0) - to_micro(reserved_usd))
        self._spend[key_id] = self._spend.get(key_id, 0) + to_micro(actual_usd)

    async def spend(self, key_id: str) -> float:
        return self._spend.get(key_id, 0) / 1_000_000

    async def put_decision(self, decision_id: str, payload: str, ttl_s: float) -> None:
        now = time.monotonic()
        if len(self._decisions) > 100_000:  # bound memory: drop the expired ones
            self._decisions = {k: v for k, v in self._decisions.items() if v[0] > now}
        self._decisions[decision_id] = (now + ttl_s, payload)

    async def get_decision(self, decision_id: str) -> str | None:
        expires, payload = self._decisions.get(decision_id, (0.0, ""))
        return payload if expires > time.monotonic() else None

    async def add_feedback(self, decision_id: str, record: str) -> bool:
        if decision_id in self._seen:
            return False
        self._seen.add(decision_id)
        self._feedback.append(record)
        return True

    async def feedback_since(self, offset: int) -> tuple[int, list[str]]:
        return self._epoch, self._feedback[offset:]

    async def reset_feedback(self) -> None:
        self._feedback, self._seen = [], set()
        self._epoch += 1

    async def cache_get(self, key: str) -> str | None:
        expires, value = self._cache.get(key, (0.0, ""))
        return value if expires > time.monotonic() else None

    async def cache_set(self, key: str, value: str, ttl_s: float) -> None:
        now = time.monotonic()
        if len(self._cache) > 10_000:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
        self._cache[key] = (now + ttl_s, value)

    async def semantic_add(self, scope: str, entry: str, ttl_s: float, max_entries: int) -> None:
        _, entries = self._semantic.get(scope, (0.0, []))
        self._semantic[scope] = (time.monotonic() + ttl_s, [entry, *entries][:max_entries])

    async def semantic_entries(self, scope: str) -> list[str]:
        expires, entries = self._semantic.get(scope, (0.0, []))
        return entries if expires > time.monotonic() else []

    async def mark_open(self, model: str, seconds: float) -> None:
        self._open[model] = time.monotonic() + seconds

    async def open_models(self) -> dict[str, float]:
        now = time.monotonic()
        return {m: until - now for m, until in self._open.items() if until > now}

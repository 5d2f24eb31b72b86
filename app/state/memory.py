"""The in-memory store: one process, the same behaviour as ``RedisStore``.

No method awaits between reading and writing, so on one event loop each call is atomic, as a Lua
script is in Redis. Records are kept as JSON, so what comes back is what Redis would return.
Expired entries are dropped when read, and from the old end of a table when it is written.
Every table a caller can grow is capped at ``max_entries`` (decisions and conversation memory;
cached replies; usage buckets; semantic-cache vectors over all scopes), the oldest written going
first; the feedback log keeps its newest ``max_feedback`` records.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict, deque
from typing import TypeVar

import numpy as np

from app.state import (
    HOLD_TTL_S,
    JSON_DICT,
    MAX_ENTRIES,
    MAX_FEEDBACK,
    MICRO,
    ApiKeyRecord,
    FeedbackPage,
    JsonDict,
    RateDecision,
    StateStore,
    key_hash,
    to_micro,
)

V = TypeVar("V")
Table = OrderedDict[str, tuple[float, V]]
Scope = dict[str, tuple[float, np.ndarray]]


def _live(table: Table[V], key: str) -> V | None:
    """``table[key]``'s value unless it expired (then it is dropped)."""
    expires, value = table.get(key, (0.0, None))
    if value is None or expires > time.monotonic():
        return value
    del table[key]
    return None


def _put(table: Table[V], key: str, value: V, ttl_s: float, cap: int) -> None:
    """Write ``key`` as the newest entry; drop expired and over-the-cap ones from the old end."""
    now = time.monotonic()
    table.pop(key, None)
    table[key] = (now + ttl_s, value)
    while len(table) > cap:
        table.popitem(last=False)
    while table:
        oldest = next(iter(table))
        if table[oldest][0] > now:
            break
        del table[oldest]


class MemoryStore(StateStore):
    def __init__(self, *, max_entries: int = MAX_ENTRIES, max_feedback: int = MAX_FEEDBACK) -> None:
        self.max_entries = max_entries
        self.max_feedback = max_feedback
        self._keys: dict[str, ApiKeyRecord] = {}
        self._by_hash: dict[str, str] = {}
        self._windows: dict[str, tuple[float, int]] = {}
        self._spend: dict[str, int] = {}
        self._held: dict[str, tuple[float, int]] = {}
        self._decisions: Table[bytes] = OrderedDict()
        self._feedback: deque[tuple[str, bytes]] = deque()  # (decision id, record), oldest first
        self._feedback_end = 0
        self._epoch = 0
        self._seen: set[str] = set()
        self._version = 0
        self._cache: Table[bytes] = OrderedDict()
        self._semantic: OrderedDict[str, Scope] = OrderedDict()  # least recently added first
        self._semantic_count = 0
        self._open: dict[str, float] = {}
        self._log: deque[bytes] = deque()  # newest first
        self._log_until = 0.0
        self._usage: Table[dict[str, int]] = OrderedDict()
        self._sessions: Table[bool] = OrderedDict()

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None

    async def create_key(self, record: ApiKeyRecord, key: str) -> None:
        self._keys[record.id] = record.model_copy(update={"spend_usd": 0.0})
        self._by_hash[key_hash(key)] = record.id

    def _record(self, key_id: str | None) -> ApiKeyRecord | None:
        record = self._keys.get(key_id) if key_id else None
        if record is None:
            return None
        return record.model_copy(update={"spend_usd": self._spend.get(record.id, 0) / MICRO})

    async def lookup_key(self, key: str) -> ApiKeyRecord | None:
        return self._record(self._by_hash.get(key_hash(key)))

    async def get_key(self, key_id: str) -> ApiKeyRecord | None:
        return self._record(key_id)

    async def list_keys(self) -> list[ApiKeyRecord]:
        records = [self._record(key_id) for key_id in self._keys]
        return sorted((r for r in records if r), key=lambda r: r.created)

    async def delete_key(self, key_id: str) -> bool:
        self._by_hash = {h: k for h, k in self._by_hash.items() if k != key_id}
        self._spend.pop(key_id, None)
        self._held.pop(key_id, None)
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

    def _holding(self, key_id: str) -> int:
        expires, held = self._held.get(key_id, (0.0, 0))
        return held if expires > time.monotonic() else 0

    async def reserve(self, key_id: str, amount_usd: float, budget_usd: float) -> bool:
        amount, held = to_micro(amount_usd), self._holding(key_id)
        if self._spend.get(key_id, 0) + held + amount > to_micro(budget_usd):
            return False
        self._held[key_id] = (time.monotonic() + HOLD_TTL_S, held + amount)
        return True

    async def settle(self, key_id: str, reserved_usd: float, actual_usd: float) -> None:
        held = self._holding(key_id) - to_micro(reserved_usd)
        if held > 0:
            self._held[key_id] = (time.monotonic() + HOLD_TTL_S, held)
        else:
            self._held.pop(key_id, None)
        self._spend[key_id] = self._spend.get(key_id, 0) + to_micro(actual_usd)

    async def spend(self, key_id: str) -> float:
        return self._spend.get(key_id, 0) / MICRO

    async def put_decision(self, decision_id: str, payload: JsonDict, ttl_s: float) -> None:
        _put(self._decisions, decision_id, JSON_DICT.dump_json(payload), ttl_s, self.max_entries)

    async def get_decision(self, decision_id: str) -> JsonDict | None:
        raw = _live(self._decisions, decision_id)
        return JSON_DICT.validate_json(raw) if raw is not None else None

    async def append_feedback(self, record: JsonDict) -> bool:
        data, decision_id = JSON_DICT.dump_json(record), str(record["decision_id"])
        if decision_id in self._seen:
            return False
        self._seen.add(decision_id)
        self._feedback.append((decision_id, data))
        self._feedback_end += 1
        self._version += 1
        while len(self._feedback) > self.max_feedback:
            self._seen.discard(self._feedback.popleft()[0])
        return True

    async def load_feedback(self) -> list[JsonDict]:
        return [JSON_DICT.validate_json(raw) for _, raw in self._feedback]

    async def read_feedback(self, after: int, limit: int) -> FeedbackPage:
        first = self._feedback_end - len(self._feedback)
        start = min(max(after, first), self._feedback_end)
        picked = itertools.islice(self._feedback, start - first, start - first + max(0, limit))
        records = [JSON_DICT.validate_json(raw) for _, raw in picked]
        return FeedbackPage(self._epoch, start, self._feedback_end, records)

    async def clear_feedback(self) -> None:
        self._feedback, self._seen = deque(), set()
        self._feedback_end = 0
        self._epoch += 1
        self._version += 1

    async def feedback_version(self) -> int:
        return self._version

    async def log_decision(self, entry: JsonDict, max_entries: int, ttl_s: float) -> None:
        if self._log_until <= time.monotonic():
            self._log.clear()
        self._log.appendleft(JSON_DICT.dump_json(entry))
        while len(self._log) > max_entries:
            self._log.pop()
        self._log_until = time.monotonic() + ttl_s

    async def recent_decisions(self, limit: int) -> list[JsonDict]:
        if self._log_until <= time.monotonic():
            self._log.clear()
        return [JSON_DICT.validate_json(raw) for raw in list(self._log)[: max(0, limit)]]

    async def add_usage(self, bucket: int, counts: dict[str, int], ttl_s: float) -> None:
        current = _live(self._usage, str(bucket)) or {}
        for field, amount in counts.items():
            current[field] = current.get(field, 0) + amount
        _put(self._usage, str(bucket), current, ttl_s, self.max_entries)

    async def usage(self, buckets: list[int]) -> dict[int, dict[str, int]]:
        found = {b: _live(self._usage, str(b)) for b in buckets}
        return {b: dict(counts) for b, counts in found.items() if counts}

    async def cache_get(self, key: str) -> bytes | None:
        return _live(self._cache, key)

    async def cache_set(self, key: str, value: bytes, ttl_s: float) -> None:
        _put(self._cache, key, bytes(value), ttl_s, self.max_entries)

    async def semantic_add(
        self, tenant: str, key: str, embedding: np.ndarray, ttl_s: float, max_entries: int
    ) -> None:
        now = time.monotonic()
        entries = self._semantic.pop(tenant, {})
        self._semantic_count -= len(entries)
        entries.pop(key, None)  # re-adding moves it to the newest end
        entries[key] = (now + ttl_s, np.array(embedding, dtype=np.float32))
        live = sorted((e for e in entries.items() if e[1][0] > now), key=lambda e: e[1][0])
        kept = dict(live[-max_entries:] if max_entries > 0 else [])
        if kept:
            self._semantic[tenant] = kept  # the most recently added scope is last
            self._semantic_count += len(kept)
        while self._semantic and (
            self._semantic_count > self.max_entries or self._expired(next(iter(self._semantic)))
        ):
            self._semantic_count -= len(self._semantic.popitem(last=False)[1])

    def _expired(self, tenant: str) -> bool:
        now = time.monotonic()
        return all(expires <= now for expires, _ in self._semantic[tenant].values())

    async def semantic_entries(self, tenant: str) -> list[tuple[str, np.ndarray]]:
        now = time.monotonic()
        entries = self._semantic.get(tenant, {})
        live = sorted((e for e in entries.items() if e[1][0] > now), key=lambda e: -e[1][0])
        return [(key, vector.copy()) for key, (_, vector) in live]

    async def add_session(self, session_id: str, ttl_s: float) -> None:
        _put(self._sessions, key_hash(session_id), True, ttl_s, self.max_entries)

    async def has_session(self, session_id: str) -> bool:
        return _live(self._sessions, key_hash(session_id)) is not None

    async def drop_session(self, session_id: str) -> bool:
        alive = _live(self._sessions, key_hash(session_id)) is not None
        self._sessions.pop(key_hash(session_id), None)
        return alive

    async def mark_open(self, model: str, seconds: float) -> None:
        self._open[model] = time.monotonic() + seconds

    async def open_models(self) -> dict[str, float]:
        now = time.monotonic()
        return {m: until - now for m, until in self._open.items() if until > now}

"""Shared state behind one ``StateStore``: keys, limits, budgets, feedback, cache, breakers.

Two stores behave the same: ``MemoryStore`` (one process; the default with no Redis URL) and
``RedisStore`` (every worker and replica shares it; each check-and-update is one Lua script, so
limits, budgets and breakers hold under concurrency across processes). ``open_store`` picks one.

What is kept:

- API keys, hashed: only ``sha256(key)`` is stored; the plaintext exists once, in the reply to
  ``issue_key``. Money is integer micro-USD (spend, and holds for calls in flight) so many small
  additions never drift.
- Rate limits: a fixed window per bucket (``"<key id>:requests"``), started by its first hit.
- Feedback: an append-only log, one record per ``decision_id``, durable before ``append_feedback``
  returns (with Redis, as durable as Redis' own ``appendfsync``), and a version that changes on
  every append or clear. It keeps its newest ``max_feedback`` records (the decisions of dropped
  ones may get feedback again). Workers read it incrementally (``read_feedback``: what came
  after the last position they saw); its epoch changes when an admin reset clears it.
- The decision log (the console's live view): the newest entries of every worker's finished
  calls in one capped list, and integer usage counters per time bucket, both with TTLs.
- Console sessions: the hash of each open session's id, with the session's expiry as TTL, so a
  logout (``drop_session``) ends that session on every worker at once.
- Decisions, cache entries and semantic-cache vectors with TTLs (in memory, also capped at
  ``max_entries`` per table, oldest dropped first); open circuit breakers, as
  markers that expire with the cooldown (each worker counts failures itself and publishes the
  breakers it opens, ``app.gateway.breaker_sync``, so the request path does no store I/O for them).

Faults: when Redis is unreachable every operation raises ``StateUnavailable`` (503) within about
a second (0.5 s socket and connect timeouts, one immediate retry on a fresh connection, no retry
on timeouts), and ``ping`` returns False. The store object stays usable: redis-py reconnects by
itself once Redis is back. Whether a request is then served without limits or refused is the
caller's choice (``SWITCHBOARD_FAIL_OPEN``). The retry means a reply lost after Redis executed a
command can apply it twice; every such double counts against the caller (more spend, more hits),
never for them. Without Redis persistence (``appendonly yes``) a Redis restart loses everything.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from pydantic import BaseModel, Field, JsonValue, TypeAdapter

from app.errors import SwitchboardError

JsonDict = dict[str, JsonValue]

MICRO = 1_000_000
KEY_PREFIX = "sk-sb-"
DEFAULT_PREFIX = "sb:"
DECISION_TTL_S = 24 * 3600.0
HOLD_TTL_S = 900.0
MAX_FEEDBACK = 50_000
"""Feedback records kept by default (about 2.5 KB each); ``SWITCHBOARD_FEEDBACK_MAX_POINTS``."""
MAX_ENTRIES = 20_000
"""In-memory entries kept per table by default; ``SWITCHBOARD_MEMORY_MAX_ENTRIES``."""
"""Budget holds of a key vanish after this long without a reserve or settle on it, so a worker
that dies mid-call cannot shrink a budget for ever."""

JSON_DICT: TypeAdapter[JsonDict] = TypeAdapter(JsonDict)


class StateUnavailable(SwitchboardError):
    """The shared store (Redis) cannot be reached; the caller fails open or closed."""

    status_code = 503
    error_type = "api_error"
    code = "state_unavailable"


class ApiKeyRecord(BaseModel):
    id: str
    name: str
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    budget_usd: float | None = Field(default=None, ge=0)
    created: float = Field(default_factory=time.time)
    spend_usd: float = Field(default=0.0, ge=0, description="filled in by the store on reads")


@dataclass(frozen=True)
class FeedbackPage:
    """Part of the feedback log: ``records`` are at positions ``start`` .. ``start + len - 1``.

    Positions count records appended since the log's ``epoch`` began; ``end`` is the position
    the next record will take. A reader that saw up to ``p`` asks for ``read_feedback(p)``;
    ``start > p`` means older records were dropped (the log keeps its newest), and an epoch it
    has not seen, or an ``end`` below ``p``, means the log started again (a reset; a Redis
    that lost its data).
    """

    epoch: int
    start: int
    end: int
    records: list[JsonDict]


@dataclass(frozen=True)
class RateDecision:
    """One rate-limit check: what the ``x-ratelimit-*`` headers and ``Retry-After`` need."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: float

    @property
    def retry_after(self) -> float:
        """Seconds until the window resets (0 when allowed)."""
        return 0.0 if self.allowed else max(self.reset_s, 0.001)


def new_key() -> tuple[str, str]:
    """A fresh (id, plaintext key); only the hash of the key is ever stored."""
    return "key_" + secrets.token_hex(8), KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def to_micro(usd: float) -> int:
    return round(usd * MICRO)


class StateStore(Protocol):
    """What Switchboard keeps between requests and shares between workers.

    Both stores subclass this protocol to inherit ``issue_key`` and the legacy feedback methods.
    """

    async def ping(self) -> bool: ...
    async def aclose(self) -> None: ...

    async def create_key(self, record: ApiKeyRecord, key: str) -> None:
        """Store ``record`` under the hash of ``key`` (``issue_key`` makes both)."""
        ...

    async def lookup_key(self, key: str) -> ApiKeyRecord | None: ...
    async def get_key(self, key_id: str) -> ApiKeyRecord | None: ...
    async def list_keys(self) -> list[ApiKeyRecord]: ...

    async def delete_key(self, key_id: str) -> bool:
        """Revoke: the key stops working at once; False if there was no such key."""
        ...

    async def hit(self, bucket: str, amount: int, limit: int, window_s: float) -> RateDecision:
        """Count ``amount`` against ``limit`` per window in ``bucket``, unless it would exceed."""
        ...

    async def reserve(self, key_id: str, amount_usd: float, budget_usd: float) -> bool:
        """Hold ``amount_usd`` for a call in flight, if spend + holds + it fit the budget."""
        ...

    async def settle(self, key_id: str, reserved_usd: float, actual_usd: float) -> None:
        """Release a hold and record the call's actual spend."""
        ...

    async def spend(self, key_id: str) -> float: ...

    async def put_decision(self, decision_id: str, payload: JsonDict, ttl_s: float) -> None: ...
    async def get_decision(self, decision_id: str) -> JsonDict | None: ...

    async def append_feedback(self, record: JsonDict) -> bool:
        """Persist ``record`` (it must carry a ``decision_id``); False if that decision had one."""
        ...

    async def load_feedback(self) -> list[JsonDict]: ...

    async def read_feedback(self, after: int, limit: int) -> FeedbackPage:
        """Up to ``limit`` records from position ``after`` on (see ``FeedbackPage``)."""
        ...

    async def clear_feedback(self) -> None: ...

    async def feedback_version(self) -> int:
        """Changes on every append and clear: reload when it differs from the last one seen."""
        ...

    async def log_decision(self, entry: JsonDict, max_entries: int, ttl_s: float) -> None:
        """Add ``entry`` to the decision log, keeping the newest ``max_entries``.

        The whole log expires ``ttl_s`` after the last entry.
        """
        ...

    async def recent_decisions(self, limit: int) -> list[JsonDict]:
        """The newest ``limit`` entries of the decision log, newest first."""
        ...

    async def add_usage(self, bucket: int, counts: dict[str, int], ttl_s: float) -> None:
        """Add ``counts`` (field -> integer) to time bucket ``bucket``, which lives ``ttl_s``."""
        ...

    async def usage(self, buckets: list[int]) -> dict[int, dict[str, int]]:
        """The counters of each of ``buckets`` that has any."""
        ...

    async def cache_get(self, key: str) -> bytes | None: ...
    async def cache_set(self, key: str, value: bytes, ttl_s: float) -> None: ...

    async def semantic_add(
        self, tenant: str, key: str, embedding: np.ndarray, ttl_s: float, max_entries: int
    ) -> None:
        """Remember ``key``'s embedding for ``tenant``; the oldest go beyond ``max_entries``."""
        ...

    async def semantic_entries(self, tenant: str) -> list[tuple[str, np.ndarray]]:
        """The tenant's live (key, float32 embedding) pairs, newest first."""
        ...

    async def add_session(self, session_id: str, ttl_s: float) -> None:
        """Open a console session for ``ttl_s`` seconds (only a hash of the id is stored)."""
        ...

    async def has_session(self, session_id: str) -> bool:
        """Whether the session is open: added, not yet expired, not dropped."""
        ...

    async def drop_session(self, session_id: str) -> bool:
        """End a session (logout); False if it was not open."""
        ...

    async def mark_open(self, model: str, seconds: float) -> None:
        """Publish that ``model``'s breaker is open for ``seconds`` (``gateway.breaker_sync``)."""
        ...

    async def open_models(self) -> dict[str, float]:
        """Models some worker marked open, with the seconds left (``app.gateway.breaker_sync``)."""
        ...

    async def issue_key(
        self,
        name: str,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        budget_usd: float | None = None,
    ) -> tuple[ApiKeyRecord, str]:
        """Create a key; the plaintext is in this reply only, never stored."""
        key_id, key = new_key()
        record = ApiKeyRecord(id=key_id, name=name, rpm=rpm, tpm=tpm, budget_usd=budget_usd)
        await self.create_key(record, key)
        return record, key


def open_store(
    redis_url: str | None,
    prefix: str = DEFAULT_PREFIX,
    *,
    max_entries: int = MAX_ENTRIES,
    max_feedback: int = MAX_FEEDBACK,
) -> StateStore:
    """``RedisStore`` for a URL (keys under ``prefix``), else a process-local ``MemoryStore``.

    ``max_feedback`` bounds the feedback log in both; ``max_entries`` each in-memory table (in
    Redis, TTLs and Redis' own ``maxmemory`` bound them).
    """
    if not redis_url:
        from app.state.memory import MemoryStore

        return MemoryStore(max_entries=max_entries, max_feedback=max_feedback)
    from app.state.redis_store import RedisStore

    return RedisStore(redis_url, prefix=prefix, max_feedback=max_feedback)

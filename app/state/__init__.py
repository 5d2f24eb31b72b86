"""Shared state: API keys, rate limits and budgets, behind one ``StateStore`` protocol.

Two stores behave the same: ``MemoryStore`` (one process, the embedded default) and
``RedisStore`` (several workers or replicas; every check-and-update is one Lua script, so limits
and budgets hold under concurrency across processes). Money is kept in integer micro-dollars so
that many small additions never drift.

When Redis is unreachable every operation raises ``StateUnavailable`` quickly (short socket
timeouts); redis-py reconnects by itself once Redis is back. What a request does then is the
caller's choice (``SWITCHBOARD_FAIL_OPEN``): serve without limits, or refuse with 503.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, Field

from app.errors import SwitchboardError

MICRO = 1_000_000
KEY_PREFIX = "sk-sb-"


class StateUnavailable(SwitchboardError):
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


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: float

    @property
    def retry_after(self) -> float:
        return max(self.reset_s, 0.001)


def new_key() -> tuple[str, str]:
    """A fresh (id, plaintext key); only the hash of the key is ever stored."""
    return "key_" + secrets.token_hex(8), KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def to_micro(usd: float) -> int:
    return round(usd * MICRO)


class StateStore(Protocol):
    async def ping(self) -> bool: ...
    async def aclose(self) -> None: ...

    async def create_key(self, record: ApiKeyRecord, key: str) -> None: ...
    async def lookup_key(self, key: str) -> ApiKeyRecord | None: ...
    async def get_key(self, key_id: str) -> ApiKeyRecord | None: ...
    async def list_keys(self) -> list[ApiKeyRecord]: ...
    async def delete_key(self, key_id: str) -> bool: ...

    async def hit(self, bucket: str, amount: int, limit: int, window_s: float) -> RateDecision:
        """Count ``amount`` against ``limit`` per window in ``bucket``, unless it would exceed."""
        ...

    async def reserve(self, key_id: str, amount_usd: float, budget_usd: float) -> bool:
        """Hold ``amount_usd`` of the budget for a call in flight, if spend + holds allow it."""
        ...

    async def settle(self, key_id: str, reserved_usd: float, actual_usd: float) -> None:
        """Release a hold and record the call's actual spend."""
        ...

    async def spend(self, key_id: str) -> float: ...

    async def put_decision(self, decision_id: str, payload: str, ttl_s: float) -> None: ...
    async def get_decision(self, decision_id: str) -> str | None: ...

    async def add_feedback(self, decision_id: str, record: str) -> bool:
        """Persist one feedback record per decision (False: this decision already had one)."""
        ...

    async def feedback_since(self, offset: int) -> tuple[int, list[str]]:
        """The reset epoch, and the feedback records from ``offset`` on, oldest first."""
        ...

    async def reset_feedback(self) -> None:
        """Forget all feedback and start a new epoch (every worker resets when it sees it)."""
        ...

    async def cache_get(self, key: str) -> str | None: ...
    async def cache_set(self, key: str, value: str, ttl_s: float) -> None: ...

    async def semantic_add(self, scope: str, entry: str, ttl_s: float, max_entries: int) -> None:
        """Remember a cached prompt (its JSON entry) under ``scope``, newest first, bounded."""
        ...

    async def semantic_entries(self, scope: str) -> list[str]: ...

    async def mark_open(self, model: str, seconds: float) -> None:
        """Tell every worker that ``model``'s circuit breaker is open for ``seconds``."""
        ...

    async def open_models(self) -> dict[str, float]:
        """Models whose breaker some worker opened, with the seconds left."""
        ...


def open_store(redis_url: str | None) -> StateStore:
    if not redis_url:
        from app.state.memory import MemoryStore

        return MemoryStore()
    from app.state.redis_store import RedisStore

    return RedisStore(redis_url)

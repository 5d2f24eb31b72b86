"""The Redis store: shared by every worker; each check-and-update is one Lua script.

Keys (under a prefix, default ``sb:``): ``key:<id>`` (hash of the record), ``keyhash:<sha256>``
-> id, ``rl:<bucket>`` (fixed-window counters with expiry), ``spend:<id>`` and ``held:<id>``
(integer micro-USD).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from app.state import ApiKeyRecord, RateDecision, StateUnavailable, key_hash, to_micro

HIT = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount, limit, window_ms = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = window_ms end
if used + amount > limit then return {0, limit - used, ttl} end
local now = redis.call('INCRBY', KEYS[1], amount)
if now == amount then redis.call('PEXPIRE', KEYS[1], window_ms) end
return {1, limit - now, ttl}
"""

RESERVE = """
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
local held = tonumber(redis.call('GET', KEYS[2]) or '0')
if spent + held + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return 0 end
redis.call('INCRBY', KEYS[2], ARGV[1])
return 1
"""

SETTLE = """
local held = redis.call('DECRBY', KEYS[2], ARGV[1])
if held < 0 then redis.call('SET', KEYS[2], 0) end
redis.call('INCRBY', KEYS[1], ARGV[2])
return 1
"""


@contextlib.contextmanager
def _shared() -> Iterator[None]:
    """Any Redis failure becomes one typed error (the message never names the URL)."""
    try:
        yield
    except RedisError as exc:
        raise StateUnavailable("shared state (Redis) is unavailable") from exc


FEEDBACK = """
if redis.call('SET', KEYS[1], 1, 'NX') == false then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
return 1
"""

RESET = """
redis.call('DEL', KEYS[2], KEYS[3])
return redis.call('INCR', KEYS[1])
"""


class RedisStore:
    def __init__(self, url: str, prefix: str = "sb:") -> None:
        self.prefix = prefix
        self._redis = aioredis.from_url(
            url, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=5,
            # one immediate retry on a fresh connection: a restarted Redis leaves stale ones
            retry=Retry(NoBackoff(), 1), retry_on_error=[RedisConnectionError],
            decode_responses=True,
        )  # fmt: skip
        self._hit = self._redis.register_script(HIT)
        self._reserve = self._redis.register_script(RESERVE)
        self._settle = self._redis.register_script(SETTLE)
        self._feedback = self._redis.register_script(FEEDBACK)
        self._reset = self._redis.register_script(RESET)

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except RedisError:
            return False

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def create_key(self, record: ApiKeyRecord, key: str) -> None:
        with _shared():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(self._k("key", record.id), record.model_dump_json())
                pipe.set(self._k("keyhash", key_hash(key)), record.id)
                await pipe.execute()

    async def lookup_key(self, key: str) -> ApiKeyRecord | None:
        with _shared():
            key_id = await self._redis.get(self._k("keyhash", key_hash(key)))
        return await self.get_key(str(key_id)) if key_id else None

    async def get_key(self, key_id: str) -> ApiKeyRecord | None:
        with _shared():
            raw = await self._redis.get(self._k("key", key_id))
        return ApiKeyRecord.model_validate_json(raw) if raw else None

    async def list_keys(self) -> list[ApiKeyRecord]:
        with _shared():
            names = [n async for n in self._redis.scan_iter(self._k("key", "*"))]
            raws = await self._redis.mget(names) if names else []
        records = [ApiKeyRecord.model_validate_json(r) for r in raws if r]
        return sorted(records, key=lambda r: r.created)

    async def delete_key(self, key_id: str) -> bool:
        with _shared():
            names = [n async for n in self._redis.scan_iter(self._k("keyhash", "*"))]
            owners = await self._redis.mget(names) if names else []
            doomed = [n for n, owner in zip(names, owners, strict=True) if owner == key_id]
            return bool(await self._redis.delete(self._k("key", key_id), *doomed))

    async def hit(self, bucket: str, amount: int, limit: int, window_s: float) -> RateDecision:
        with _shared():
            allowed, remaining, ttl = await self._hit(
                keys=[self._k("rl", bucket)], args=[amount, limit, int(window_s * 1000)]
            )
        return RateDecision(bool(allowed), limit, max(0, int(remaining)), int(ttl) / 1000)

    async def reserve(self, key_id: str, amount_usd: float, budget_usd: float) -> bool:
        with _shared():
            ok = await self._reserve(
                keys=[self._k("spend", key_id), self._k("held", key_id)],
                args=[to_micro(amount_usd), to_micro(budget_usd)],
            )
        return bool(ok)

    async def settle(self, key_id: str, reserved_usd: float, actual_usd: float) -> None:
        with _shared():
            await self._settle(
                keys=[self._k("spend", key_id), self._k("held", key_id)],
                args=[to_micro(reserved_usd), to_micro(actual_usd)],
            )

    async def spend(self, key_id: str) -> float:
        with _shared():
            raw = await self._redis.get(self._k("spend", key_id))
        return int(raw or 0) / 1_000_000

    async def put_decision(self, decision_id: str, payload: str, ttl_s: float) -> None:
        with _shared():
            await self._redis.set(self._k("decision", decision_id), payload, px=int(ttl_s * 1000))

    async def get_decision(self, decision_id: str) -> str | None:
        with _shared():
            payload = await self._redis.get(self._k("decision", decision_id))
        return str(payload) if payload else None

    async def add_feedback(self, decision_id: str, record: str) -> bool:
        with _shared():
            added = await self._feedback(
                keys=[self._k("fbseen", decision_id), self._k("feedback")], args=[record]
            )
        return bool(added)

    async def feedback_since(self, offset: int) -> tuple[int, list[str]]:
        with _shared():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.get(self._k("fbepoch"))
                pipe.lrange(self._k("feedback"), offset, -1)
                epoch, records = await pipe.execute()
        return int(epoch or 0), [str(r) for r in records]

    async def reset_feedback(self) -> None:
        with _shared():
            seen = [n async for n in self._redis.scan_iter(self._k("fbseen", "*"))]
            await self._reset(
                keys=[self._k("fbepoch"), self._k("feedback"), self._k("fbseen", "-")]
            )
            if seen:
                await self._redis.delete(*seen)

    async def cache_get(self, key: str) -> str | None:
        with _shared():
            value = await self._redis.get(self._k("cache", key))
        return str(value) if value else None

    async def cache_set(self, key: str, value: str, ttl_s: float) -> None:
        with _shared():
            await self._redis.set(self._k("cache", key), value, px=int(ttl_s * 1000))

    async def semantic_add(self, scope: str, entry: str, ttl_s: float, max_entries: int) -> None:
        name = self._k("semantic", scope)
        with _shared():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.lpush(name, entry)
                pipe.ltrim(name, 0, max_entries - 1)
                pipe.pexpire(name, int(ttl_s * 1000))
                await pipe.execute()

    async def semantic_entries(self, scope: str) -> list[str]:
        with _shared():
            entries = await self._redis.lrange(self._k("semantic", scope), 0, -1)
        return [str(e) for e in entries]

    async def mark_open(self, model: str, seconds: float) -> None:
        with _shared():
            await self._redis.set(self._k("breaker", model), 1, px=max(1, int(seconds * 1000)))

    async def open_models(self) -> dict[str, float]:
        prefix = self._k("breaker", "")
        with _shared():
            names = [str(n) async for n in self._redis.scan_iter(prefix + "*")]
            ttls = [await self._redis.pttl(n) for n in names]
        return {n.removeprefix(prefix): t / 1000 for n, t in zip(names, ttls, strict=True) if t > 0}

"""The Redis store: shared by every worker; each check-and-update is one Lua script (``lua``).

Keys, under a prefix (default ``sb:``)::

    key:<id>            hash: record (JSON), sha256 of the key     keys   set of key ids
    keyhash:<sha256>    -> key id                                  rl:<bucket>   window counter
    spend:<id>          micro-USD spent      held:<id>  micro-USD held by calls in flight
    decision:<id>       JSON, with TTL       cache:<key>  bytes, with TTL
    fb:log              list of feedback JSON, the newest kept; fb:seen  their decision ids
    fb:version          +1 per change; fb:end  records appended this epoch; fb:epoch  +1 per reset
    sem:v:<tenant>      hash key -> float32 bytes; sem:t:<tenant>  zset key by expiry (ms)
    breaker:<model>     open marker, with the cooldown as TTL
    session:<sha256>    an open console session, with its expiry as TTL
    decisions:log       list of decision-log JSON, newest first, capped, with TTL
    usage:<bucket>      hash: integer counters of one time bucket, with TTL

Every ``RedisError`` becomes ``StateUnavailable`` (see ``app.state``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import cast

import numpy as np
from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from app.state import (
    DEFAULT_PREFIX,
    HOLD_TTL_S,
    JSON_DICT,
    MAX_FEEDBACK,
    MICRO,
    ApiKeyRecord,
    FeedbackPage,
    JsonDict,
    RateDecision,
    StateStore,
    StateUnavailable,
    key_hash,
    lua,
    to_micro,
)

FEEDBACK_CHUNK = 1000
POOL_SIZE = 8
"""Connections per worker process. A burst of calls waits for a free one (a command takes well
under a millisecond) rather than opening a connection, and a handshake, per call in flight: a
burst of simultaneous handshakes on a busy machine can run past the connect timeout."""
POOL_WAIT_S = 2.0  # the longest a call waits for a free connection before StateUnavailable


@contextlib.contextmanager
def _shared() -> Iterator[None]:
    """Any Redis failure becomes one typed error (the message never names the URL)."""
    try:
        yield
    except RedisError as exc:
        raise StateUnavailable(
            f"shared state (Redis) is unavailable: {type(exc).__name__}"
        ) from exc


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisStore(StateStore):
    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout_s: float = 0.5,
        max_feedback: int = MAX_FEEDBACK,
    ) -> None:
        self.prefix = prefix
        self.max_feedback = max_feedback
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=POOL_SIZE,
            timeout=POOL_WAIT_S,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            # one immediate retry, on connection errors only: after a Redis restart the pooled
            # connections are dead and the first command must not fail for that alone
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            health_check_interval=2,
        )
        self._redis = aioredis.Redis.from_pool(pool)
        self._scripts = {
            name: self._redis.register_script(getattr(lua, name))
            for name in ("LOOKUP_KEY", "DELETE_KEY", "HIT", "RESERVE", "SETTLE",
                         "APPEND_FEEDBACK", "CLEAR_FEEDBACK", "READ_FEEDBACK", "SEMANTIC_ADD",
                         "SEMANTIC_ENTRIES")
        }  # fmt: skip

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def _run(self, script: str, keys: list[str], *args: str | int | bytes) -> object:
        with _shared():
            return cast(object, await self._scripts[script](keys=keys, args=list(args)))

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except RedisError:
            return False

    async def aclose(self) -> None:
        await self._redis.aclose()

    # --- API keys ---------------------------------------------------------------------------

    async def create_key(self, record: ApiKeyRecord, key: str) -> None:
        sha = key_hash(key)
        stored = record.model_dump_json(exclude={"spend_usd"})
        with _shared():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(self._k("key", record.id), mapping={"record": stored, "sha256": sha})
                pipe.set(self._k("keyhash", sha), record.id)
                pipe.sadd(self._k("keys"), record.id)
                await pipe.execute()

    async def lookup_key(self, key: str) -> ApiKeyRecord | None:
        found = await self._run("LOOKUP_KEY", [self._k("keyhash", key_hash(key))], self.prefix)
        if not isinstance(found, list):
            return None
        return ApiKeyRecord.model_validate_json(found[0]).model_copy(
            update={"spend_usd": int(found[1]) / MICRO}
        )

    async def _records(self, key_ids: list[str]) -> list[ApiKeyRecord]:
        with _shared():
            async with self._redis.pipeline(transaction=False) as pipe:
                for key_id in key_ids:
                    pipe.hget(self._k("key", key_id), "record")
                    pipe.get(self._k("spend", key_id))
                replies = await pipe.execute()
        records = []
        for raw, spent in zip(replies[::2], replies[1::2], strict=True):
            if raw:
                record = ApiKeyRecord.model_validate_json(raw)
                records.append(record.model_copy(update={"spend_usd": int(spent or 0) / MICRO}))
        return records

    async def get_key(self, key_id: str) -> ApiKeyRecord | None:
        records = await self._records([key_id])
        return records[0] if records else None

    async def list_keys(self) -> list[ApiKeyRecord]:
        with _shared():
            members = cast(set[bytes], await self._redis.smembers(self._k("keys")))
        key_ids = [m.decode() for m in members]
        return sorted(await self._records(key_ids), key=lambda r: r.created)

    async def delete_key(self, key_id: str) -> bool:
        keys = [self._k(kind, key_id) for kind in ("key", "spend", "held")] + [self._k("keys")]
        return bool(await self._run("DELETE_KEY", keys, key_id, self.prefix))

    # --- rate limits and budgets ------------------------------------------------------------

    async def hit(self, bucket: str, amount: int, limit: int, window_s: float) -> RateDecision:
        reply = await self._run("HIT", [self._k("rl", bucket)], amount, limit, _ms(window_s))
        allowed, used, reset_ms = cast(list[int], reply)
        return RateDecision(bool(allowed), limit, max(0, limit - int(used)), int(reset_ms) / 1000)

    def _money(self, key_id: str) -> list[str]:
        return [self._k("spend", key_id), self._k("held", key_id)]

    async def reserve(self, key_id: str, amount_usd: float, budget_usd: float) -> bool:
        args = (to_micro(amount_usd), to_micro(budget_usd), _ms(HOLD_TTL_S))
        return bool(await self._run("RESERVE", self._money(key_id), *args))

    async def settle(self, key_id: str, reserved_usd: float, actual_usd: float) -> None:
        args = (to_micro(reserved_usd), to_micro(actual_usd), _ms(HOLD_TTL_S))
        await self._run("SETTLE", self._money(key_id), *args)

    async def spend(self, key_id: str) -> float:
        with _shared():
            raw = await self._redis.get(self._k("spend", key_id))
        return int(raw or 0) / MICRO

    # --- decisions, feedback ----------------------------------------------------------------

    async def put_decision(self, decision_id: str, payload: JsonDict, ttl_s: float) -> None:
        data = JSON_DICT.dump_json(payload)
        with _shared():
            await self._redis.set(self._k("decision", decision_id), data, px=_ms(ttl_s))

    async def get_decision(self, decision_id: str) -> JsonDict | None:
        with _shared():
            raw = await self._redis.get(self._k("decision", decision_id))
        return JSON_DICT.validate_json(raw) if raw else None

    def _feedback_keys(self) -> list[str]:
        return [self._k("fb", name) for name in ("seen", "log", "version", "end", "epoch")]

    async def append_feedback(self, record: JsonDict) -> bool:
        data = JSON_DICT.dump_json(record)
        decision_id = str(record["decision_id"])
        keys = self._feedback_keys()[:4]
        return bool(await self._run("APPEND_FEEDBACK", keys, decision_id, data, self.max_feedback))

    async def read_feedback(self, after: int, limit: int) -> FeedbackPage:
        keys = [self._k("fb", name) for name in ("log", "end", "epoch")]
        reply = cast(list[int], await self._run("READ_FEEDBACK", keys, after, limit))
        epoch, start, end = reply[:3]
        records = cast(list[bytes], reply[3:])
        return FeedbackPage(epoch, start, end, [JSON_DICT.validate_json(r) for r in records])

    async def load_feedback(self) -> list[JsonDict]:
        name = self._k("fb", "log")
        with _shared():
            size = await self._redis.llen(name)
            # in chunks, so no single reply has to arrive within the socket timeout
            async with self._redis.pipeline(transaction=False) as pipe:
                for start in range(0, size, FEEDBACK_CHUNK):
                    pipe.lrange(name, start, min(start + FEEDBACK_CHUNK, size) - 1)
                chunks = await pipe.execute()
        return [JSON_DICT.validate_json(raw) for chunk in chunks for raw in chunk]

    async def clear_feedback(self) -> None:
        await self._run("CLEAR_FEEDBACK", self._feedback_keys())

    async def feedback_version(self) -> int:
        with _shared():
            return int(await self._redis.get(self._k("fb", "version")) or 0)

    # --- decision log -----------------------------------------------------------------------

    async def log_decision(self, entry: JsonDict, max_entries: int, ttl_s: float) -> None:
        name = self._k("decisions", "log")
        with _shared():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.lpush(name, JSON_DICT.dump_json(entry))
                pipe.ltrim(name, 0, max_entries - 1)
                pipe.pexpire(name, _ms(ttl_s))
                await pipe.execute()

    async def recent_decisions(self, limit: int) -> list[JsonDict]:
        if limit <= 0:
            return []
        name = self._k("decisions", "log")
        with _shared():
            raws = cast(list[bytes], await self._redis.lrange(name, 0, limit - 1))
        return [JSON_DICT.validate_json(raw) for raw in raws]

    async def add_usage(self, bucket: int, counts: dict[str, int], ttl_s: float) -> None:
        name = self._k("usage", str(bucket))
        with _shared():
            async with self._redis.pipeline(transaction=True) as pipe:
                for field, amount in counts.items():
                    pipe.hincrby(name, field, amount)
                pipe.pexpire(name, _ms(ttl_s))
                await pipe.execute()

    async def usage(self, buckets: list[int]) -> dict[int, dict[str, int]]:
        with _shared():
            async with self._redis.pipeline(transaction=False) as pipe:
                for bucket in buckets:
                    pipe.hgetall(self._k("usage", str(bucket)))
                replies = cast(list[dict[bytes, bytes]], await pipe.execute())
        return {
            bucket: {field.decode(): int(value) for field, value in counts.items()}
            for bucket, counts in zip(buckets, replies, strict=True)
            if counts
        }

    # --- response cache ---------------------------------------------------------------------

    async def cache_get(self, key: str) -> bytes | None:
        with _shared():
            return cast(bytes | None, await self._redis.get(self._k("cache", key)))

    async def cache_set(self, key: str, value: bytes, ttl_s: float) -> None:
        with _shared():
            await self._redis.set(self._k("cache", key), value, px=_ms(ttl_s))

    def _semantic(self, tenant: str) -> list[str]:
        return [self._k("sem", "v", tenant), self._k("sem", "t", tenant)]

    async def semantic_add(
        self, tenant: str, key: str, embedding: np.ndarray, ttl_s: float, max_entries: int
    ) -> None:
        vector = np.asarray(embedding, dtype=np.float32).tobytes()
        args = (key, vector, _ms(ttl_s), max_entries)
        await self._run("SEMANTIC_ADD", self._semantic(tenant), *args)

    async def semantic_entries(self, tenant: str) -> list[tuple[str, np.ndarray]]:
        flat = cast(list[bytes], await self._run("SEMANTIC_ENTRIES", self._semantic(tenant)))
        return [
            (key.decode(), np.frombuffer(vector, dtype=np.float32))
            for key, vector in zip(flat[::2], flat[1::2], strict=True)
        ]

    # --- console sessions ------------------------------------------------------------------

    async def add_session(self, session_id: str, ttl_s: float) -> None:
        with _shared():
            await self._redis.set(self._k("session", key_hash(session_id)), 1, px=_ms(ttl_s))

    async def has_session(self, session_id: str) -> bool:
        with _shared():
            return bool(await self._redis.exists(self._k("session", key_hash(session_id))))

    async def drop_session(self, session_id: str) -> bool:
        with _shared():
            return bool(await self._redis.delete(self._k("session", key_hash(session_id))))

    # --- circuit breakers -------------------------------------------------------------------

    async def mark_open(self, model: str, seconds: float) -> None:
        with _shared():
            await self._redis.set(self._k("breaker", model), 1, px=_ms(seconds))

    async def open_models(self) -> dict[str, float]:
        prefix = self._k("breaker", "")
        with _shared():
            names = [n.decode() async for n in self._redis.scan_iter(prefix + "*")]
            ttls = [await self._redis.pttl(n) for n in names]
        return {n.removeprefix(prefix): t / 1000 for n, t in zip(names, ttls, strict=True) if t > 0}

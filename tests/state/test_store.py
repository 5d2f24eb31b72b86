"""Both stores behave the same; the Redis one also holds across workers, outages and restarts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

import numpy as np
import pytest
import redis

from app.errors import SwitchboardError
from app.state import (
    KEY_PREFIX,
    JsonDict,
    StateStore,
    StateUnavailable,
    key_hash,
    open_store,
    to_micro,
)
from app.state.memory import MemoryStore
from app.state.redis_store import POOL_SIZE, RedisStore
from tests.redis_server import RedisProcess, redis_server


def _everything_in(url: str) -> bytes:
    """Every key name and value in Redis, whatever its type."""
    client = redis.Redis.from_url(url)
    readers: dict[bytes, Callable[[bytes], object]] = {
        b"string": client.get,
        b"hash": client.hgetall,
        b"set": client.smembers,
        b"list": lambda name: client.lrange(name, 0, -1),
        b"zset": lambda name: client.zrange(name, 0, -1),
    }
    parts: list[bytes] = []
    for name in client.scan_iter("*"):
        value = readers[cast(bytes, client.type(name))](name)
        items = value.items() if isinstance(value, dict) else [value]
        parts += [name, *(repr(item).encode() for item in items)]
    client.close()
    return b"\n".join(parts)


async def test_keys_issue_lookup_list_revoke(store: StateStore, peer: StateStore) -> None:
    record, key = await store.issue_key("team-a", rpm=5, budget_usd=2.5)
    assert key.startswith(KEY_PREFIX) and len(key) > 40
    found = await peer.lookup_key(key)
    assert found == record and found.spend_usd == 0
    assert await peer.lookup_key(key + "x") is None
    other, _ = await store.issue_key("team-b")
    assert [r.name for r in await peer.list_keys()] == ["team-a", "team-b"]
    await store.settle(record.id, 0, 0.125)
    got = await peer.get_key(record.id)
    assert got is not None and got.spend_usd == 0.125 and got.budget_usd == 2.5
    assert await peer.delete_key(record.id)
    assert await store.lookup_key(key) is None and await store.get_key(record.id) is None
    assert not await store.delete_key(record.id)
    assert [r.id for r in await store.list_keys()] == [other.id]


async def test_only_the_hash_of_a_key_is_stored(redis_proc: RedisProcess) -> None:
    redis_proc.flush()
    store = RedisStore(redis_proc.url)
    _, key = await store.issue_key("team-a", rpm=5, tpm=100, budget_usd=1)
    dump = _everything_in(redis_proc.url)
    await store.aclose()
    assert key_hash(key).encode() in dump
    assert key.encode() not in dump and key.removeprefix(KEY_PREFIX).encode() not in dump


async def test_a_burst_of_calls_shares_a_bounded_pool_of_connections(
    redis_proc: RedisProcess,
) -> None:
    """200 calls at once from one worker all land, over at most ``POOL_SIZE`` connections."""
    redis_proc.flush()
    store = RedisStore(redis_proc.url)
    with redis.Redis.from_url(redis_proc.url) as admin:
        before = len(admin.client_list())
        await asyncio.gather(*(store.add_usage(1, {"calls:a": 1}, 60) for _ in range(200)))
        opened = len(admin.client_list()) - before
    assert await store.usage([1]) == {1: {"calls:a": 200}}
    await store.aclose()
    assert 1 <= opened <= POOL_SIZE


async def test_requests_per_minute(store: StateStore) -> None:
    decisions = [await store.hit("k1:requests", 1, 3, 60) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert {d.limit for d in decisions} == {3}
    assert decisions[0].retry_after == 0 and 59 < decisions[3].retry_after <= 60
    assert 59 < decisions[3].reset_s <= 60
    assert (await store.hit("k2:requests", 1, 3, 60)).allowed  # other buckets are untouched


async def test_tokens_per_minute(store: StateStore) -> None:
    assert [(await store.hit("k:tokens", 300, 1000, 60)).remaining for _ in range(3)] == [
        700, 400, 100]  # fmt: skip
    denied = await store.hit("k:tokens", 200, 1000, 60)
    assert not denied.allowed and denied.remaining == 100  # a refused call uses nothing
    assert (await store.hit("k:tokens", 100, 1000, 60)).allowed
    assert not (await store.hit("big:tokens", 5000, 1000, 60)).allowed  # bigger than the limit


async def test_rate_limit_window_resets(store: StateStore) -> None:
    assert (await store.hit("w", 1, 1, 0.2)).allowed
    assert not (await store.hit("w", 1, 1, 0.2)).allowed
    await asyncio.sleep(0.25)
    assert (await store.hit("w", 1, 1, 0.2)).allowed


async def test_rate_limit_holds_across_workers(store: StateStore, peer: StateStore) -> None:
    hits = await asyncio.gather(*((store, peer)[i % 2].hit("shared", 1, 10, 60) for i in range(40)))
    assert sum(h.allowed for h in hits) == 10


async def test_budget_holds_under_concurrency(store: StateStore, peer: StateStore) -> None:
    """50 calls at once from two workers against a budget for 10: exactly 10 get through.

    Every reservation is made before any call settles: a settled call releases what it did not
    spend, so a reservation that arrived after it could rightly fit (how many would depend on
    the machine's speed, not on the store)."""
    workers = [(store, peer)[i % 2] for i in range(50)]
    served = await asyncio.gather(*(w.reserve("k", 0.01, 0.1) for w in workers))
    assert sum(served) == 10
    granted = [i for i in range(50) if served[i]]
    settled = [0.001 * (i % 7 + 1) for i in granted]

    async def settle(i: int, actual: float) -> None:
        await asyncio.sleep(0.001 * (i % 5))
        await workers[i].settle("k", 0.01, actual)

    await asyncio.gather(*(settle(i, a) for i, a in zip(granted, settled, strict=True)))
    assert to_micro(await store.spend("k")) == sum(to_micro(a) for a in settled)
    left = 0.1 - sum(settled)  # holds are released: exactly what was not spent is free
    assert await peer.reserve("k", left, 0.1)
    assert not await peer.reserve("k", 0.000001, 0.1)


async def test_feedback_once_per_decision_and_seen_by_every_worker(
    store: StateStore, peer: StateStore
) -> None:
    version = await peer.feedback_version()
    record: JsonDict = {"decision_id": "d1", "embedding": [0.5, -1.0], "verdicts": [["m", 1.0]]}
    assert await store.append_feedback(record)
    assert not await peer.append_feedback(record | {"verdicts": [["m", 0.0]]})  # idempotent
    assert await peer.append_feedback({"decision_id": "d2", "verdicts": []})
    assert await peer.load_feedback() == [record, {"decision_id": "d2", "verdicts": []}]
    after = await peer.feedback_version()
    assert after > version
    await store.clear_feedback()
    assert await peer.load_feedback() == [] and await peer.feedback_version() > after
    assert await peer.append_feedback(record)  # a reset forgets which decisions had feedback


async def test_decisions_cache_and_semantic_entries_expire(store: StateStore) -> None:
    payload: JsonDict = {
        "model": "m",
        "candidates": ["m", "n"],
        "embedding": [0.25, 0.5],
        "key": None,
    }
    await store.put_decision("d1", payload, 0.2)
    await store.cache_set("c1", b"\x00reply\xff", 0.2)
    await store.semantic_add("tenant", "c1", np.ones(4, np.float32), 0.2, 10)
    assert await store.get_decision("d1") == payload and await store.get_decision("d2") is None
    assert await store.cache_get("c1") == b"\x00reply\xff" and await store.cache_get("c2") is None
    assert [k for k, _ in await store.semantic_entries("tenant")] == ["c1"]
    await asyncio.sleep(0.25)
    assert await store.get_decision("d1") is None and await store.cache_get("c1") is None
    assert await store.semantic_entries("tenant") == []


async def test_console_sessions_open_expire_and_end_on_every_worker(
    store: StateStore, peer: StateStore
) -> None:
    await store.add_session("nonce-a", 60)
    await store.add_session("nonce-b", 0.2)
    assert await peer.has_session("nonce-a") and await peer.has_session("nonce-b")
    assert not await peer.has_session("nonce-c")
    assert await peer.drop_session("nonce-a")  # logout on one worker...
    assert not await store.has_session("nonce-a")  # ...ends it on the other
    assert not await store.drop_session("nonce-a")
    await asyncio.sleep(0.25)
    assert not await store.has_session("nonce-b")


async def test_semantic_entries_are_bounded_newest_first(store: StateStore) -> None:
    for i in range(6):
        await store.semantic_add("t", f"k{i}", np.full(3, i, np.float64), 60, 4)
        await asyncio.sleep(0.002)  # distinct expiry times, as real requests have
    await store.semantic_add("t", "k3", np.full(3, 9.0), 60, 4)  # re-added: newest, not twice
    await store.semantic_add("other", "x", np.zeros(3), 60, 4)
    entries = await store.semantic_entries("t")
    assert [k for k, _ in entries] == ["k3", "k5", "k4", "k2"]
    assert all(v.dtype == np.float32 and v.shape == (3,) for _, v in entries)
    assert entries[0][1].tolist() == [9.0] * 3 and entries[1][1].tolist() == [5.0] * 3


async def test_redis_down_raises_then_recovers(redis_proc: RedisProcess) -> None:
    store = RedisStore(redis_proc.url)
    assert await store.ping() and (await store.hit("x", 1, 10, 60)).allowed
    redis_proc.stop()
    redis_proc.start()  # the pooled connection is now dead: the next call must not fail for it
    assert (await store.hit("x", 1, 10, 60)).allowed
    redis_proc.stop()
    try:
        assert not await store.ping()
        for call in (
            store.lookup_key("sk-sb-x"), store.list_keys(), store.hit("x", 1, 10, 60),
            store.reserve("k", 1, 10), store.settle("k", 1, 1), store.spend("k"),
            store.put_decision("d", {}, 60), store.append_feedback({"decision_id": "d"}),
            store.load_feedback(), store.feedback_version(), store.cache_get("c"),
            store.semantic_entries("t"), store.mark_open("m", 1), store.open_models(),
        ):  # fmt: skip
            with pytest.raises(StateUnavailable):
                await call
    finally:
        redis_proc.start()
    assert await store.ping()  # the same store object, reconnected by itself
    assert (await store.hit("x", 1, 10, 60)).allowed
    assert await store.append_feedback({"decision_id": "d"})
    await store.aclose()


async def test_feedback_and_spend_survive_a_redis_crash_with_persistence() -> None:
    with redis_server(persistent=True) as durable:
        store = RedisStore(durable.url)
        record, key = await store.issue_key("team-a", budget_usd=10)
        assert await store.reserve(record.id, 0.5, 10)
        await store.settle(record.id, 0.5, 0.25)
        assert await store.append_feedback({"decision_id": "d1", "verdicts": [["m", 1.0]]})
        durable.stop(kill=True)  # SIGKILL: only what reached the append-only file survives
        durable.start()
        found = await store.lookup_key(key)
        assert found is not None and found.spend_usd == 0.25
        assert await store.load_feedback() == [{"decision_id": "d1", "verdicts": [["m", 1.0]]}]
        assert not await store.append_feedback({"decision_id": "d1"})
        await store.aclose()


async def test_open_store_and_the_error_it_raises(redis_proc: RedisProcess) -> None:
    assert isinstance(open_store(None), MemoryStore)
    shared = open_store(redis_proc.url, prefix="other:")
    assert isinstance(shared, RedisStore) and shared.prefix == "other:"
    await shared.aclose()
    assert issubclass(StateUnavailable, SwitchboardError) and StateUnavailable.status_code == 503

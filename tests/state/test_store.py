"""Both stores behave the same; the Redis one holds limits across processes and faults."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from app.state import ApiKeyRecord, StateStore, StateUnavailable, new_key
from app.state.memory import MemoryStore
from app.state.redis_store import RedisStore
from tests.redis_server import RedisProcess, redis_server


@pytest.fixture(scope="module")
def server() -> Iterator[RedisProcess]:
    with redis_server() as process:
        yield process


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, server: RedisProcess) -> AsyncIterator[StateStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    redis.Redis.from_url(server.url).flushall()
    shared = RedisStore(server.url)
    yield shared
    await shared.aclose()


async def test_keys_are_stored_hashed_and_can_be_revoked(
    store: StateStore, server: RedisProcess
) -> None:
    key_id, key = new_key()
    await store.create_key(ApiKeyRecord(id=key_id, name="team-a", rpm=5), key)
    found = await store.lookup_key(key)
    assert found is not None and found.name == "team-a" and found.rpm == 5
    assert await store.lookup_key(key + "x") is None
    assert [r.id for r in await store.list_keys()] == [key_id]
    if isinstance(store, RedisStore):
        raw = redis.Redis.from_url(server.url)
        dump = b"".join(k + (raw.get(k) or b"") for k in raw.scan_iter("*"))
        assert key.encode() not in dump  # only its hash is kept
    assert await store.delete_key(key_id)
    assert await store.lookup_key(key) is None and await store.get_key(key_id) is None


async def test_rate_limit_window(store: StateStore) -> None:
    decisions = [await store.hit("k1:rpm", 1, 3, 60) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[2].remaining == 0 and 0 < decisions[3].retry_after <= 60
    assert (await store.hit("k2:rpm", 1, 3, 60)).allowed  # other buckets untouched
    assert not (await store.hit("k1:tpm", 500, 400, 60)).allowed  # one call bigger than the limit


async def test_budget_holds_under_concurrency(store: StateStore) -> None:
    """50 calls at once against a budget for 10: exactly 10 get through, spend adds up."""

    async def call(i: int) -> bool:
        if not await store.reserve("k", 0.01, 0.1):
            return False
        await asyncio.sleep(0.001 * (i % 5))
        await store.settle("k", 0.01, 0.0075)
        return True

    served = await asyncio.gather(*(call(i) for i in range(50)))
    assert sum(served) == 10
    assert abs(await store.spend("k") - 10 * 0.0075) < 1e-9
    assert await store.reserve("k", 0.01, 0.1)  # what the calls did not use is free again


async def test_two_workers_share_limits(server: RedisProcess) -> None:
    redis.Redis.from_url(server.url).flushall()
    a, b = RedisStore(server.url), RedisStore(server.url)
    results = [await (a if i % 2 else b).hit("shared", 1, 4, 60) for i in range(6)]
    assert [r.allowed for r in results] == [True] * 4 + [False] * 2
    await a.aclose()
    await b.aclose()


async def test_redis_down_raises_then_recovers(server: RedisProcess) -> None:
    store = RedisStore(server.url)
    assert await store.ping()
    server.stop()
    try:
        assert not await store.ping()
        with pytest.raises(StateUnavailable):
            await store.hit("x", 1, 10, 60)
    finally:
        server.start()
    assert (await store.hit("x", 1, 10, 60)).allowed  # same store object, reconnected
    await store.aclose()


async def test_spend_survives_a_redis_restart_with_persistence() -> None:
    with redis_server(persistent=True) as durable:
        store = RedisStore(durable.url)
        assert await store.reserve("k", 0.5, 10)
        await store.settle("k", 0.5, 0.25)
        durable.stop()
        durable.start()
        assert abs(await store.spend("k") - 0.25) < 1e-9
        await store.aclose()

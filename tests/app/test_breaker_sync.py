"""A breaker opened by one worker opens on the others (through memory or real Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from app.gateway.breaker import CircuitBreakers
from app.gateway.breaker_sync import BreakerSync
from app.state import StateStore
from app.state.memory import MemoryStore
from app.state.redis_store import RedisStore
from tests.redis_server import RedisProcess, redis_server


@pytest.fixture(scope="module")
def server() -> Iterator[RedisProcess]:
    with redis_server() as process:
        yield process


@pytest.fixture(params=["memory", "redis"])
async def stores(
    request: pytest.FixtureRequest, server: RedisProcess
) -> AsyncIterator[tuple[StateStore, StateStore]]:
    if request.param == "memory":
        shared = MemoryStore()
        yield shared, shared
        return
    a, b = RedisStore(server.url), RedisStore(server.url)
    yield a, b
    await a.aclose()
    await b.aclose()


async def test_open_breaker_spreads_to_other_workers(stores: tuple[StateStore, StateStore]) -> None:
    one, two = (
        CircuitBreakers(failures=2, cooldown_s=30),
        CircuitBreakers(failures=2, cooldown_s=30),
    )
    sync_one, sync_two = BreakerSync(stores[0], one), BreakerSync(stores[1], two)
    one.failure("flaky")
    one.failure("flaky")
    assert one.is_open("flaky") and not two.is_open("flaky")
    await sync_one.sync(force=True)
    await sync_two.sync(force=True)
    assert two.is_open("flaky") and not two.is_open("healthy")

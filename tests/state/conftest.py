"""Fixtures for the state store tests: one real ``redis-server`` for the session, and the stores.

``store`` runs each test on both implementations; ``peer`` is a second handle on the same state
(a second ``RedisStore`` on the same Redis, as another worker would hold; for memory, the same
object, since a ``MemoryStore`` is one process's state).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from app.state import StateStore
from app.state.memory import MemoryStore
from app.state.redis_store import RedisStore
from tests.redis_server import RedisProcess, redis_server


@pytest.fixture(scope="session")
def redis_proc() -> Iterator[RedisProcess]:
    with redis_server() as process:
        yield process


@pytest.fixture(params=["memory", "redis"])
async def store(
    request: pytest.FixtureRequest, redis_proc: RedisProcess
) -> AsyncIterator[StateStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    redis_proc.flush()
    shared = RedisStore(redis_proc.url)
    yield shared
    await shared.aclose()


@pytest.fixture
async def peer(store: StateStore, redis_proc: RedisProcess) -> AsyncIterator[StateStore]:
    if isinstance(store, MemoryStore):
        yield store
        return
    other = RedisStore(redis_proc.url)
    yield other
    await other.aclose()

"""Nothing a caller can grow in the state store grows without bound.

The feedback log keeps its newest records (and forgets which decisions the dropped ones were
for), and is read incrementally: a reader asks for what came after the last position it saw
and learns from the epoch when an admin reset started the log again. The in-memory store caps
each table (decisions and conversation memory, cached replies, semantic-cache vectors over all
scopes) and drops the oldest entries past the cap.
"""

from __future__ import annotations

import numpy as np

from app.state import JsonDict, StateStore
from app.state.memory import MemoryStore
from app.state.redis_store import RedisStore
from tests.redis_server import RedisProcess


def _record(i: int) -> JsonDict:
    return {"decision_id": f"d{i}", "key": None, "verdicts": [["m", 1.0]]}


async def test_feedback_is_read_after_a_position(store: StateStore, peer: StateStore) -> None:
    first = await peer.read_feedback(0, 100)
    assert (first.end, first.records) == (0, [])
    for i in range(5):
        assert await store.append_feedback(_record(i))
    page = await peer.read_feedback(0, 100)
    assert (page.start, page.end) == (0, 5) and page.records == [_record(i) for i in range(5)]
    assert await store.append_feedback(_record(5))
    assert await store.append_feedback(_record(6))
    newer = await peer.read_feedback(5, 100)
    assert (newer.start, newer.end, newer.epoch) == (5, 7, page.epoch)
    assert newer.records == [_record(5), _record(6)]
    short = await peer.read_feedback(1, 2)  # pages: at most ``limit`` records
    assert short.start == 1 and short.records == [_record(1), _record(2)] and short.end == 7
    await store.clear_feedback()
    reset = await peer.read_feedback(7, 100)
    assert reset.epoch != page.epoch and (reset.end, reset.records) == (0, [])


async def _trimmed(store: StateStore) -> None:
    for i in range(25):
        assert await store.append_feedback(_record(i))
    page = await store.read_feedback(0, 100)
    assert (page.start, page.end) == (15, 25)
    assert page.records == [_record(i) for i in range(15, 25)]
    assert not await store.append_feedback(_record(24))  # still once per decision
    assert await store.append_feedback(_record(0))  # dropped with its record


async def test_the_feedback_log_keeps_its_newest_records_in_memory() -> None:
    await _trimmed(MemoryStore(max_feedback=10))


async def test_the_feedback_log_keeps_its_newest_records_in_redis(redis_proc: RedisProcess) -> None:
    redis_proc.flush()
    store = RedisStore(redis_proc.url, max_feedback=10)
    await _trimmed(store)
    await store.aclose()


async def test_memory_tables_are_capped() -> None:
    store = MemoryStore(max_entries=100)
    for i in range(1000):
        await store.put_decision(f"d{i}", {"model": "m"}, 3600)
        await store.cache_set(f"c{i}", b"reply", 3600)
    assert await store.get_decision("d999") == {"model": "m"}
    assert await store.get_decision("d0") is None
    decisions = [await store.get_decision(f"d{i}") for i in range(1000)]
    assert sum(d is not None for d in decisions) == 100
    replies = [await store.cache_get(f"c{i}") for i in range(1000)]
    assert sum(r is not None for r in replies) == 100


async def test_semantic_scopes_are_capped_in_total() -> None:
    store = MemoryStore(max_entries=100)
    for scope in range(500):  # every distinct conversation prefix is a scope of its own
        for i in range(3):
            await store.semantic_add(f"s{scope}", f"k{i}", np.ones(4), 3600, 200)
    kept = [len(await store.semantic_entries(f"s{scope}")) for scope in range(500)]
    assert sum(kept) <= 100
    assert kept[-1] == 3 and kept[0] == 0  # the newest scopes are the ones kept

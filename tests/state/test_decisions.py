"""The decision log and usage counters behave the same in both stores, and Redis shares them."""

from __future__ import annotations

import asyncio

from app.state import JsonDict, StateStore


def _entry(i: int) -> JsonDict:
    return {"ts": 1000.0 + i, "model": f"m{i % 2}", "cost_usd": 0.001 * i, "fallbacks": []}


async def test_the_log_keeps_the_newest_entries_and_every_worker_sees_them(
    store: StateStore, peer: StateStore
) -> None:
    for i in range(5):
        await (store, peer)[i % 2].log_decision(_entry(i), 3, 60)
    assert await peer.recent_decisions(10) == [_entry(4), _entry(3), _entry(2)]
    assert await store.recent_decisions(2) == [_entry(4), _entry(3)]
    assert await store.recent_decisions(0) == []


async def test_the_log_expires_after_the_last_entry(store: StateStore) -> None:
    await store.log_decision(_entry(1), 10, 0.2)
    await asyncio.sleep(0.1)
    await store.log_decision(_entry(2), 10, 0.2)  # a new entry keeps the log alive
    await asyncio.sleep(0.15)
    assert await store.recent_decisions(10) == [_entry(2), _entry(1)]
    await asyncio.sleep(0.1)
    assert await store.recent_decisions(10) == []


async def test_usage_counters_add_up_exactly_across_workers(
    store: StateStore, peer: StateStore
) -> None:
    adds = [
        (store, peer)[i % 2].add_usage(7, {"calls:a": 1, "cost:a": 250 + i}, 60) for i in range(40)
    ]
    await asyncio.gather(*adds)
    await peer.add_usage(8, {"calls:b": 2}, 60)
    usage = await store.usage([6, 7, 8])
    assert usage == {7: {"calls:a": 40, "cost:a": 40 * 250 + sum(range(40))}, 8: {"calls:b": 2}}


async def test_usage_buckets_expire(store: StateStore) -> None:
    await store.add_usage(1, {"calls:a": 1}, 0.15)
    assert await store.usage([1]) == {1: {"calls:a": 1}}
    await asyncio.sleep(0.2)
    assert await store.usage([1]) == {}

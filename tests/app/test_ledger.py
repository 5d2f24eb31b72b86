"""Budget holds and settlements: the outbox keeps spend the store could not take, in order."""

from __future__ import annotations

import asyncio

import pytest

from app.errors import RateLimited
from app.pipeline.access import Caller
from app.pipeline.ledger import Ledger, Outbox
from app.state import ApiKeyRecord, StateUnavailable
from app.state.memory import MemoryStore


class Flaky(MemoryStore):
    """A memory store that can be taken down."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def settle(self, key_id: str, reserved_usd: float, actual_usd: float) -> None:
        await asyncio.sleep(0.01)  # a round trip, during which the caller may be cancelled
        if self.down:
            raise StateUnavailable("down")
        await super().settle(key_id, reserved_usd, actual_usd)

    async def reserve(self, key_id: str, amount_usd: float, budget_usd: float) -> bool:
        if self.down:
            raise StateUnavailable("down")
        return await super().reserve(key_id, amount_usd, budget_usd)


async def _keyed(store: Flaky, budget: float) -> Caller:
    record = ApiKeyRecord(id="key_1", name="k", budget_usd=budget)
    await store.create_key(record, "sk-sb-test")
    return Caller(record)


async def test_settlements_while_the_store_is_down_are_replayed_in_order() -> None:
    store = Flaky()
    caller = await _keyed(store, budget=1.0)
    outbox = Outbox(store)
    first = Ledger(caller, store, outbox, fail_open=True)
    await first.admit(10, 0.4)
    store.down = True
    await first.settle(0.1)
    second = Ledger(caller, store, outbox, fail_open=True)
    await second.admit(10, 0.4)  # fails open: served, spend still owed
    await second.settle(0.2)
    assert len(outbox) == 2 and await store.spend("key_1") == 0.0
    await outbox.flush()  # still down: nothing lost
    assert len(outbox) == 2
    store.down = False
    await outbox.flush()
    assert len(outbox) == 0 and await store.spend("key_1") == pytest.approx(0.3)
    third = Ledger(caller, store, outbox, fail_open=True)
    await third.admit(10, 0.7)  # the first hold was released: 0.3 spent + 0.7 fits
    with pytest.raises(RateLimited):
        await Ledger(caller, store, outbox, fail_open=True).admit(10, 0.1)


async def test_the_outbox_is_bounded_and_says_what_it_dropped() -> None:
    store = Flaky()
    caller = await _keyed(store, budget=100.0)
    outbox = Outbox(store, size=3)
    store.down = True
    for _ in range(5):
        ledger = Ledger(caller, store, outbox, fail_open=True)
        await ledger.settle(1.0)
    assert len(outbox) == 3 and outbox.dropped == 2
    store.down = False
    await outbox.flush()
    assert await store.spend("key_1") == pytest.approx(3.0)


async def test_a_settlement_survives_the_cancellation_of_its_caller() -> None:
    store = Flaky()
    caller = await _keyed(store, budget=1.0)
    outbox = Outbox(store)
    ledger = Ledger(caller, store, outbox, fail_open=True)
    await ledger.admit(10, 0.5)
    started = asyncio.Event()

    async def handler() -> None:
        started.set()
        await ledger.settle(0.25)

    task = asyncio.create_task(handler())
    await started.wait()
    task.cancel()  # as a server cancels a request whose client left
    await asyncio.gather(task, return_exceptions=True)
    await outbox.drain()
    assert await store.spend("key_1") == pytest.approx(0.25)


async def test_extra_holds_stop_at_the_budget() -> None:
    store = Flaky()
    caller = await _keyed(store, budget=1.0)
    ledger = Ledger(caller, store, Outbox(store), fail_open=True)
    await ledger.admit(10, 0.4)
    assert await ledger.hold_more(0.4)
    assert not await ledger.hold_more(0.4)  # a third call would pass the budget
    assert ledger.held_usd == pytest.approx(0.8)

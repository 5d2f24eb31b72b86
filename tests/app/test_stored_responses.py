"""Conversations kept for ``previous_response_id``: per caller, bounded in size, count and time."""

from __future__ import annotations

import asyncio

import pytest

from app.errors import NotFound, RateLimited, RequestError
from app.pipeline.access import ANONYMOUS, Caller
from app.pipeline.stored_responses import Bounds, StoredResponses
from app.schemas import ChatMessage
from app.state import ApiKeyRecord
from app.state.memory import MemoryStore

TURN = [ChatMessage(role="user", content="My name is Ada."),
        ChatMessage(role="assistant", content="Hello Ada!")]  # fmt: skip
ALICE = Caller(ApiKeyRecord(id="key_alice", name="alice"))
BOB = Caller(ApiKeyRecord(id="key_bob", name="bob"))


async def test_a_caller_continues_its_own_conversation_only() -> None:
    stored = StoredResponses(MemoryStore())
    await stored.save(ALICE, "resp_1", TURN)
    assert await stored.load(ALICE, "resp_1") == TURN
    for other in (BOB, ANONYMOUS):
        with pytest.raises(NotFound) as caught:
            await stored.load(other, "resp_1")
        assert caught.value.param == "previous_response_id"
    await stored.save(ANONYMOUS, "resp_2", TURN)
    assert await stored.load(ANONYMOUS, "resp_2") == TURN
    with pytest.raises(NotFound):
        await stored.load(ALICE, "resp_2")


async def test_entries_expire() -> None:
    stored = StoredResponses(MemoryStore(), Bounds(ttl_s=0.05))
    await stored.save(ALICE, "resp_1", TURN)
    await asyncio.sleep(0.1)
    with pytest.raises(NotFound):
        await stored.load(ALICE, "resp_1")


async def test_a_conversation_too_big_to_keep_is_refused_before_the_call() -> None:
    stored = StoredResponses(MemoryStore(), Bounds(max_bytes=200))
    await stored.admit(ALICE, TURN)
    long = [*TURN, ChatMessage(role="user", content="x" * 300)]
    with pytest.raises(RequestError) as caught:
        await stored.admit(ALICE, long)
    assert caught.value.code == "conversation_too_large" and "200 bytes" in caught.value.message


async def test_each_caller_stores_a_bounded_number_per_window() -> None:
    stored = StoredResponses(MemoryStore(), Bounds(per_caller=2, ttl_s=60))
    await stored.admit(ALICE, TURN)
    await stored.admit(ALICE, TURN)
    with pytest.raises(RateLimited) as caught:
        await stored.admit(ALICE, TURN)
    assert caught.value.param == "store" and 0 < (caught.value.retry_after or 0) <= 60
    await stored.admit(BOB, TURN)  # another caller's count is its own

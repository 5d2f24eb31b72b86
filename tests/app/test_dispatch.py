"""Retry, fallback and breaker behaviour of the gateway, with scripted in-process adapters."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from app.errors import (
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from app.gateway.breaker import CircuitBreakers
from app.gateway.dispatch import Gateway, Plan, RetryPolicy
from app.schemas import (
    AssistantMessage,
    ChatChunk,
    ChatCompletion,
    ChatRequest,
    Choice,
    ChunkChoice,
    Delta,
)

REQUEST = ChatRequest.model_validate(
    {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
)


class Scripted:
    """An adapter that fails with the scripted errors, then answers."""

    def __init__(
        self, name: str, failures: list[UpstreamError], mid_stream: UpstreamError | None = None
    ):
        self.name = name
        self.failures = list(failures)
        self.mid_stream = mid_stream
        self.calls = 0

    def _maybe_fail(self) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)

    async def complete(self, request: ChatRequest) -> ChatCompletion:
        self._maybe_fail()
        return ChatCompletion(
            model=self.name, choices=[Choice(message=AssistantMessage(content=self.name))]
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        self._maybe_fail()
        yield ChatChunk(choices=[ChunkChoice(delta=Delta(role="assistant", content=self.name))])
        if self.mid_stream is not None:
            raise self.mid_stream
        yield ChatChunk(choices=[ChunkChoice(delta=Delta(), finish_reason="stop")])

    async def aclose(self) -> None:
        return None


def _gateway(*adapters: Scripted, retries: int = 2, breaker_failures: int = 100) -> Gateway:
    policy = RetryPolicy(retries=retries, max_fallbacks=5, backoff_base_s=0.001, backoff_max_s=0.5)
    return Gateway({a.name: a for a in adapters}, CircuitBreakers(breaker_failures, 60), policy)


async def test_retryable_errors_are_retried_on_the_same_model() -> None:
    a = Scripted(
        "a", [UpstreamUnavailable("5xx"), UpstreamRateLimited("slow down", retry_after=0.01)]
    )
    reply, attempt = await _gateway(a).complete(REQUEST, ["a"])
    assert reply.choices[0].message.content == "a"
    assert a.calls == 3 and attempt.fallbacks == [] and attempt.model == "a"


async def test_after_retries_it_falls_back_in_order() -> None:
    a = Scripted("a", [UpstreamUnavailable("down")] * 5)
    b = Scripted("b", [])
    _, attempt = await _gateway(a, b, retries=1).complete(REQUEST, ["a", "b"])
    assert attempt.model == "b" and attempt.fallbacks == ["a"] and a.calls == 2


async def test_long_retry_after_moves_on_at_once() -> None:
    a = Scripted("a", [UpstreamRateLimited("wait a minute", retry_after=60)])
    b = Scripted("b", [])
    _, attempt = await _gateway(a, b).complete(REQUEST, ["a", "b"])
    assert a.calls == 1 and attempt.model == "b"


async def test_auth_errors_fall_back_without_retry_and_bad_requests_stop() -> None:
    a = Scripted("a", [UpstreamAuthError("bad key")])
    b = Scripted("b", [])
    _, attempt = await _gateway(a, b).complete(REQUEST, ["a", "b"])
    assert a.calls == 1 and attempt.model == "b"
    c = Scripted("c", [UpstreamBadRequest("too long")])
    d = Scripted("d", [])
    with pytest.raises(UpstreamBadRequest):
        await _gateway(c, d).complete(REQUEST, ["c", "d"])
    assert d.calls == 0


async def test_stream_falls_back_before_first_chunk_only() -> None:
    a = Scripted("a", [UpstreamUnavailable("down")] * 5)
    b = Scripted("b", [], mid_stream=UpstreamUnavailable("died"))
    c = Scripted("c", [])
    first, rest, attempt = await _gateway(a, b, c, retries=0).open_stream(REQUEST, ["a", "b", "c"])
    assert attempt.model == "b" and attempt.fallbacks == ["a"]
    assert first.choices[0].delta.content == "b"
    with pytest.raises(UpstreamUnavailable):
        async for _ in rest:
            pass
    assert c.calls == 0  # never a silent switch after the stream began


async def test_breaker_opens_after_repeated_failures() -> None:
    a = Scripted("a", [UpstreamUnavailable("down")] * 10)
    b = Scripted("b", [])
    gateway = _gateway(a, b, retries=0, breaker_failures=3)
    for _ in range(3):
        await gateway.complete(REQUEST, ["a", "b"])
    assert gateway.breakers.is_open("a") and gateway.breakers.status("a") == "open"
    assert not gateway.breakers.is_open("b")


def test_breaker_half_open_lets_one_probe_through() -> None:
    now = [0.0]
    breakers = CircuitBreakers(failures=1, cooldown_s=1.0, clock=lambda: now[0])
    breakers.failure("m")
    now[0] += 1.0
    assert not breakers.is_open("m")  # cooldown over: a probe may go
    breakers.begin("m")
    assert breakers.is_open("m")  # while the probe is in flight, nobody else
    breakers.success("m")
    assert breakers.status("m") == "closed"


class Slow(Scripted):
    """Answers after ``delay_s`` (or never, in practice, when it is long)."""

    def __init__(self, name: str, delay_s: float) -> None:
        super().__init__(name, [])
        self.delay_s = delay_s
        self.cancelled = 0

    async def complete(self, request: ChatRequest) -> ChatCompletion:
        self.calls += 1
        try:
            await asyncio.sleep(self.delay_s)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return ChatCompletion(
            model=self.name, choices=[Choice(message=AssistantMessage(content=self.name))]
        )


async def test_a_hanging_model_is_abandoned_in_time_for_the_fallback() -> None:
    hanging, fast = Slow("hanging", 30.0), Slow("fast", 0.05)
    gateway = _gateway(hanging, fast, retries=0)
    started = time.perf_counter()
    reply, attempt = await gateway.complete(
        REQUEST, ["hanging", "fast"], Plan(deadline=started + 2.0)
    )
    took = time.perf_counter() - started
    assert reply.choices[0].message.content == "fast"
    assert attempt.fallbacks == ["hanging"]
    assert took < 2.0  # the first model got the deadline minus a reserve, not the whole of it
    assert gateway.latency.summary("hanging").error_rate == 1.0


async def test_without_time_left_the_call_fails_as_a_timeout() -> None:
    gateway = _gateway(Slow("hanging", 30.0), retries=0)
    with pytest.raises(UpstreamTimeout):
        await gateway.complete(REQUEST, ["hanging"], Plan(deadline=time.perf_counter() + 0.2))


async def test_a_call_far_slower_than_usual_is_hedged_with_the_next_model() -> None:
    slow, fast = Slow("slow", 0.02), Slow("fast", 0.02)
    gateway = _gateway(slow, fast, retries=0)
    for _ in range(5):  # both have a latency record: about 20 ms
        await gateway.complete(REQUEST, ["slow"], Plan(deadline=time.perf_counter() + 5))
        await gateway.complete(REQUEST, ["fast"], Plan(deadline=time.perf_counter() + 5))
    slow.delay_s = 3.0  # now "slow" stalls: 3 s instead of its usual 20 ms
    started = time.perf_counter()
    reply, attempt = await gateway.complete(REQUEST, ["slow", "fast"], Plan(deadline=started + 8.0))
    assert reply.choices[0].message.content == "fast"
    assert attempt.model == "fast" and attempt.hedged == ["fast"]
    assert time.perf_counter() - started < 1.0
    await asyncio.sleep(0)
    assert slow.cancelled == 1  # the losing call is cancelled, not left running


async def test_prepare_adapts_the_request_per_model() -> None:
    seen: list[str] = []

    class Recording(Scripted):
        async def complete(self, request: ChatRequest) -> ChatCompletion:
            seen.append(request.messages[0].text())
            return await super().complete(request)

    def shout(model: str, request: ChatRequest) -> ChatRequest:
        message = request.messages[0].model_copy(update={"content": f"{model}: hi"})
        return request.model_copy(update={"messages": [message]})

    await _gateway(Recording("a", [UpstreamUnavailable("down")]), Recording("b", []), retries=0
                   ).complete(REQUEST, ["a", "b"], Plan(prepare=shout))  # fmt: skip
    assert seen == ["a: hi", "b: hi"]


async def _warmed(*adapters: Slow) -> Gateway:
    gateway = _gateway(*adapters, retries=0)
    for adapter in adapters:  # each has a latency record: about 20 ms
        for _ in range(5):
            await gateway.complete(REQUEST, [adapter.name], Plan(deadline=time.perf_counter() + 5))
    return gateway


async def test_hedging_is_bounded_held_for_and_every_call_is_on_the_bill() -> None:
    slow, second, third = Slow("slow", 0.02), Slow("second", 0.02), Slow("third", 0.02)
    gateway = await _warmed(slow, second, third)
    slow.delay_s = second.delay_s = 1.0  # the first two stall; only a second hedge would help
    asked: list[str] = []

    async def hold_more(model: str) -> bool:
        asked.append(model)
        return True

    plan = Plan(deadline=time.perf_counter() + 8.0, hold_more=hold_more, max_hedges=1)
    reply, attempt = await gateway.complete(REQUEST, ["slow", "second", "third"], plan)
    assert reply.choices[0].message.content in ("slow", "second")
    assert attempt.hedged == ["second"] and third.calls == 5  # one extra call, no more
    assert asked == ["second"]  # held for before it was made
    outcomes = sorted((c.model, c.outcome) for c in attempt.calls)
    winner = attempt.model
    loser = "second" if winner == "slow" else "slow"
    assert outcomes == sorted([(winner, "ok"), (loser, "abandoned")])  # both billable


async def test_no_hedge_when_the_budget_cannot_hold_another_call() -> None:
    slow, fast = Slow("slow", 0.02), Slow("fast", 0.02)
    gateway = await _warmed(slow, fast)
    slow.delay_s = 0.6

    async def refuse(model: str) -> bool:
        return False

    plan = Plan(deadline=time.perf_counter() + 8.0, hold_more=refuse)
    reply, attempt = await gateway.complete(REQUEST, ["slow", "fast"], plan)
    assert reply.choices[0].message.content == "slow" and attempt.hedged == []
    assert fast.calls == 5 and [c.outcome for c in attempt.calls] == ["ok"]

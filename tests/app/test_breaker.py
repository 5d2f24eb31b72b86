"""The circuit breaker heals: every half-open probe resolves, whatever it ends in.

The first tests drive the gateway with scripted adapters: a model whose breaker opened must be
usable again once its cooldown is over and a probe came back with a 4xx, was cancelled, or
raised something unexpected. The last one checks the breaker as a state machine with
Hypothesis, over sequences of calls, outcomes and time passing.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from app.errors import UpstreamBadRequest, UpstreamUnavailable
from app.gateway.breaker import CircuitBreakers
from app.gateway.dispatch import Gateway, RetryPolicy
from app.schemas import ChatCompletion, ChatRequest
from tests.app.test_dispatch import REQUEST, Scripted

COOLDOWN_S = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Hanging(Scripted):
    """Never answers: the caller gives up (cancels) or a hedge wins."""

    async def complete(self, request: ChatRequest) -> ChatCompletion:
        self.calls += 1
        await asyncio.sleep(3600)
        raise AssertionError("never reached")


class Broken(Scripted):
    """An adapter with a bug: raises something that is not an ``UpstreamError``."""

    async def complete(self, request: ChatRequest) -> ChatCompletion:
        self.calls += 1
        raise RuntimeError("adapter bug")


def _opened(adapter: Scripted, clock: Clock) -> Gateway:
    """A gateway whose breaker for ``adapter`` opened and whose cooldown has just passed."""
    breakers = CircuitBreakers(failures=1, cooldown_s=COOLDOWN_S, clock=clock)
    gateway = Gateway({adapter.name: adapter}, breakers, RetryPolicy(retries=0, max_fallbacks=0))
    breakers.failure(adapter.name)
    assert breakers.is_open(adapter.name)
    clock.now += COOLDOWN_S + 1
    assert not breakers.is_open(adapter.name), "after the cooldown a probe may go"
    return gateway


async def test_a_probe_answered_with_a_4xx_closes_the_breaker() -> None:
    clock = Clock()
    gateway = _opened(Scripted("m", [UpstreamBadRequest("bad field")]), clock)
    with pytest.raises(UpstreamBadRequest):
        await gateway.complete(REQUEST, ["m"])
    assert gateway.breakers.status("m") == "closed"  # the provider answered: it is up
    assert not gateway.breakers.is_open("m")


async def test_a_cancelled_probe_lets_the_next_call_probe() -> None:
    clock = Clock()
    gateway = _opened(Hanging("m", []), clock)
    call = asyncio.create_task(gateway.complete(REQUEST, ["m"]))
    await asyncio.sleep(0.01)
    assert gateway.breakers.is_open("m")  # the probe is in flight: nobody else is sent
    call.cancel()  # the client went away
    with pytest.raises(asyncio.CancelledError):
        await call
    assert not gateway.breakers.is_open("m")  # not unavailable for good


async def test_a_probe_that_raises_something_unexpected_resolves() -> None:
    clock = Clock()
    gateway = _opened(Broken("m", []), clock)
    with pytest.raises(RuntimeError):
        await gateway.complete(REQUEST, ["m"])
    assert not gateway.breakers.is_open("m")


async def test_a_probe_lost_without_an_end_expires_after_a_cooldown() -> None:
    clock = Clock()
    breakers = CircuitBreakers(failures=1, cooldown_s=COOLDOWN_S, clock=clock)
    breakers.failure("m")
    clock.now += COOLDOWN_S
    breakers.begin("m")  # and then nothing: a leaked task
    assert breakers.is_open("m")
    clock.now += COOLDOWN_S
    assert not breakers.is_open("m")


async def test_a_probe_that_fails_reopens_for_a_full_cooldown() -> None:
    clock = Clock()
    gateway = _opened(Scripted("m", [UpstreamUnavailable("still down")]), clock)
    with pytest.raises(UpstreamUnavailable):
        await gateway.complete(REQUEST, ["m"])
    assert gateway.breakers.status("m") == "open"
    clock.now += COOLDOWN_S - 1
    assert gateway.breakers.is_open("m")
    clock.now += 2
    assert not gateway.breakers.is_open("m")


OUTCOMES = ("success", "failure", "bad_request", "cancel", "exception")


class BreakerMachine(RuleBasedStateMachine):
    """Calls start and end in any order with any outcome, as ``Gateway._with_retries`` makes
    them (begin; success, failure or nothing; end); time passes in between."""

    THRESHOLD = 3

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.breakers = CircuitBreakers(self.THRESHOLD, COOLDOWN_S, clock=self.clock)
        self.in_flight: list[tuple[int, float]] = []  # (token, started at)
        self.consecutive = 0
        self.last_failure = -1e9

    @rule()
    def a_routed_call_starts(self) -> None:
        if not self.breakers.is_open("m"):  # the selector only sends calls to available models
            self.in_flight.append((self.breakers.begin("m"), self.clock.now))

    @rule()
    def a_call_routed_earlier_starts(self) -> None:  # decided before the breaker opened
        self.in_flight.append((self.breakers.begin("m"), self.clock.now))

    @precondition(lambda self: bool(self.in_flight))
    @rule(which=st.integers(min_value=0), outcome=st.sampled_from(OUTCOMES))
    def a_call_ends(self, which: int, outcome: str) -> None:
        token, _ = self.in_flight.pop(which % len(self.in_flight))
        if outcome in ("success", "bad_request"):  # a 4xx means the provider answered
            self.breakers.success("m")
            self.consecutive = 0
        elif outcome == "failure":
            self.breakers.failure("m")
            self.consecutive += 1
            self.last_failure = self.clock.now
        self.breakers.end("m", token)

    @rule(seconds=st.sampled_from([0.5, 5.0, COOLDOWN_S - 1, COOLDOWN_S, 2 * COOLDOWN_S]))
    def time_passes(self, seconds: float) -> None:
        self.clock.now += seconds

    @invariant()
    def open_right_after_enough_failures(self) -> None:
        if self.consecutive >= self.THRESHOLD and self.clock.now - self.last_failure < COOLDOWN_S:
            assert self.breakers.is_open("m")

    @invariant()
    def closed_while_failures_stay_below_the_threshold(self) -> None:
        if self.consecutive < self.THRESHOLD:
            assert self.breakers.status("m") == "closed"
            assert not self.breakers.is_open("m")

    @invariant()
    def every_probe_resolves_when_its_call_ends(self) -> None:
        if not self.in_flight:
            assert not self.breakers.probing("m")

    @invariant()
    def never_open_past_the_cooldown_without_a_live_probe(self) -> None:
        live = [t for t, started in self.in_flight if self.clock.now - started < COOLDOWN_S]
        if not live and self.clock.now - self.last_failure >= COOLDOWN_S:
            assert not self.breakers.is_open("m")

    @invariant()
    def nothing_stays_unavailable_for_good(self) -> None:
        later = self.clock.now
        self.clock.now += 2 * COOLDOWN_S  # whatever is in flight by then counts as lost
        assert not self.breakers.is_open("m")
        self.clock.now = later


TestBreakerMachine = BreakerMachine.TestCase
TestBreakerMachine.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)

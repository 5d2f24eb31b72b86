"""The gateway's call path: retries on one model, then fallback down the selector's order.

Retry only what is safe: errors the adapters mark ``retryable`` (connect errors, timeouts,
408/409/429/5xx), and for streams only before the first chunk. Backoff is exponential with full
jitter, and a provider's ``Retry-After`` wins when it is longer; a Retry-After longer than
``backoff_max_s`` means "go elsewhere now". Non-retryable provider errors (a 400 the provider
rejected) go straight back to the client: another model would reject the same request.
Once a stream has begun, a failure ends it with an error event -- never a silent switch.

Deadlines: a request may carry one (``/noa`` does, 8 s by default). Each model then gets the
time that is left minus a reserve for the next model in line (its observed median latency,
at least ``MIN_RESERVE_S``, at most half of what is left), so a slow upstream is abandoned in
time for a fallback to answer; a retry whose backoff would not fit is skipped.
Hedging: when a deadline is set and the model has taken ``HEDGE_AFTER_MEDIANS`` times its
observed median (it is in its slow tail), the next model is started alongside it and whichever
answers first wins (the other call is cancelled). That costs a second call only on the slow
tail, and only once the model has a latency record to judge by.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from adapters.base import ChatAdapter
from app.breaker import CircuitBreakers
from app.errors import UpstreamAuthError, UpstreamBadRequest, UpstreamError, UpstreamTimeout
from app.latency import LatencyTracker
from app.schemas import ChatChunk, ChatCompletion, ChatRequest

T = TypeVar("T")
_Call = Callable[[str, ChatRequest], Awaitable[T]]
Prepare = Callable[[str, ChatRequest], ChatRequest]
"""Adapts the request to one model (e.g. drops image parts for a model without vision)."""

MIN_RESERVE_S = 1.0
HEDGE_AFTER_MEDIANS = 3.0
"""A call that has taken this many times its model's median is in the slow tail: hedge it."""
MIN_HEDGE_S = 0.2


@dataclass
class Attempt:
    """What happened on the way to an answer: the model that answered, and who failed first."""

    model: str = ""
    fallbacks: list[str] = field(default_factory=list)
    upstream_s: float = 0.0
    """Seconds spent waiting on providers (incl. backoff): the part that is not overhead."""
    hedged: list[str] = field(default_factory=list)
    """Models started alongside a slow one (whichever answered first won)."""


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 2
    max_fallbacks: int = 2
    backoff_base_s: float = 0.25
    backoff_max_s: float = 4.0

    def delay(self, attempt: int, error: UpstreamError) -> float | None:
        """Seconds to wait before retry number ``attempt`` (0-based), or None to move on."""
        if attempt >= self.retries:
            return None
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= self.backoff_max_s else None
        return random.uniform(0, min(self.backoff_max_s, self.backoff_base_s * 2**attempt))


@dataclass(frozen=True)
class _Plan(Generic[T]):
    """One gateway call: what to do per model, on which request, by when."""

    call: _Call[T]
    request: ChatRequest
    deadline: float | None = None
    prepare: Prepare | None = None


class Gateway:
    def __init__(
        self,
        adapters: Mapping[str, ChatAdapter],
        breakers: CircuitBreakers,
        policy: RetryPolicy,
        latency: LatencyTracker | None = None,
        *,
        hedge: bool = True,
    ) -> None:
        self.adapters = adapters
        self.breakers = breakers
        self.policy = policy
        self.latency = latency or LatencyTracker()
        self.hedge = hedge

    def _targets(self, order: list[str]) -> list[str]:
        return order[: 1 + self.policy.max_fallbacks]

    async def complete(
        self,
        request: ChatRequest,
        order: list[str],
        *,
        deadline: float | None = None,
        prepare: Prepare | None = None,
    ) -> tuple[ChatCompletion, Attempt]:
        """Answer with the first model in ``order`` that succeeds.

        ``deadline`` is a ``time.perf_counter()`` instant by which an answer is wanted.
        """
        attempt = Attempt()
        call = _Plan(self._complete_once, request, deadline, prepare)
        if deadline is not None:
            reply = await self._hedged(order, attempt, call)
        else:
            reply = await self._first_success(order, attempt, call)
        return reply, attempt

    async def open_stream(
        self,
        request: ChatRequest,
        order: list[str],
        *,
        deadline: float | None = None,
        prepare: Prepare | None = None,
    ) -> tuple[ChatChunk, AsyncGenerator[ChatChunk, None], Attempt]:
        """Start a stream: returns its first chunk, the rest, and which model is answering.

        Retries and fallback happen here, before anything reached the client.
        """
        attempt = Attempt()
        call = _Plan(self._first_chunk, request, deadline, prepare)
        first, rest = await self._first_success(order, attempt, call)
        return first, self._watch(attempt.model, rest), attempt

    async def _first_success(self, order: list[str], attempt: Attempt, plan: _Plan[T]) -> T:
        """Try the models in order (each with its retries); a provider's 400 stops at once."""
        last: UpstreamError | None = None
        targets = self._targets(order)
        for i, model in enumerate(targets):
            try:
                result = await self._with_retries(model, attempt, plan, targets[i + 1 :])
            except UpstreamBadRequest:
                raise
            except UpstreamError as exc:
                last = exc
                attempt.fallbacks.append(model)
                continue
            attempt.model = model
            return result
        assert last is not None, "the gateway needs at least one model to try"
        raise last

    async def _hedged(self, order: list[str], attempt: Attempt, plan: _Plan[T]) -> T:
        """Like ``_first_success``, but start the next model when the current one runs slow."""
        targets = self._targets(order)
        running: dict[asyncio.Task[T], str] = {}
        last: UpstreamError | None = None
        next_index = 0
        began = time.perf_counter()

        def start() -> None:
            nonlocal next_index
            model = targets[next_index]
            rest = targets[next_index + 1 :]
            next_index += 1
            task = asyncio.create_task(self._with_retries(model, attempt, plan, rest))
            running[task] = model

        start()
        try:
            while running:
                wait = self._hedge_after(running, targets[next_index:], plan)
                done, _ = await asyncio.wait(
                    running, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    attempt.hedged.append(targets[next_index])
                    start()
                    continue
                for task in done:
                    model = running.pop(task)
                    exc = task.exception()
                    if exc is None:
                        attempt.model = model
                        return task.result()
                    if isinstance(exc, UpstreamBadRequest) or not isinstance(exc, UpstreamError):
                        raise exc
                    last = exc
                    attempt.fallbacks.append(model)
                if not running and next_index < len(targets):
                    start()
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)
            attempt.upstream_s = time.perf_counter() - began  # parallel calls overlap: wall time
        assert last is not None, "the gateway needs at least one model to try"
        raise last

    def _hedge_after(
        self, running: Mapping[asyncio.Task[T], str], waiting: list[str], plan: _Plan[T]
    ) -> float | None:
        """Seconds to give the running call before starting the next model (None: no hedge)."""
        if not self.hedge or not waiting or len(running) > 1 or plan.deadline is None:
            return None
        usual = self.latency.expected_s(next(iter(running.values())))
        if usual is None:  # no record yet: nothing to call slow
            return None
        after = max(HEDGE_AFTER_MEDIANS * usual, MIN_HEDGE_S)
        return after if after < plan.deadline - time.perf_counter() else None

    async def _complete_once(self, model: str, request: ChatRequest) -> ChatCompletion:
        return await self.adapters[model].complete(request)

    async def _first_chunk(
        self, model: str, request: ChatRequest
    ) -> tuple[ChatChunk, AsyncGenerator[ChatChunk, None]]:
        stream = self.adapters[model].stream(request)
        try:
            first = await anext(stream)
        except StopAsyncIteration:
            first = ChatChunk()
        except BaseException:
            await stream.aclose()
            raise
        return first, stream

    def _budget(self, plan: _Plan[T], after: list[str]) -> float | None:
        """Seconds this model may take under the deadline, keeping a reserve for the next one."""
        if plan.deadline is None:
            return None
        left = plan.deadline - time.perf_counter()
        if not after:
            return left
        expected = self.latency.expected_s(after[0]) or 0.0
        return left - min(max(expected, MIN_RESERVE_S), left / 2)

    async def _with_retries(
        self, model: str, attempt: Attempt, plan: _Plan[T], after: list[str]
    ) -> T:
        """Call ``model`` (retrying what is retryable); ``after`` are the models behind it."""
        request = plan.prepare(model, plan.request) if plan.prepare else plan.request
        tries = 0
        while True:
            probe = self.breakers.begin(model)
            started = time.perf_counter()
            budget = self._budget(plan, after)
            try:
                if budget is not None and budget <= 0:
                    raise UpstreamTimeout(f"no time left for {model} before the deadline")
                async with asyncio.timeout(budget):
                    result = await plan.call(model, request)
            except (UpstreamError, TimeoutError) as raised:
                elapsed = time.perf_counter() - started
                attempt.upstream_s += elapsed
                exc = (
                    raised
                    if isinstance(raised, UpstreamError)
                    else UpstreamTimeout(f"{model} did not answer within the deadline")
                )
                if not isinstance(exc, UpstreamBadRequest):
                    self.breakers.failure(model)
                    self.latency.observe(model, elapsed, ok=False)
                else:  # the provider answered: it is up, whatever it thought of the request
                    self.breakers.success(model)
                delay = (
                    None
                    if not exc.retryable or isinstance(exc, UpstreamAuthError)
                    else (self.policy.delay(tries, exc))
                )
                if delay is not None and plan.deadline is not None:
                    left = plan.deadline - time.perf_counter()
                    delay = delay if delay < left / 2 else None
                if delay is None:
                    if exc is raised:
                        raise
                    raise exc from raised
                tries += 1
                attempt.upstream_s += delay
                await asyncio.sleep(delay)
                continue
            finally:  # a probe cancelled or failed by surprise must not stay in flight
                self.breakers.end(model, probe)
            elapsed = time.perf_counter() - started
            attempt.upstream_s += elapsed
            self.latency.observe(model, elapsed, ok=True)
            self.breakers.success(model)
            return result

    async def _watch(
        self, model: str, rest: AsyncGenerator[ChatChunk, None]
    ) -> AsyncGenerator[ChatChunk, None]:
        """Pass the stream through, telling the breaker how it ended."""
        try:
            async for chunk in rest:
                yield chunk
        except UpstreamError:
            self.breakers.failure(model)
            raise
        finally:
            await rest.aclose()

"""The gateway's call path: retries on one model, then fallback down the selector's order.

Retry only what is safe: errors the adapters mark ``retryable`` (connect errors, 408/409/429/
5xx), and for streams only before the first chunk. A timeout moves on to the next model rather
than retrying the same one, which may still be busy with the call it abandoned. Backoff is
exponential with full jitter, and a provider's ``Retry-After`` wins when it is longer; a
Retry-After longer than ``backoff_max_s`` means "go elsewhere now". Non-retryable provider
errors (a 400 the provider rejected) go straight back to the client: another model would reject
the same request.
Once a stream has begun, a failure ends it with an error event -- never a silent switch.

Every upstream call has a total deadline (the model's ``timeout_s`` for a reply, its
``stream_timeout_s`` for a whole stream), not only httpx's per-read timeout, so a provider that
trickles a byte a second cannot hold a request for ever. Each call takes a slot first
(``app.gateway.capacity``); a model with no free slot is skipped for the next one, which is not
the provider's fault (no breaker, no retry).

Deadlines: a request may carry one (``/noa`` does, 8 s by default). Each model then gets the
time that is left minus a reserve for the next model in line (its observed median latency,
at least ``MIN_RESERVE_S``, at most half of what is left), so a slow upstream is abandoned in
time for a fallback to answer; a retry whose backoff would not fit is skipped.
Hedging: when a deadline is set and the model has taken ``HEDGE_AFTER_MEDIANS`` times its
observed median (it is in its slow tail), the next model is started alongside it and whichever
answers first wins (the other call is cancelled). At most ``max_hedges`` extra calls per request.

Money: every call the gateway makes is in ``Attempt.calls`` with how it ended, because providers
bill calls that were abandoned (a timeout, a hedge's loser) as well as the one that answered.
A call that may be billed while another is already covered by the caller's budget hold needs
``Plan.hold_more`` to say yes first (the pipeline reserves more of the budget there).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from opentelemetry.trace import Span

from adapters.base import ChatAdapter
from app.errors import UpstreamAuthError, UpstreamBadRequest, UpstreamError, UpstreamTimeout
from app.gateway.breaker import CircuitBreakers
from app.gateway.capacity import Capacity, Limit
from app.gateway.latency import LatencyTracker
from app.schemas import ChatChunk, ChatCompletion, ChatRequest, Usage
from app.telemetry import NO_TRACING, Tracing, fail, usage_attributes

T = TypeVar("T")
Prepare = Callable[[str, ChatRequest], ChatRequest]
"""Fits the request to one model (e.g. images become a note for a model without vision)."""
HoldMore = Callable[[str], Awaitable[bool]]
"""Asked before a call that may be billed on top of those already covered; False: do not."""

MIN_RESERVE_S = 1.0
HEDGE_AFTER_MEDIANS = 3.0
"""A call that has taken this many times its model's median is in the slow tail: hedge it."""
MIN_HEDGE_S = 0.2
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_STREAM_TIMEOUT_S = 600.0
UNLIMITED = Limit(concurrency=10_000, queue=0, queue_timeout_s=0.0)

Outcome = Literal["running", "ok", "failed", "abandoned"]


@dataclass
class UpstreamCall:
    """One request sent (or about to be sent) to a provider, and how it ended.

    ``failed``: the provider refused or could not be reached (not billed); ``abandoned``: we
    stopped waiting (a timeout, a cancelled hedge, a dropped stream): billed as far as it went;
    ``ok``: answered, and ``usage`` (when the provider reported it) is the bill.
    """

    model: str
    outcome: Outcome = "running"
    usage: Usage | None = None
    queued_s: float = 0.0
    elapsed_s: float = 0.0
    """Seconds the provider took (queueing for a slot excluded)."""
    span: Span | None = field(default=None, repr=False)

    @property
    def billable(self) -> bool:
        return self.outcome != "failed"

    def end(self, error: BaseException | None = None) -> None:
        """Close the call's trace span (once), with how it ended."""
        span, self.span = self.span, None
        if span is None:
            return
        span.set_attribute("switchboard.outcome", self.outcome)
        usage_attributes(span, self.usage)
        if error is not None:
            fail(span, error)
        span.end()


@dataclass
class Attempt:
    """What happened on the way to an answer: the model that answered, and who failed first."""

    model: str = ""
    fallbacks: list[str] = field(default_factory=list)
    upstream_s: float = 0.0
    """Seconds spent waiting on providers (incl. backoff and queueing): not Switchboard's time."""
    hedged: list[str] = field(default_factory=list)
    """Models started alongside a slow one (whichever answered first won)."""
    calls: list[UpstreamCall] = field(default_factory=list)
    covered: int = 1
    """Billable calls the caller's budget hold covers (``Plan.hold_more`` raises it)."""

    def answering_call(self) -> UpstreamCall | None:
        """The call whose answer the client gets (the last ``ok`` or running one on ``model``)."""
        return next(
            (
                c
                for c in reversed(self.calls)
                if c.model == self.model and c.outcome in ("ok", "running")
            ),
            None,
        )


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
class Plan:
    """How to make one gateway call: by when, fitted how, and who approves extra billed calls."""

    deadline: float | None = None
    """A ``time.perf_counter()`` instant by which an answer is wanted."""
    prepare: Prepare | None = None
    hold_more: HoldMore | None = None
    max_hedges: int = 1


def _verdict(error: BaseException) -> bool | None:
    """What a failed call says about the provider: up (True), failing (False), nothing (None)."""
    if isinstance(error, UpstreamBadRequest):
        return True  # it answered: it is up, whatever it thought of the request
    if isinstance(error, UpstreamError) and error.provider_fault:
        return False
    return None  # cancelled, our own limit, a bug: no evidence either way


@dataclass(frozen=True)
class _Job(Generic[T]):
    call: Callable[[str, ChatRequest, UpstreamCall], Awaitable[T]]
    request: ChatRequest
    plan: Plan


@dataclass(frozen=True)
class ModelLimits:
    """Per-model totals from the catalog."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    stream_timeout_s: float = DEFAULT_STREAM_TIMEOUT_S


class Gateway:
    def __init__(
        self,
        adapters: Mapping[str, ChatAdapter],
        breakers: CircuitBreakers,
        policy: RetryPolicy,
        latency: LatencyTracker | None = None,
        *,
        hedge: bool = True,
        capacity: Capacity | None = None,
        limits: Mapping[str, ModelLimits] | None = None,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        self.adapters = adapters
        self.breakers = breakers
        self.policy = policy
        self.latency = latency or LatencyTracker()
        self.hedge = hedge
        self.capacity = capacity or Capacity({}, UNLIMITED)
        self.limits = dict(limits or {})
        self.tracing = tracing

    def _targets(self, order: list[str]) -> list[str]:
        return order[: 1 + self.policy.max_fallbacks]

    def _limits(self, model: str) -> ModelLimits:
        return self.limits.get(model) or ModelLimits()

    async def complete(
        self,
        request: ChatRequest,
        order: list[str],
        plan: Plan | None = None,
        attempt: Attempt | None = None,
    ) -> tuple[ChatCompletion, Attempt]:
        """Answer with the first model in ``order`` that succeeds.

        ``attempt`` (a new one if not given) records every call made, also when this raises.
        """
        plan = plan or Plan()
        attempt = attempt if attempt is not None else Attempt()
        job = _Job(self._complete_once, request, plan)
        if plan.deadline is not None:
            reply = await self._hedged(order, attempt, job)
        else:
            reply = await self._first_success(order, attempt, job)
        return reply, attempt

    async def open_stream(
        self,
        request: ChatRequest,
        order: list[str],
        plan: Plan | None = None,
        attempt: Attempt | None = None,
    ) -> tuple[ChatChunk, AsyncGenerator[ChatChunk, None], Attempt]:
        """Start a stream: returns its first chunk, the rest, and which model is answering.

        Retries and fallback happen here, before anything reached the client. The caller must
        close the returned generator (it holds the model's slot until then).
        """
        plan = plan or Plan()
        attempt = attempt if attempt is not None else Attempt()
        job = _Job(self._first_chunk, request, plan)
        first, rest = await self._first_success(order, attempt, job)
        return first, rest, attempt

    async def _first_success(self, order: list[str], attempt: Attempt, job: _Job[T]) -> T:
        """Try the models in order (each with its retries); a provider's 400 stops at once."""
        last: UpstreamError | None = None
        targets = self._targets(order)
        for i, model in enumerate(targets):
            try:
                result = await self._with_retries(model, attempt, job, targets[i + 1 :])
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

    async def _hedged(self, order: list[str], attempt: Attempt, job: _Job[T]) -> T:
        """Like ``_first_success``, but start the next model when the current one runs slow."""
        targets = self._targets(order)
        running: dict[asyncio.Task[T], str] = {}
        last: UpstreamError | None = None
        next_index = 0
        hedges = 0
        began = time.perf_counter()

        def start() -> None:
            nonlocal next_index
            model = targets[next_index]
            rest = targets[next_index + 1 :]
            next_index += 1
            task = asyncio.create_task(self._with_retries(model, attempt, job, rest))
            running[task] = model

        start()
        try:
            while running:
                wait = self._hedge_after(running, targets[next_index:], job.plan, hedges)
                done, _ = await asyncio.wait(
                    running, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    hedges += 1  # counted even when refused: one try per request
                    if await self._may_bill_another(attempt, job.plan, targets[next_index]):
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
        self, running: Mapping[asyncio.Task[T], str], waiting: list[str], plan: Plan, hedges: int
    ) -> float | None:
        """Seconds to give the running call before starting the next model (None: no hedge)."""
        if not self.hedge or not waiting or len(running) > 1 or plan.deadline is None:
            return None
        if hedges >= plan.max_hedges:
            return None
        usual = self.latency.expected_s(next(iter(running.values())))
        if usual is None:  # no record yet: nothing to call slow
            return None
        after = max(HEDGE_AFTER_MEDIANS * usual, MIN_HEDGE_S)
        return after if after < plan.deadline - time.perf_counter() else None

    @staticmethod
    async def _may_bill_another(attempt: Attempt, plan: Plan, model: str) -> bool:
        """Whether one more call that may be billed is approved (always, without a guard)."""
        billable = sum(1 for c in attempt.calls if c.billable)
        if billable < attempt.covered or plan.hold_more is None:
            return True
        if not await plan.hold_more(model):
            return False
        attempt.covered += 1
        return True

    async def _complete_once(
        self, model: str, request: ChatRequest, record: UpstreamCall
    ) -> ChatCompletion:
        async with self.capacity.slot(model) as queued_s:
            record.queued_s = queued_s
            async with asyncio.timeout(self._limits(model).timeout_s):
                reply = await self.adapters[model].complete(request)
        record.usage = reply.usage
        record.outcome = "ok"
        return reply

    async def _first_chunk(
        self, model: str, request: ChatRequest, record: UpstreamCall
    ) -> tuple[ChatChunk, AsyncGenerator[ChatChunk, None]]:
        stream = self._stream(model, request, record)
        try:
            async with asyncio.timeout(self._limits(model).timeout_s):
                first = await anext(stream)
        except StopAsyncIteration:
            first = ChatChunk()
        except BaseException:
            await stream.aclose()
            raise
        return first, stream

    async def _stream(
        self, model: str, request: ChatRequest, record: UpstreamCall
    ) -> AsyncGenerator[ChatChunk, None]:
        """The model's stream inside its capacity slot and total deadline; breaker told of a
        failure after the first chunk. An empty stream yields nothing."""
        loop = asyncio.get_running_loop()
        async with self.capacity.slot(model) as queued_s:
            record.queued_s = queued_s
            ends = loop.time() + self._limits(model).stream_timeout_s
            upstream = self.adapters[model].stream(request)
            yielded = False
            try:
                while True:
                    try:
                        async with asyncio.timeout_at(ends):
                            chunk = await anext(upstream)
                    except StopAsyncIteration:
                        return
                    except TimeoutError:
                        raise UpstreamTimeout(
                            f"{model} did not finish its stream within "
                            f"{self._limits(model).stream_timeout_s:g} s"
                        ) from None
                    yield chunk
                    yielded = True
            except UpstreamError as exc:
                if exc.provider_fault and yielded:  # before the first chunk, _once tells it
                    self.breakers.failure(model)
                raise
            finally:
                await upstream.aclose()

    def _budget(self, plan: Plan, after: list[str]) -> float | None:
        """Seconds this model may take under the deadline, keeping a reserve for the next one."""
        if plan.deadline is None:
            return None
        left = plan.deadline - time.perf_counter()
        if not after:
            return left
        expected = self.latency.expected_s(after[0]) or 0.0
        return left - min(max(expected, MIN_RESERVE_S), left / 2)

    async def _with_retries(
        self, model: str, attempt: Attempt, job: _Job[T], after: list[str]
    ) -> T:
        """Call ``model`` (retrying what is retryable); ``after`` are the models behind it."""
        plan = job.plan
        request = plan.prepare(model, job.request) if plan.prepare else job.request
        tries = 0
        while True:
            if attempt.calls and not await self._may_bill_another(attempt, plan, model):
                raise UpstreamTimeout(
                    f"{model} not tried: the caller's budget covers no further billed call"
                )
            record = UpstreamCall(model, span=self.tracing.upstream(model))
            attempt.calls.append(record)
            try:
                result = await self._once(model, request, record, job, self._budget(plan, after))
            except UpstreamError as exc:
                attempt.upstream_s += self._elapsed(record)
                delay = None if not self._retry_here(exc) else self.policy.delay(tries, exc)
                if delay is not None and plan.deadline is not None:
                    left = plan.deadline - time.perf_counter()
                    delay = delay if delay < left / 2 else None
                if delay is None:
                    raise
                tries += 1
                attempt.upstream_s += delay
                await asyncio.sleep(delay)
                continue
            attempt.upstream_s += self._elapsed(record)
            return result

    async def _once(
        self, model: str, request: ChatRequest, record: UpstreamCall, job: _Job[T],
        budget: float | None,
    ) -> T:  # fmt: skip
        """One call: breaker told how it ended on every path (a probe never stays in flight)."""
        probe = self.breakers.begin(model)
        started = time.perf_counter()
        verdict: bool | None = None  # True: the provider is up, False: it failed, None: no word
        error: BaseException | None = None
        try:
            if budget is not None and budget <= 0:
                raise UpstreamTimeout(f"no time left for {model} before the deadline")
            try:
                async with asyncio.timeout(budget):
                    result = await job.call(model, request, record)
            except TimeoutError:
                record.outcome = "abandoned"
                raise UpstreamTimeout(f"{model} did not answer within the deadline") from None
            except UpstreamTimeout:
                record.outcome = "abandoned"
                raise
            except UpstreamError:
                record.outcome = "failed"
                raise
            except BaseException:  # cancelled (a hedge's loser, a client gone) or a bug
                record.outcome = "abandoned"
                raise
            verdict = True
            return result
        except BaseException as exc:
            error, verdict = exc, _verdict(exc)
            raise
        finally:
            record.elapsed_s = time.perf_counter() - started - record.queued_s
            if record.outcome != "running":  # a stream's call ends when the stream does
                record.end(error)
            if verdict is True:
                if error is None:
                    self.latency.observe(model, record.elapsed_s, ok=True)
                self.breakers.success(model)
            elif verdict is False:
                self.latency.observe(model, record.elapsed_s, ok=False)
                self.breakers.failure(model)
            self.breakers.end(model, probe)  # a probe cancelled or failed by surprise is released

    @staticmethod
    def _retry_here(error: UpstreamError) -> bool:
        """Whether to try the same model again. Not after a timeout: the abandoned call may still
        be running there (a llama.cpp server goes on generating it), so a retry would queue
        behind it; the next model in line is the better bet."""
        return error.retryable and not isinstance(error, UpstreamAuthError | UpstreamTimeout)

    @staticmethod
    def _elapsed(record: UpstreamCall) -> float:
        return record.elapsed_s + record.queued_s

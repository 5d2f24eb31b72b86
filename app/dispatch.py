"""The gateway's call path: retries on one model, then fallback down the selector's order.

Retry only what is safe: errors the adapters mark ``retryable`` (connect errors, timeouts,
408/409/429/5xx), and for streams only before the first chunk. Backoff is exponential with full
jitter, and a provider's ``Retry-After`` wins when it is longer; a Retry-After longer than
``backoff_max_s`` means "go elsewhere now". Non-retryable provider errors (a 400 the provider
rejected) go straight back to the client: another model would reject the same request.
Once a stream has begun, a failure ends it with an error event -- never a silent switch.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from adapters.base import ChatAdapter
from app.breaker import CircuitBreakers
from app.errors import UpstreamAuthError, UpstreamBadRequest, UpstreamError
from app.schemas import ChatChunk, ChatCompletion, ChatRequest

T = TypeVar("T")
_Call = Callable[[str, ChatRequest], Awaitable[T]]


@dataclass
class Attempt:
    """What happened on the way to an answer: the model that answered, and who failed first."""

    model: str = ""
    fallbacks: list[str] = field(default_factory=list)
    upstream_s: float = 0.0
    """Seconds spent waiting on providers (incl. backoff): the part that is not overhead."""


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


class Gateway:
    def __init__(
        self, adapters: Mapping[str, ChatAdapter], breakers: CircuitBreakers, policy: RetryPolicy
    ) -> None:
        self.adapters = adapters
        self.breakers = breakers
        self.policy = policy

    def _targets(self, order: list[str]) -> list[str]:
        return order[: 1 + self.policy.max_fallbacks]

    async def complete(
        self, request: ChatRequest, order: list[str]
    ) -> tuple[ChatCompletion, Attempt]:
        """Answer with the first model in ``order`` that succeeds."""
        attempt = Attempt()
        reply = await self._first_success(order, attempt, self._complete_once, request)
        return reply, attempt

    async def open_stream(
        self, request: ChatRequest, order: list[str]
    ) -> tuple[ChatChunk, AsyncIterator[ChatChunk], Attempt]:
        """Start a stream: returns its first chunk, the rest, and which model is answering.

        Retries and fallback happen here, before anything reached the client.
        """
        attempt = Attempt()
        first, rest = await self._first_success(order, attempt, self._first_chunk, request)
        return first, self._watch(attempt.model, rest), attempt

    async def _first_success(
        self, order: list[str], attempt: Attempt, call: _Call[T], request: ChatRequest
    ) -> T:
        """Try the models in order (each with its retries); a provider's 400 stops at once."""
        last: UpstreamError | None = None
        for model in self._targets(order):
            try:
                result = await self._with_retries(model, attempt, call, request)
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

    async def _complete_once(self, model: str, request: ChatRequest) -> ChatCompletion:
        return await self.adapters[model].complete(request)

    async def _first_chunk(
        self, model: str, request: ChatRequest
    ) -> tuple[ChatChunk, AsyncIterator[ChatChunk]]:
        stream = self.adapters[model].stream(request)
        try:
            first = await anext(stream)
        except StopAsyncIteration:
            first = ChatChunk()
        except BaseException:
            await stream.aclose()  # type: ignore[attr-defined]
            raise
        return first, stream

    async def _with_retries(
        self, model: str, attempt: Attempt, call: _Call[T], request: ChatRequest
    ) -> T:
        tries = 0
        while True:
            self.breakers.begin(model)
            started = time.perf_counter()
            try:
                result = await call(model, request)
            except UpstreamError as exc:
                attempt.upstream_s += time.perf_counter() - started
                if not isinstance(exc, UpstreamBadRequest):
                    self.breakers.failure(model)
                delay = (
                    None
                    if not exc.retryable or isinstance(exc, UpstreamAuthError)
                    else (self.policy.delay(tries, exc))
                )
                if delay is None:
                    raise
                tries += 1
                attempt.upstream_s += delay
                await asyncio.sleep(delay)
                continue
            attempt.upstream_s += time.perf_counter() - started
            self.breakers.success(model)
            return result

    async def _watch(self, model: str, rest: AsyncIterator[ChatChunk]) -> AsyncIterator[ChatChunk]:
        """Pass the stream through, telling the breaker how it ended."""
        try:
            async for chunk in rest:
                yield chunk
        except UpstreamError:
            self.breakers.failure(model)
            raise
        finally:
            await rest.aclose()  # type: ignore[attr-defined]

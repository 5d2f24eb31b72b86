"""The one request sequence every API runs: cache, route, admit, call, remember, record, settle.

Each API's router parses its wire format into a neutral ``Call`` (a ``ChatRequest`` plus who
is calling and under which deadline), runs it here with ``run`` (one answer) or ``stream``
(chunks), and shapes the ``ChatCompletion`` / ``ChatChunk``s and the ``Report`` back into its
own format. So routing, capabilities, budgets, keys, the cache, conversation memory, feedback,
the decision log, metrics and the ``x-switchboard-*`` headers behave the same on every API.

Money: admission holds the worst case of the first upstream call; every further call that may
be billed (a hedge, a retry after a timeout) holds more first (``Plan.hold_more``); when the
caller's budget or ``max_cost_usd`` applies, the output limit the hold assumed is sent
upstream, so a reply cannot run past it. Whatever happens after admission -- an answer, a
provider error, a bug, a client that leaves mid-stream -- the request is recorded and settled
exactly once, from the usage each call reported or its estimate.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.trace import Span

from app.catalog import Catalog
from app.embedding.batcher import EmbeddingService
from app.embedding.encoder import count_tokens
from app.errors import RequestError, SwitchboardError
from app.gateway.dispatch import Attempt, Gateway, Plan
from app.gateway.fitting import fitter
from app.pipeline.access import Caller
from app.pipeline.accounting import Outcome, Recorder
from app.pipeline.conversation import Conversations
from app.pipeline.decisions import AUTO_MODELS, Decider, Routed
from app.pipeline.ledger import Ledger, Outbox
from app.pipeline.response_cache import ResponseCache
from app.pipeline.streaming import Pump, Tally
from app.schemas import ChatChunk, ChatCompletion, ChatRequest, Usage
from app.selection.selector import Decision
from app.state import StateStore
from app.telemetry import NO_TRACING, Tracing, fail, usage_attributes

PRICED_FIELDS = {
    "service_tier": ("auto", "default"),
    "web_search_options": (),
    "prediction": (),
}
"""Fields that make a call cost more than its tokens x list price, and the values that do not.
A budgeted key may not send the others: the hold could not bound the bill."""


@dataclass(frozen=True)
class Limits:
    """The pipeline's settings."""

    fail_open: bool = True
    default_output_tokens: int = 300
    max_fallbacks: int = 2
    max_hedges: int = 1


@dataclass(frozen=True)
class Call:
    """One request to answer, in neutral form: what every API's router builds."""

    request: ChatRequest
    caller: Caller
    api: str = "chat"
    started: float = field(default_factory=time.perf_counter)
    deadline_s: float | None = None
    """A deadline set by the server for this API (``/noa``); the caller's own is
    ``switchboard.max_latency_ms`` in the request."""
    remember: bool = True
    """Keep what answered for follow-ups (conversation memory; ``auto`` only)."""


@dataclass
class Report:
    """What happened: for the ``x-switchboard-*`` headers and the body's ``switchboard`` object."""

    routed: Routed | None
    attempt: Attempt | None
    rate_headers: dict[str, str]
    overhead_s: float
    cost_usd: float | None = None
    cache: str | None = None

    @property
    def model(self) -> str:
        if self.attempt is not None and self.attempt.model:
            return self.attempt.model
        return (self.routed.decision.model if self.routed else None) or ""

    @property
    def decision(self) -> Decision | None:
        return self.routed.decision if self.routed else None

    def headers(self) -> dict[str, str]:
        headers = {"x-switchboard-model": self.model}
        if self.routed is not None:
            headers["x-switchboard-decision-id"] = self.routed.decision.decision_id
        headers["x-switchboard-overhead-ms"] = f"{self.overhead_s * 1000:.2f}"
        if self.attempt is not None:
            headers["x-switchboard-fallbacks"] = ",".join(self.attempt.fallbacks)
        if self.cost_usd is not None:
            headers["x-switchboard-cost-usd"] = f"{self.cost_usd:.8f}"
        if self.cache is not None:
            headers["x-switchboard-cache"] = self.cache
        return headers | self.rate_headers

    def body(self) -> dict[str, object]:
        """The ``switchboard`` object formats with room for one put in their reply."""
        return {
            "model": self.model,
            "decision_id": self.routed.decision.decision_id if self.routed else None,
            "cost_usd": self.cost_usd,
            "overhead_ms": round(self.overhead_s * 1000, 2),
            "fallbacks": list(self.attempt.fallbacks) if self.attempt else [],
            "cache": self.cache,
        }


@dataclass
class Answer:
    completion: ChatCompletion
    report: Report


@dataclass
class Streamed:
    """A stream that has begun: the report so far, and the chunks (ending with a usage chunk)."""

    report: Report
    pump: Pump
    completion_id: str
    prompt_tokens: int

    async def chunks(self) -> AsyncIterator[ChatChunk]:
        """The chunks, the model set on each; then one usage-only chunk (the provider's, or an
        estimate). A provider failure after the first chunk raises ``UpstreamError`` (shape it
        as a final error event). Stopping early (or being cancelled) stops the upstream call."""
        try:
            async for chunk in self.pump.chunks():
                yield chunk
            if self.tally.usage is None:
                usage = Completions._stream_usage(self.tally, self.prompt_tokens)
                yield ChatChunk(id=self.completion_id, model=self.report.model, usage=usage)
        finally:
            self.pump.stop()

    @property
    def tally(self) -> Tally:
        return self.pump.tally


@dataclass
class Completions:
    """The request pipeline (see the module docstring), over the collaborators it uses."""

    catalog: Catalog
    decider: Decider
    gateway: Gateway
    store: StateStore
    outbox: Outbox
    recorder: Recorder
    conversations: Conversations
    cache_vectors: EmbeddingService
    """What the response cache compares: the transformer's vectors (static ones cannot tell a
    paraphrase from a question about another thing: "France" and "Spain" 0.93)."""
    cache: ResponseCache | None
    limits: Limits
    tracing: Tracing = NO_TRACING
    streams: set[asyncio.Task[None]] = field(default_factory=set)
    """Streams whose upstream reading or accounting is still running."""

    def _ledger(self, caller: Caller) -> Ledger:
        return Ledger(caller, self.store, self.outbox, self.limits.fail_open)

    async def explain(self, call: Call) -> tuple[Decision, dict[str, str]]:
        """The decision without the call (``/v1/route``); it counts against the rate limit."""
        ledger = self._ledger(call.caller)
        await ledger.admit(0, 0.0)
        decision = await self.decider.explain(call.request, call.caller, deadline_s=call.deadline_s)
        return decision, ledger.headers

    async def run(self, call: Call) -> Answer:
        """One answer for ``call``: from the cache, or from the first model that gives one."""
        span = self.tracing.request(call.api, call.request.model)
        try:
            with trace.use_span(span, end_on_exit=False):
                answer = await self._run(call, span)
        except BaseException as exc:
            fail(span, exc)
            raise
        finally:
            span.end()
        return answer

    async def _run(self, call: Call, span: Span) -> Answer:
        request = call.request
        if self.cache is not None:
            hit = await self._from_cache(call)
            if hit is not None:
                return hit
        routed = await self.decider.route(request, call.caller, deadline_s=call.deadline_s)
        ledger = self._ledger(call.caller)
        output_cap = await self._admit(ledger, call, routed)
        attempt = Attempt()
        outcome = Outcome(routed, attempt, None, 0.0, api=call.api, key_name=call.caller.name,
                          output_estimate=self._output_tokens(request))  # fmt: skip
        try:
            completion, _ = await self.gateway.complete(
                request, routed.order, self._plan(call, routed, ledger, output_cap), attempt
            )
        except BaseException as exc:
            outcome.error = exc if isinstance(exc, SwitchboardError) else None
            outcome.elapsed_s = time.perf_counter() - call.started
            await ledger.settle(self.recorder.record(outcome))
            raise
        completion.model = attempt.model
        try:
            if call.remember and request.model in AUTO_MODELS and completion.choices:
                answer = completion.choices[0].message.content or ""
                await self.conversations.remember(
                    call.caller.tenant, request.messages, answer, attempt.model,
                    routed.decision.capabilities,
                )  # fmt: skip
        finally:
            outcome.elapsed_s = time.perf_counter() - call.started
            cost = self.recorder.record(outcome)
            await ledger.settle(cost)
        report = Report(routed, attempt, ledger.headers, outcome.overhead_s, cost)
        _describe(span, report, completion.usage)
        if self.cache is not None and call.caller.tenant is not None:
            report.cache = "miss"
            await self._to_cache(call, completion)
        return Answer(completion, report)

    async def stream(self, call: Call) -> Streamed:
        """Open a stream for ``call``: retries and fallback happen before the first chunk."""
        span = self.tracing.request(call.api, call.request.model)
        try:
            with trace.use_span(span, end_on_exit=False):
                return await self._stream(call, span)
        except BaseException as exc:
            fail(span, exc)
            span.end()
            raise

    async def _stream(self, call: Call, span: Span) -> Streamed:
        request = call.request
        routed = await self.decider.route(request, call.caller, deadline_s=call.deadline_s)
        ledger = self._ledger(call.caller)
        output_cap = await self._admit(ledger, call, routed)
        attempt = Attempt()
        outcome = Outcome(routed, attempt, None, 0.0, api=call.api, key_name=call.caller.name,
                          streamed=True, output_estimate=self._output_tokens(request))  # fmt: skip
        try:
            first, rest, _ = await self.gateway.open_stream(
                request, routed.order, self._plan(call, routed, ledger, output_cap), attempt
            )
        except BaseException as exc:
            outcome.error = exc if isinstance(exc, SwitchboardError) else None
            outcome.elapsed_s = time.perf_counter() - call.started
            await ledger.settle(self.recorder.record(outcome))
            raise
        overhead_s = time.perf_counter() - call.started - attempt.upstream_s
        outcome.overhead_override_s = overhead_s
        report = Report(routed, attempt, ledger.headers, overhead_s)

        async def finish(tally: Tally) -> None:
            call_record = attempt.answering_call()
            usage = self._stream_usage(tally, routed.decision.prompt_tokens)
            if call_record is not None:
                call_record.usage = usage
                call_record.outcome = "ok" if tally.finished else "abandoned"
                call_record.end(tally.error)
            outcome.error = tally.error
            outcome.elapsed_s = time.perf_counter() - call.started
            try:
                if tally.finished and call.remember and request.model in AUTO_MODELS:
                    await self.conversations.remember(
                        call.caller.tenant, request.messages, "".join(tally.text),
                        attempt.model, routed.decision.capabilities,
                    )  # fmt: skip
            finally:
                report.cost_usd = self.recorder.record(outcome)
                _describe(span, report, usage)
                if tally.error is not None:
                    fail(span, tally.error)
                span.end()
                await ledger.settle(report.cost_usd)

        first.model = attempt.model
        pump = Pump(first, _models(rest, attempt.model, first.id), finish, self.streams)
        return Streamed(report, pump, first.id, routed.decision.prompt_tokens)

    @staticmethod
    def _stream_usage(tally: Tally, prompt_tokens: int) -> Usage:
        """The provider's usage, else an estimate from what was sent (llama.cpp reports none)."""
        if tally.usage is not None and tally.usage.usage is not None:
            return tally.usage.usage
        text = "".join(tally.text)
        completion = count_tokens(text) if text else 0
        return Usage(prompt_tokens=prompt_tokens, completion_tokens=completion,
                     total_tokens=prompt_tokens + completion)  # fmt: skip

    def _output_tokens(self, request: ChatRequest) -> int:
        return request.output_limit() or self.limits.default_output_tokens

    async def _admit(self, ledger: Ledger, call: Call, routed: Routed) -> int | None:
        """Hold the first call's worst case; return the output limit to send (None: the
        caller's own), so that a budgeted call cannot run past what was held."""
        request = call.request
        prefs = request.switchboard
        bounded = ledger.budgeted or (prefs is not None and prefs.max_cost_usd is not None)
        if ledger.budgeted:
            self._refuse_unpriced(request)
        output = self._output_tokens(request)
        tokens = routed.decision.prompt_tokens + output
        worst = 0.0
        for model in routed.order[: 1 + self.limits.max_fallbacks]:
            entry = self.catalog.get(model)
            if entry is not None:
                worst = max(worst, entry.cost_usd(routed.decision.prompt_tokens, output))
        await ledger.admit(tokens, worst)
        return output if bounded else None

    @staticmethod
    def _refuse_unpriced(request: ChatRequest) -> None:
        for name, value in (request.model_extra or {}).items():
            allowed = PRICED_FIELDS.get(name)
            if allowed is None:
                raise RequestError(
                    f"{name}: unknown field; keys with a budget may send only the documented "
                    "Chat Completions fields",
                    param=name,
                )
            if value not in allowed:
                raise RequestError(
                    f"{name}: {value!r} is billed beyond tokens and cannot be held against the "
                    "key's budget",
                    param=name,
                )

    def _plan(self, call: Call, routed: Routed, ledger: Ledger, output_cap: int | None) -> Plan:
        seconds = routed.decision.deadline_s
        deadline = None if seconds is None else call.started + seconds
        prompt = routed.decision.prompt_tokens
        output = self._output_tokens(call.request)

        async def hold_more(model: str) -> bool:
            entry = self.catalog.get(model)
            return await ledger.hold_more(entry.cost_usd(prompt, output) if entry else 0.0)

        return Plan(
            deadline=deadline,
            prepare=fitter(self.catalog, output_cap),
            hold_more=hold_more,
            max_hedges=self.limits.max_hedges,
        )

    async def _from_cache(self, call: Call) -> Answer | None:
        assert self.cache is not None
        request = call.request
        if call.caller.tenant is None:  # anonymous callers share nothing
            return None
        embedding = await self.cache_vectors.embed(request.prompt_text())
        hit = await self.cache.get(request, call.caller.tenant, embedding)
        if hit is None:
            return None
        # A cached answer costs nothing upstream, but it is still a request: the key's rate
        # limit counts it (and a spent budget refuses it, as it would any call).
        ledger = self._ledger(call.caller)
        await ledger.admit(0, 0.0)
        await ledger.settle(0.0)
        cached = json.loads(hit)
        completion = ChatCompletion.model_validate(cached["completion"])
        elapsed = time.perf_counter() - call.started
        self.recorder.cache_hit(completion.model, elapsed, call.caller.name, call.api)
        report = Report(None, None, ledger.headers, elapsed, 0.0, cache="hit")
        report.attempt = Attempt(model=completion.model)
        return Answer(completion, report)

    async def _to_cache(self, call: Call, completion: ChatCompletion) -> None:
        assert self.cache is not None and call.caller.tenant is not None
        embedding = await self.cache_vectors.embed(call.request.prompt_text(), shed=False)
        payload = json.dumps({"completion": completion.model_dump(mode="json")})
        await self.cache.put(call.request, call.caller.tenant, embedding, payload)

    async def drain(self) -> None:
        """At shutdown: let open streams finish their accounting."""
        if self.streams:
            await asyncio.gather(*list(self.streams), return_exceptions=True)


def _describe(span: Span, report: Report, usage: Usage | None) -> None:
    """What the request span says once the request is done."""
    span.set_attribute("gen_ai.response.model", report.model)
    if report.routed is not None:
        span.set_attribute("switchboard.decision_id", report.routed.decision.decision_id)
    if report.attempt is not None:
        span.set_attribute("switchboard.fallbacks", list(report.attempt.fallbacks))
        span.set_attribute("switchboard.upstream_calls", len(report.attempt.calls))
    if report.cost_usd is not None:
        span.set_attribute("switchboard.cost_usd", report.cost_usd)
    span.set_attribute("switchboard.overhead_ms", round(report.overhead_s * 1000, 3))
    usage_attributes(span, usage)


async def _models(
    rest: AsyncGenerator[ChatChunk, None], model: str, completion_id: str
) -> AsyncGenerator[ChatChunk, None]:
    try:
        async for chunk in rest:
            chunk.model = model
            chunk.id = chunk.id or completion_id
            yield chunk
    finally:
        await rest.aclose()

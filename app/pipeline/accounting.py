"""What a finished request cost and how it went, recorded in one place: metrics, decision log.

Cost is the sum over every upstream call the gateway made for the request
(``Attempt.calls``): a call's reported usage x the catalog price; a call abandoned without usage
(a timeout, a hedge's loser, a dropped stream) at the estimate for its model, since providers bill
those too; a call the provider refused costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.catalog import Catalog
from app.errors import SwitchboardError
from app.gateway.dispatch import Attempt, UpstreamCall
from app.metrics import Metrics
from app.pipeline.decision_log import Call, DecisionLog
from app.pipeline.decisions import Routed
from app.schemas import Usage


@dataclass
class Outcome:
    routed: Routed
    attempt: Attempt | None
    error: SwitchboardError | None
    elapsed_s: float
    api: str = "chat"
    streamed: bool = False
    overhead_override_s: float | None = None
    key_name: str | None = None
    output_estimate: int = 300
    """Output tokens assumed for a billed call that reported no usage."""

    @property
    def usage(self) -> Usage | None:
        """The answering call's usage (what the client is shown)."""
        call = self.attempt.answering_call() if self.attempt else None
        return call.usage if call else None

    @property
    def overhead_s(self) -> float:
        """Time spent in Switchboard itself: everything but waiting on providers."""
        if self.overhead_override_s is not None:
            return self.overhead_override_s
        upstream = self.attempt.upstream_s if self.attempt else 0.0
        return max(0.0, self.elapsed_s - upstream)


class Recorder:
    """Prices finished requests and writes them to the metrics and the decision log."""

    def __init__(self, catalog: Catalog, metrics: Metrics, decision_log: DecisionLog) -> None:
        self.catalog = catalog
        self.metrics = metrics
        self.decision_log = decision_log

    def call_cost(self, call: UpstreamCall, outcome: Outcome) -> float:
        entry = self.catalog.get(call.model)
        if entry is None or not call.billable:
            return 0.0
        if call.usage is not None:
            return entry.cost_usd(call.usage.prompt_tokens, call.usage.completion_tokens)
        candidate = outcome.routed.decision.candidate(entry.id)
        if candidate is not None:
            return candidate.cost_usd
        return entry.cost_usd(outcome.routed.decision.prompt_tokens, outcome.output_estimate)

    def cost(self, outcome: Outcome) -> float:
        """USD for every upstream call the request made (see the module docstring)."""
        if outcome.attempt is None:
            return 0.0
        return sum(self.call_cost(call, outcome) for call in outcome.attempt.calls)

    def record(self, outcome: Outcome) -> float:
        """Update metrics and the decision log for a finished request; returns its cost in USD."""
        m = self.metrics
        attempt = outcome.attempt
        for model in attempt.fallbacks if attempt else outcome.routed.order:
            m.fallbacks.labels(model).inc()
        model = attempt.model if attempt and attempt.model else "none"
        if outcome.error is not None:
            m.errors.labels(model, outcome.error.code or "error").inc()
        m.requests.labels(model, "error" if outcome.error else "ok").inc()
        m.latency.labels(model).observe(outcome.elapsed_s)
        m.overhead.labels(outcome.api).observe(outcome.overhead_s)
        cost = self.cost(outcome)
        for call in attempt.calls if attempt else []:
            if call.usage is not None:
                m.tokens.labels(call.model, "prompt").inc(call.usage.prompt_tokens)
                m.tokens.labels(call.model, "completion").inc(call.usage.completion_tokens)
            m.cost.labels(call.model).inc(self.call_cost(call, outcome))
        self.decision_log.write(self._call(outcome, cost))
        return cost

    @staticmethod
    def _call(outcome: Outcome, cost: float) -> Call:
        attempt, decision = outcome.attempt, outcome.routed.decision
        return Call(
            decision=decision,
            model=attempt.model if attempt and attempt.model else decision.model,
            key_name=outcome.key_name,
            latency_s=outcome.elapsed_s,
            overhead_s=outcome.overhead_s,
            cost_usd=cost,
            fallbacks=list(attempt.fallbacks if attempt else outcome.routed.order),
            usage=outcome.usage,
            error=(outcome.error.code or "error") if outcome.error else None,
            streamed=outcome.streamed,
            api=outcome.api,
        )

    def cache_hit(
        self, model: str, elapsed_s: float, key_name: str | None = None, api: str = "chat"
    ) -> None:
        """Count a reply served from the response cache (no routing, no upstream call, no cost)."""
        self.metrics.requests.labels(model, "cache_hit").inc()
        self.decision_log.write(Call(decision=None, model=model, key_name=key_name,
                                     latency_s=elapsed_s, overhead_s=elapsed_s, cost_usd=0.0,
                                     cache_hit=True, api=api))  # fmt: skip

"""What a finished request cost and how it went, recorded in one place: metrics, decision log."""

from __future__ import annotations

from dataclasses import dataclass

from app.errors import UpstreamError
from app.gateway.dispatch import Attempt
from app.pipeline.decision_log import Call
from app.pipeline.decisions import Routed
from app.schemas import ChatRequest, Usage
from app.services import Services


@dataclass
class Outcome:
    routed: Routed
    attempt: Attempt | None
    error: UpstreamError | None
    elapsed_s: float
    usage: Usage | None = None
    streamed: bool = False
    overhead_override_s: float | None = None
    key_name: str | None = None

    @property
    def overhead_s(self) -> float:
        """Time spent in Switchboard itself: everything but waiting on providers."""
        if self.overhead_override_s is not None:
            return self.overhead_override_s
        upstream = self.attempt.upstream_s if self.attempt else 0.0
        return max(0.0, self.elapsed_s - upstream)


def cost_of(services: Services, outcome: Outcome) -> float:
    """USD for the call: reported usage x catalog price, else the selector's estimate."""
    if outcome.attempt is None or not outcome.attempt.model:
        return 0.0
    entry = services.catalog.get(outcome.attempt.model)
    if entry is None:
        return 0.0
    if outcome.usage is not None:
        return entry.cost_usd(outcome.usage.prompt_tokens, outcome.usage.completion_tokens)
    candidate = outcome.routed.decision.candidate(entry.id)
    return candidate.cost_usd if candidate else 0.0


def record(services: Services, outcome: Outcome) -> float:
    """Update metrics and the decision log for a finished request; returns its cost in USD."""
    m = services.metrics
    attempt = outcome.attempt
    for model in attempt.fallbacks if attempt else outcome.routed.order:
        m.fallbacks.labels(model).inc()
    model = attempt.model if attempt and attempt.model else "none"
    if outcome.error is not None:
        m.errors.labels(model, outcome.error.code or "error").inc()
    m.requests.labels(model, "error" if outcome.error else "ok").inc()
    m.latency.labels(model).observe(outcome.elapsed_s)
    m.overhead.labels("chat").observe(outcome.overhead_s)
    cost = cost_of(services, outcome)
    if outcome.usage is not None:
        m.tokens.labels(model, "prompt").inc(outcome.usage.prompt_tokens)
        m.tokens.labels(model, "completion").inc(outcome.usage.completion_tokens)
    m.cost.labels(model).inc(cost)
    services.decision_log.write(_call(outcome, cost))
    return cost


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
    )


def record_cache_hit(
    services: Services, model: str, elapsed_s: float, key_name: str | None = None
) -> None:
    """Count a reply served from the response cache (no routing, no upstream call, no cost)."""
    services.metrics.requests.labels(model, "cache_hit").inc()
    services.decision_log.write(Call(decision=None, model=model, key_name=key_name,
                                     latency_s=elapsed_s, overhead_s=elapsed_s, cost_usd=0.0,
                                     cache_hit=True))  # fmt: skip


def call_estimate(services: Services, request: ChatRequest, routed: Routed) -> tuple[int, float]:
    """Tokens and the most it may cost (over the models it may be sent to), for admission."""
    output = request.output_limit() or services.settings.default_output_tokens
    tokens = routed.decision.prompt_tokens + output
    worst = 0.0
    for model in routed.order[: 1 + services.settings.max_fallbacks]:
        entry = services.catalog.get(model)
        if entry is not None:
            worst = max(worst, entry.cost_usd(routed.decision.prompt_tokens, output))
    return tokens, worst

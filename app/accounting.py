"""What a finished request cost and how it went, recorded in one place (metrics; spend later)."""

from __future__ import annotations

from dataclasses import dataclass

from app.dispatch import Attempt
from app.errors import UpstreamError
from app.routing import Routed
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
    """Update metrics for a finished request; returns its cost in USD."""
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
    return cost


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

"""Building a gateway from settings and catalog rows: the one recipe the service and
``switchboard profiles bootstrap`` share, so both call models with the same retries, timeouts,
slots and breakers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from adapters.base import ChatAdapter
from app.catalog import ModelEntry
from app.gateway.breaker import CircuitBreakers
from app.gateway.capacity import Capacity, Limit
from app.gateway.dispatch import Gateway, ModelLimits, RetryPolicy
from app.gateway.latency import LatencyTracker
from app.settings import Settings


def build_gateway(
    settings: Settings,
    models: Sequence[ModelEntry],
    adapters: Mapping[str, ChatAdapter],
    breakers: CircuitBreakers,
    latency: LatencyTracker | None = None,
    *,
    fallbacks: bool = True,
    hedge: bool | None = None,
) -> Gateway:
    """A gateway over ``adapters``; ``fallbacks=False`` keeps every answer on the model asked."""
    policy = RetryPolicy(
        settings.retries,
        settings.max_fallbacks if fallbacks else 0,
        settings.backoff_base_s,
        settings.backoff_max_s,
    )
    capacity = Capacity(
        {
            m.id: Limit(m.max_concurrency, settings.upstream_queue, m.queue_timeout_s)
            for m in models
            if m.max_concurrency is not None
        },
        Limit(
            settings.max_upstream_concurrency,
            settings.upstream_queue,
            settings.upstream_queue_timeout_s,
        ),
    )
    limits = {m.id: ModelLimits(m.timeout_s, m.stream_timeout_s) for m in models}
    return Gateway(
        adapters,
        breakers,
        policy,
        latency,
        hedge=settings.hedge if hedge is None else hedge,
        capacity=capacity,
        limits=limits,
    )

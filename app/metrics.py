"""Prometheus metrics, in a registry per app (so several apps can live in one process)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_OVERHEAD_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "switchboard_requests", "Chat requests answered", ["model", "status"], registry=r
        )
        self.latency = Histogram(
            "switchboard_request_latency_seconds", "End-to-end latency", ["model"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.overhead = Histogram(
            "switchboard_overhead_seconds", "Time spent in Switchboard itself", ["endpoint"],
            buckets=_OVERHEAD_BUCKETS, registry=r,
        )  # fmt: skip
        self.tokens = Counter(
            "switchboard_tokens", "Tokens by model and kind", ["model", "kind"], registry=r
        )
        self.cost = Counter("switchboard_cost_usd", "Estimated spend", ["model"], registry=r)
        self.errors = Counter(
            "switchboard_upstream_errors", "Upstream errors", ["model", "code"], registry=r
        )
        self.fallbacks = Counter(
            "switchboard_fallbacks", "Models given up on for a request", ["model"], registry=r
        )
        self.decisions = Counter(
            "switchboard_decisions", "Routing decisions", ["model"], registry=r
        )

    def count_shed(self, read: Callable[[], int]) -> None:
        """Export ``read()`` (requests refused because the encoder was too far behind)."""
        self.registry.register(_Shed(read))


class _Shed(Collector):
    def __init__(self, read: Callable[[], int]) -> None:
        self.read = read

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(
            "switchboard_requests_shed",
            "Requests refused with 503 overloaded: the encoder was too far behind",
            value=self.read(),
        )

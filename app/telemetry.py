"""Traces with OpenTelemetry's GenAI semantic conventions: a span per request, one per upstream try.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (then spans go out by OTLP over HTTP, batched,
with the standard ``OTEL_*`` variables for headers and service name), or a ``TracerProvider`` is
handed to ``create_app`` (the tests use the SDK's in-memory exporter). Off costs nothing but a
no-op call per span. Prompts and answers are never put on spans.

- request span ``{operation} {requested model}`` (``chat auto``; kind SERVER): the API, the routing
  decision id, the chosen model, the fallbacks tried, tokens, cost and Switchboard's own time;
- upstream span ``{operation} {upstream model}`` (kind CLIENT), a child of it for every call the
  gateway makes (retries, fallbacks and hedges each get one): provider, catalog model, how the
  call ended, tokens.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from app.schemas import Usage

OPERATION = "chat"
PROVIDERS = {"openai_compat": "openai", "anthropic": "anthropic", "gemini": "gcp.gemini",
             "ollama": "ollama"}  # fmt: skip
"""``gen_ai.provider.name`` per adapter (an OpenAI-compatible server reports as ``openai``)."""


def tracer(provider: trace.TracerProvider | None = None) -> Tracer:
    """The tracer to use: ``provider``'s, an OTLP exporter's when configured, else a no-op."""
    if provider is None and os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        provider = _otlp_provider()
    if provider is None:
        return trace.NoOpTracer()
    return provider.get_tracer("switchboard")


def _otlp_provider() -> trace.TracerProvider:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "switchboard")})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def shutdown(provider: object) -> None:
    """Flush and stop an SDK provider (no-op for anything else)."""
    stop = getattr(provider, "shutdown", None)
    if callable(stop):
        stop()


@dataclass(frozen=True)
class Target:
    """What an upstream span says about one catalog model."""

    provider: str
    upstream_model: str
    address: str | None


def usage_attributes(span: Span, usage: Usage | None) -> None:
    if usage is not None:
        span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)


def fail(span: Span, error: BaseException) -> None:
    code = getattr(error, "code", None)
    span.set_attribute("error.type", str(code or type(error).__name__))
    span.set_status(Status(StatusCode.ERROR, str(code or type(error).__name__)))


class Tracing:
    """Starts the two kinds of span (see the module docstring)."""

    def __init__(self, tracer: Tracer, targets: Mapping[str, Target] | None = None) -> None:
        self.tracer = tracer
        self.targets = dict(targets or {})

    def request(self, api: str, requested_model: str) -> Span:
        return self.tracer.start_span(
            f"{OPERATION} {requested_model}",
            kind=SpanKind.SERVER,
            attributes={
                "gen_ai.operation.name": OPERATION,
                "gen_ai.request.model": requested_model,
                "switchboard.api": api,
            },
        )

    def upstream(self, model: str) -> Span:
        target = self.targets.get(model) or Target("openai", model, None)
        attributes: dict[str, str] = {
            "gen_ai.operation.name": OPERATION,
            "gen_ai.provider.name": target.provider,
            "gen_ai.request.model": target.upstream_model,
            "switchboard.model": model,
        }
        if target.address:
            attributes["server.address"] = target.address
        return self.tracer.start_span(
            f"{OPERATION} {target.upstream_model}", kind=SpanKind.CLIENT, attributes=attributes
        )


NO_TRACING = Tracing(trace.NoOpTracer())

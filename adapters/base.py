"""The adapter protocol: how Switchboard talks to one upstream model.

An adapter is built per catalog row from an ``Endpoint`` (where and how to call) and the
service's shared ``httpx.AsyncClient``. It speaks one wire format. Each adapter module keeps
pure functions that build the upstream ``httpx.Request`` and parse the upstream response apart
from the I/O, so the wire format is testable byte for byte.

Adapters raise only the ``UpstreamError`` branch of ``app.errors``; retry and fallback are the
gateway's job (``app.gateway.dispatch``), not the adapter's. Adapters never import FastAPI.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import httpx
from pydantic import SecretStr

from app.schemas import ChatChunk, ChatCompletion, ChatRequest, EmbeddingRequest, Embeddings

FIELD_FEATURES = (
    "developer_role",
    "max_completion_tokens",
    "json_schema",
    "seed",
    "logprobs",
    "parallel_tool_calls",
    "stop",
)
"""Chat Completions fields a server may or may not take. An adapter class lists those its wire
format carries (``FEATURES``); a catalog row narrows that for its server (``supports:``).
``developer_role`` and ``max_completion_tokens`` are rewritten (to ``system``, ``max_tokens``)
for a server without them; a request using any other one goes only to models that take it."""


@dataclass(frozen=True)
class Endpoint:
    """Where one catalog model lives. Base URLs come from configuration only, never a request."""

    base_url: str
    upstream_model: str
    api_key: SecretStr | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: httpx.Timeout = field(default_factory=lambda: httpx.Timeout(60.0, connect=5.0))


class ChatAdapter(Protocol):
    """One upstream chat model. ``stream`` always ends with a usage-only chunk when the
    provider reports usage, whatever the client asked for; the gateway decides what to forward.
    Adapter classes also list the fields their format carries in ``FEATURES`` (see above)."""

    async def complete(self, request: ChatRequest) -> ChatCompletion: ...

    def stream(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class EmbeddingAdapter(Protocol):
    """An adapter whose wire format also has an embeddings call (catalog rows marked
    ``embeddings``); today ``openai_compat``."""

    async def embed(self, request: EmbeddingRequest) -> Embeddings: ...


AdapterFactory = Callable[[Endpoint, httpx.AsyncClient], ChatAdapter]

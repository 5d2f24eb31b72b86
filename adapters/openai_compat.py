"""The OpenAI Chat Completions wire format, for OpenAI and every server that speaks it.

OpenAI, vLLM, llama.cpp, LM Studio, Groq, Together, Mistral, DeepSeek, OpenRouter and Perplexity
differ only in configuration (base URL, key, extra headers), so they are catalog rows for this
one adapter, not classes. The request goes out as the client sent it, with the upstream model
name and without Switchboard's own ``switchboard`` field; unknown OpenAI fields pass through.
Provider extras in replies (Perplexity's ``citations``, DeepSeek's ``reasoning_content``, ...)
are dropped by the canonical types rather than rejected. ``build_embeddings_request`` and
``parse_embeddings`` are the same format's ``/embeddings`` call, for rows marked ``embeddings``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
from pydantic import BaseModel

from adapters.base import FIELD_FEATURES, Endpoint
from adapters.failures import Upstream
from adapters.sse import SSEDecoder, SSEEvent
from adapters.transport import HttpAdapter, StreamTranslator, json_request
from app.schemas import ChatChunk, ChatCompletion, ChatRequest, EmbeddingRequest, Embeddings

_NOT_FORWARDED = {"switchboard", "model", "stream", "stream_options"}
_ANONYMOUS = Upstream("upstream")


def build_request(endpoint: Endpoint, request: ChatRequest, *, stream: bool) -> httpx.Request:
    """``POST {base_url}/chat/completions``; streams always ask for the final usage chunk."""
    body: dict[str, object] = {"model": endpoint.upstream_model}
    body.update(request.model_dump(mode="json", exclude_none=True, exclude=_NOT_FORWARDED))
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    headers = {"accept": "text/event-stream" if stream else "application/json"}
    if endpoint.api_key is not None:
        headers["authorization"] = f"Bearer {endpoint.api_key.get_secret_value()}"
    return json_request(endpoint, "/chat/completions", body, headers)


def parse_response(response: httpx.Response, upstream: Upstream = _ANONYMOUS) -> ChatCompletion:
    """A 2xx reply -> ``ChatCompletion``; an ``error`` object in it raises the typed error."""
    payload = _object(response.content, upstream)
    payload.setdefault("model", "")
    return ChatCompletion.model_validate(payload)


def parse_chunk(data: str, upstream: Upstream = _ANONYMOUS) -> ChatChunk | None:
    """One SSE ``data`` payload -> a chunk; None for ``[DONE]``. An error payload raises."""
    if data.strip() == "[DONE]":
        return None
    return ChatChunk.model_validate(_object(data, upstream))


def build_embeddings_request(endpoint: Endpoint, request: EmbeddingRequest) -> httpx.Request:
    """``POST {base_url}/embeddings`` for the texts, always asking for floats."""
    body: dict[str, object] = {
        "model": endpoint.upstream_model,
        "input": request.texts,
        "encoding_format": "float",
    }
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    if request.user is not None:
        body["user"] = request.user
    headers = {"accept": "application/json"}
    if endpoint.api_key is not None:
        headers["authorization"] = f"Bearer {endpoint.api_key.get_secret_value()}"
    return json_request(endpoint, "/embeddings", body, headers)


class _Vector(BaseModel):
    index: int
    embedding: list[float]


class _Usage(BaseModel):
    prompt_tokens: int | None = None


class _EmbeddingsReply(BaseModel):
    data: list[_Vector]
    model: str = ""
    usage: _Usage | None = None


def parse_embeddings(response: httpx.Response, upstream: Upstream = _ANONYMOUS) -> Embeddings:
    """A 2xx embeddings reply -> the vectors in input order (providers may reorder ``data``)."""
    reply = _EmbeddingsReply.model_validate(_object(response.content, upstream))
    vectors = [v.embedding for v in sorted(reply.data, key=lambda v: v.index)]
    prompt_tokens = reply.usage.prompt_tokens if reply.usage else None
    return Embeddings(vectors=vectors, model=reply.model, prompt_tokens=prompt_tokens)


def _object(text: str | bytes, upstream: Upstream) -> dict[str, object]:
    payload = json.loads(text)
    if not isinstance(payload, dict):
        raise ValueError("expected a JSON object")
    if payload.get("error"):
        error = payload["error"]
        detail = error.get("message") if isinstance(error, dict) else None
        raise upstream.reported_error(_error_status(error), str(detail or error))
    return payload


def _error_status(error: object) -> int:
    """Servers report stream errors as ``{"error": {...}}``, some with an HTTP-like code."""
    if not isinstance(error, dict):
        return 500
    code = error.get("code")
    if isinstance(code, int) and 400 <= code < 600:
        return code
    return 429 if "rate_limit" in f"{error.get('type')} {code}" else 500


class OpenAIStream:
    """OpenAI's SSE: each ``data`` is a chunk already; ``[DONE]`` ends it."""

    def __init__(self, upstream: Upstream = _ANONYMOUS) -> None:
        self.upstream = upstream
        self.done = False
        self._finished = False
        self._sse = SSEDecoder()

    def feed(self, data: bytes) -> Iterator[ChatChunk]:
        return self._take(self._sse.feed(data))

    def close(self) -> Iterator[ChatChunk]:
        yield from self._take(self._sse.close())
        if not (self.done or self._finished):  # a clean close before any finish: truncated
            raise self.upstream.cut_short()

    def _take(self, events: list[SSEEvent]) -> Iterator[ChatChunk]:
        for event in events:
            chunk = None if self.done else parse_chunk(event.data, self.upstream)
            if chunk is None:
                self.done = True
            elif chunk.choices or chunk.usage:  # skip e.g. Azure's prompt-filter preamble
                self._finished |= any(c.finish_reason for c in chunk.choices)
                yield chunk


class OpenAICompatAdapter(HttpAdapter):
    # What every OpenAI-compatible server takes; OpenAI's own rows add developer_role and
    # max_completion_tokens (``supports:``), which llama.cpp and others ignore or refuse.
    FEATURES = frozenset(FIELD_FEATURES) - {"developer_role", "max_completion_tokens"}

    def build(self, request: ChatRequest, *, stream: bool) -> httpx.Request:
        return build_request(self.endpoint, request, stream=stream)

    def parse(self, response: httpx.Response) -> ChatCompletion:
        return parse_response(response, self.upstream)

    def translator(self) -> StreamTranslator:
        return OpenAIStream(self.upstream)

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        response = await self.send(build_embeddings_request(self.endpoint, request))
        try:
            embeddings = parse_embeddings(response, self.upstream)
        except ValueError as exc:
            raise self.upstream.unreadable("an embeddings reply") from exc
        if len(embeddings.vectors) != len(request.texts):
            raise self.upstream.unreadable("a different number of embeddings than texts")
        return embeddings

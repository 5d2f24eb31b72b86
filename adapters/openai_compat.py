"""The OpenAI Chat Completions wire format, for OpenAI and every compatible server.

OpenAI, vLLM, llama.cpp, LM Studio, Groq, Together, Mistral, DeepSeek, OpenRouter and Perplexity
differ only in configuration (base URL, key, extra headers), so they are catalog rows for this
one adapter. ``build_request`` and the ``parse_*`` functions are pure; the class does the I/O.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
from pydantic import ValidationError

from adapters.base import Endpoint
from adapters.sse import SSEDecoder
from adapters.transport import HttpAdapter, json_request
from app.errors import UpstreamError, UpstreamUnavailable
from app.schemas import ChatChunk, ChatCompletion, ChatRequest

_OURS = {"switchboard", "model", "stream", "stream_options"}


def build_request(endpoint: Endpoint, request: ChatRequest, *, stream: bool) -> httpx.Request:
    body = request.model_dump(mode="json", exclude_none=True, exclude=_OURS)
    body["model"] = endpoint.upstream_model
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    headers = {"accept": "text/event-stream"} if stream else {}
    if endpoint.api_key is not None:
        headers["authorization"] = f"Bearer {endpoint.api_key.get_secret_value()}"
    return json_request(endpoint, f"{endpoint.base_url}/chat/completions", body, headers)


def parse_response(body: bytes, provider: str = "upstream") -> ChatCompletion:
    try:
        return ChatCompletion.model_validate_json(body)
    except ValidationError as exc:
        raise UpstreamUnavailable(f"{provider} sent an unreadable completion") from exc


def parse_chunk(data: str, provider: str = "upstream") -> ChatChunk | None:
    """One SSE ``data`` payload -> a chunk; None for ``[DONE]``. An error payload raises."""
    if data.strip() == "[DONE]":
        return None
    try:
        payload = json.loads(data)
    except ValueError as exc:
        raise UpstreamUnavailable(f"{provider} sent an unreadable stream event") from exc
    if isinstance(payload, dict) and "error" in payload:
        error = payload["error"]
        message = error.get("message") if isinstance(error, dict) else str(error)
        raise UpstreamUnavailable(f"{provider} failed mid-stream: {message}")
    try:
        return ChatChunk.model_validate(payload)
    except ValidationError as exc:
        raise UpstreamUnavailable(f"{provider} sent an unreadable stream chunk") from exc


class OpenAICompatAdapter(HttpAdapter):
    def build(self, request: ChatRequest, *, stream: bool) -> httpx.Request:
        return build_request(self.endpoint, request, stream=stream)

    def parse(self, body: bytes) -> ChatCompletion:
        return parse_response(body, self.provider)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        decoder = SSEDecoder()
        finished = False
        async for raw in self.open(request):
            for event in decoder.feed(raw):
                chunk = parse_chunk(event.data, self.provider)
                if chunk is None:
                    return
                finished = finished or any(c.finish_reason for c in chunk.choices)
                yield chunk
        for event in decoder.close():
            chunk = parse_chunk(event.data, self.provider)
            if chunk is None:
                return
            yield chunk
        if not finished:  # a clean close before any finish_reason is a truncated answer
            raise UpstreamUnavailable(f"{self.provider} ended the stream early")


__all__ = ["OpenAICompatAdapter", "UpstreamError", "build_request", "parse_chunk", "parse_response"]

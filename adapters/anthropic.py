"""Anthropic's Messages API (``POST /v1/messages``), including its typed SSE events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from adapters.base import Endpoint
from adapters.content import (
    data_url,
    finish_chunk,
    new_id,
    parts,
    system_text,
    text_chunk,
    usage,
    usage_chunk,
)
from adapters.sse import SSEDecoder
from adapters.status import from_status
from adapters.transport import HttpAdapter, json_request
from app.errors import UpstreamError, UpstreamUnavailable
from app.schemas import AssistantMessage, ChatChunk, ChatCompletion, ChatRequest, Choice

VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_ERROR_STATUS = {"overloaded_error": 529, "rate_limit_error": 429, "api_error": 500,
                 "invalid_request_error": 400, "authentication_error": 401}  # fmt: skip


def _content(message: Any) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for part in parts(message):
        if part.type == "text":
            blocks.append({"type": "text", "text": part.text})
            continue
        inline = data_url(part.image_url.url)
        source = (
            {"type": "base64", "media_type": inline.media_type, "data": inline.data}
            if inline
            else {"type": "url", "url": part.image_url.url}
        )
        blocks.append({"type": "image", "source": source})
    return blocks


def build_body(endpoint: Endpoint, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
    messages = [
        {"role": "assistant" if m.role == "assistant" else "user", "content": _content(m)}
        for m in request.messages
        if m.role not in ("system", "developer")
    ]
    body: dict[str, Any] = {
        "model": endpoint.upstream_model,
        "max_tokens": request.output_limit() or DEFAULT_MAX_TOKENS,
        "messages": messages,
    }
    system = system_text(request.messages)
    if system:
        body["system"] = system
    for ours, theirs in (("temperature", "temperature"), ("top_p", "top_p")):
        if getattr(request, ours) is not None:
            body[theirs] = getattr(request, ours)
    if request.stop is not None:
        body["stop_sequences"] = [request.stop] if isinstance(request.stop, str) else request.stop
    if stream:
        body["stream"] = True
    return body


def build_request(endpoint: Endpoint, request: ChatRequest, *, stream: bool) -> httpx.Request:
    headers = {"anthropic-version": VERSION}
    if endpoint.api_key is not None:
        headers["x-api-key"] = endpoint.api_key.get_secret_value()
    body = build_body(endpoint, request, stream=stream)
    return json_request(endpoint, f"{endpoint.base_url}/v1/messages", body, headers)


def parse_response(body: bytes) -> ChatCompletion:
    payload = json.loads(body)
    text = "".join(b.get("text", "") for b in payload.get("content", []) if b.get("type") == "text")
    counts = payload.get("usage", {})
    prompt, completion = counts.get("input_tokens", 0), counts.get("output_tokens", 0)
    return ChatCompletion(
        id=payload.get("id") or new_id(),
        model=payload.get("model", ""),
        choices=[
            Choice(
                message=AssistantMessage(content=text),
                finish_reason=STOP_REASONS.get(payload.get("stop_reason") or "", "stop"),
            )
        ],
        usage=usage(prompt, completion),
    )


class StreamState:
    """Turns Anthropic's event sequence into chunks; usage arrives in two parts."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.id = new_id()
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.started = False

    def on_event(self, name: str, data: str) -> list[ChatChunk]:
        payload = json.loads(data) if data else {}
        if name == "message_start":
            message = payload.get("message", {})
            self.id = message.get("id", self.id)
            self.prompt_tokens = message.get("usage", {}).get("input_tokens", 0)
            return []
        if name == "content_block_delta" and payload.get("delta", {}).get("type") == "text_delta":
            first, self.started = not self.started, True
            return [text_chunk(self.id, payload["delta"]["text"], first=first)]
        if name == "message_delta":
            self.completion_tokens = payload.get("usage", {}).get("output_tokens", 0)
            reason = STOP_REASONS.get(payload.get("delta", {}).get("stop_reason") or "", "stop")
            return [finish_chunk(self.id, reason)]
        if name == "message_stop":
            return [usage_chunk(self.id, self.prompt_tokens, self.completion_tokens)]
        if name == "error":
            raise self._error(payload.get("error", {}))
        return []  # ping, content_block_start/stop

    def _error(self, error: dict[str, Any]) -> UpstreamError:
        status = _ERROR_STATUS.get(error.get("type", ""), 500)
        body = json.dumps({"error": {"message": error.get("message", "stream error")}}).encode()
        return from_status(self.provider, status, httpx.Headers(), body)


class AnthropicAdapter(HttpAdapter):
    def build(self, request: ChatRequest, *, stream: bool) -> httpx.Request:
        return build_request(self.endpoint, request, stream=stream)

    def parse(self, body: bytes) -> ChatCompletion:
        return parse_response(body)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        decoder, state = SSEDecoder(), StreamState(self.provider)
        async for raw in self.open(request):
            for event in decoder.feed(raw):
                for chunk in state.on_event(event.event, event.data):
                    yield chunk
                if event.event == "message_stop":
                    return
        raise UpstreamUnavailable(f"{self.provider} ended the stream early")

"""Ollama's native chat API (``POST /api/chat``), streaming as newline-delimited JSON."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx

from adapters.base import Endpoint
from adapters.content import data_url, finish_chunk, new_id, parts, text_chunk, usage, usage_chunk
from adapters.sse import NDJSONDecoder
from adapters.transport import HttpAdapter, json_request
from app.errors import UpstreamUnavailable
from app.schemas import (
    AssistantMessage,
    ChatChunk,
    ChatCompletion,
    ChatMessage,
    ChatRequest,
    Choice,
)

Json = dict[str, object]
DONE_REASONS = {"stop": "stop", "length": "length"}


def _message(message: ChatMessage) -> Json:
    texts, images = [], []
    for part in parts(message):
        if part.type == "text":
            texts.append(part.text)
        elif (inline := data_url(part.image_url.url)) is not None:
            images.append(inline.data)
    role = "system" if message.role == "developer" else message.role
    out: Json = {"role": role, "content": "\n".join(texts)}
    if images:
        out["images"] = images
    return out


def build_body(endpoint: Endpoint, request: ChatRequest, *, stream: bool) -> Json:
    options: Json = {}
    for ours, theirs in (("temperature", "temperature"), ("top_p", "top_p"), ("seed", "seed")):
        if getattr(request, ours) is not None:
            options[theirs] = getattr(request, ours)
    if request.output_limit() is not None:
        options["num_predict"] = request.output_limit()
    if request.stop is not None:
        options["stop"] = [request.stop] if isinstance(request.stop, str) else request.stop
    body: Json = {
        "model": endpoint.upstream_model,
        "messages": [_message(m) for m in request.messages],
        "stream": stream,
    }
    if options:
        body["options"] = options
    return body


def build_request(endpoint: Endpoint, request: ChatRequest, *, stream: bool) -> httpx.Request:
    headers = {}
    if endpoint.api_key is not None:
        headers["authorization"] = f"Bearer {endpoint.api_key.get_secret_value()}"
    body = build_body(endpoint, request, stream=stream)
    return json_request(endpoint, f"{endpoint.base_url}/api/chat", body, headers)


def parse_response(body: bytes) -> ChatCompletion:
    payload = json.loads(body)
    prompt, completion = int(payload.get("prompt_eval_count", 0)), int(payload.get("eval_count", 0))
    return ChatCompletion(
        id=new_id(),
        model=payload.get("model", ""),
        choices=[
            Choice(
                message=AssistantMessage(content=payload.get("message", {}).get("content", "")),
                finish_reason=DONE_REASONS.get(payload.get("done_reason", "stop"), "stop"),
            )
        ],
        usage=usage(prompt, completion),
    )


class OllamaAdapter(HttpAdapter):
    def build(self, request: ChatRequest, *, stream: bool) -> httpx.Request:
        return build_request(self.endpoint, request, stream=stream)

    def parse(self, body: bytes) -> ChatCompletion:
        return parse_response(body)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        decoder, chunk_id, first = NDJSONDecoder(), new_id(), True
        async for raw in self.open(request):
            for line in decoder.feed(raw):
                payload = json.loads(line)
                if "error" in payload:
                    raise UpstreamUnavailable(
                        f"{self.provider} failed mid-stream: {payload['error']}"
                    )
                text = payload.get("message", {}).get("content", "")
                if text:
                    yield text_chunk(chunk_id, text, first=first)
                    first = False
                if payload.get("done"):
                    reason = DONE_REASONS.get(payload.get("done_reason", "stop"), "stop")
                    yield finish_chunk(chunk_id, reason)
                    yield usage_chunk(
                        chunk_id,
                        int(payload.get("prompt_eval_count", 0)),
                        int(payload.get("eval_count", 0)),
                    )
                    return
        raise UpstreamUnavailable(f"{self.provider} ended the stream early")

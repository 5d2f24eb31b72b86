"""Ollama's native chat API (``POST /api/chat``), streaming as newline-delimited JSON."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx

from adapters.base import Endpoint
from adapters.content import data_url, finish_chunk, new_id, parts, text_chunk, usage_chunk
from adapters.sse import NDJSONDecoder
from adapters.transport import provider_name, send, stream_bytes
from app.errors import UpstreamUnavailable
from app.schemas import (
    AssistantMessage,
    ChatChunk,
    ChatCompletion,
    ChatMessage,
    ChatRequest,
    Choice,
    Usage,
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
    headers = {"content-type": "application/json", **endpoint.headers}
    if endpoint.api_key is not None:
        headers["authorization"] = f"Bearer {endpoint.api_key.get_secret_value()}"
    return httpx.Request(
        "POST",
        f"{endpoint.base_url}/api/chat",
        content=json.dumps(
            build_body(endpoint, request, stream=stream), separators=(",", ":")
        ).encode(),
        headers=headers,
        extensions={"timeout": endpoint.timeout.as_dict()},
    )


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
        usage=Usage(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        ),
    )


class OllamaAdapter:
    def __init__(self, endpoint: Endpoint, client: httpx.AsyncClient) -> None:
        self.endpoint = endpoint
        self.client = client
        self.provider = provider_name(endpoint.base_url)

    async def complete(self, request: ChatRequest) -> ChatCompletion:
        response = await send(
            self.client, build_request(self.endpoint, request, stream=False), self.provider
        )
        try:
            return parse_response(response.content)
        except (ValueError, KeyError, TypeError) as exc:
            raise UpstreamUnavailable(f"{self.provider} sent an unreadable reply") from exc

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        http_request = build_request(self.endpoint, request, stream=True)
        decoder, chunk_id, first = NDJSONDecoder(), new_id(), True
        async for raw in stream_bytes(self.client, http_request, self.provider):
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

    async def aclose(self) -> None:
        return None

"""Google Gemini: ``generateContent`` and ``streamGenerateContent?alt=sse``.

The key travels in the ``x-goog-api-key`` header, never in the URL, so it cannot end up in a
logged request line.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

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
from adapters.transport import HttpAdapter, json_request
from app.schemas import (
    AssistantMessage,
    ChatChunk,
    ChatCompletion,
    ChatMessage,
    ChatRequest,
    Choice,
)

Json = dict[str, object]
FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter",
          "RECITATION": "content_filter", "PROHIBITED_CONTENT": "content_filter"}  # fmt: skip


def _parts(message: ChatMessage) -> list[Json]:
    out: list[Json] = []
    for part in parts(message):
        if part.type == "text":
            out.append({"text": part.text})
            continue
        inline = data_url(part.image_url.url)
        if inline:
            out.append({"inline_data": {"mime_type": inline.media_type, "data": inline.data}})
        else:
            out.append({"file_data": {"file_uri": part.image_url.url}})
    return out


def build_body(request: ChatRequest) -> Json:
    contents = [
        {"role": "model" if m.role == "assistant" else "user", "parts": _parts(m)}
        for m in request.messages
        if m.role not in ("system", "developer")
    ]
    body: Json = {"contents": contents}
    system = system_text(request.messages)
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    config: Json = {}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.output_limit() is not None:
        config["maxOutputTokens"] = request.output_limit()
    if request.stop is not None:
        config["stopSequences"] = [request.stop] if isinstance(request.stop, str) else request.stop
    if config:
        body["generationConfig"] = config
    return body


def build_request(endpoint: Endpoint, request: ChatRequest, *, stream: bool) -> httpx.Request:
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    headers = {}
    if endpoint.api_key is not None:
        headers["x-goog-api-key"] = endpoint.api_key.get_secret_value()
    url = f"{endpoint.base_url}/v1beta/models/{endpoint.upstream_model}:{method}"
    return json_request(endpoint, url, build_body(request), headers)


def _text_and_finish(payload: dict[str, object]) -> tuple[str, str | None]:
    candidates = payload.get("candidates") or []
    if not isinstance(candidates, list) or not candidates:
        return "", None
    first = candidates[0]
    content = first.get("content", {}) if isinstance(first, dict) else {}
    text = "".join(str(p.get("text", "")) for p in content.get("parts", []) if isinstance(p, dict))
    reason = first.get("finishReason") if isinstance(first, dict) else None
    return text, FINISH.get(str(reason), "stop") if reason else None


def _usage(payload: dict[str, object]) -> tuple[int, int]:
    meta = payload.get("usageMetadata") or {}
    if not isinstance(meta, dict):
        return 0, 0
    return int(meta.get("promptTokenCount", 0)), int(meta.get("candidatesTokenCount", 0))


def parse_response(body: bytes) -> ChatCompletion:
    payload = json.loads(body)
    text, reason = _text_and_finish(payload)
    prompt, completion = _usage(payload)
    return ChatCompletion(
        id=payload.get("responseId") or new_id(),
        model=payload.get("modelVersion", ""),
        choices=[Choice(message=AssistantMessage(content=text), finish_reason=reason or "stop")],
        usage=usage(prompt, completion),
    )


class GeminiAdapter(HttpAdapter):
    def build(self, request: ChatRequest, *, stream: bool) -> httpx.Request:
        return build_request(self.endpoint, request, stream=stream)

    def parse(self, body: bytes) -> ChatCompletion:
        return parse_response(body)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        decoder, chunk_id, first = SSEDecoder(), new_id(), True
        counts = (0, 0)
        async for raw in self.open(request):
            for event in decoder.feed(raw):
                payload = json.loads(event.data)
                text, reason = _text_and_finish(payload)
                counts = _usage(payload) if payload.get("usageMetadata") else counts
                if text:
                    yield text_chunk(chunk_id, text, first=first)
                    first = False
                if reason:
                    yield finish_chunk(chunk_id, reason)
        yield usage_chunk(chunk_id, *counts)

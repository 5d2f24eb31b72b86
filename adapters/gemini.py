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
    usage_chunk,
)
from adapters.sse import SSEDecoder
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
    headers = {"content-type": "application/json", **endpoint.headers}
    if endpoint.api_key is not None:
        headers["x-goog-api-key"] = endpoint.api_key.get_secret_value()
    return httpx.Request(
        "POST",
        f"{endpoint.base_url}/v1beta/models/{endpoint.upstream_model}:{method}",
        content=json.dumps(build_body(request), separators=(",", ":")).encode(),
        headers=headers,
        extensions={"timeout": endpoint.timeout.as_dict()},
    )


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
        usage=Usage(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        ),
    )


class GeminiAdapter:
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
        decoder, chunk_id, first = SSEDecoder(), new_id(), True
        usage = (0, 0)
        async for raw in stream_bytes(self.client, http_request, self.provider):
            for event in decoder.feed(raw):
                payload = json.loads(event.data)
                text, reason = _text_and_finish(payload)
                usage = _usage(payload) if payload.get("usageMetadata") else usage
                if text:
                    yield text_chunk(chunk_id, text, first=first)
                    first = False
                if reason:
                    yield finish_chunk(chunk_id, reason)
        yield usage_chunk(chunk_id, *usage)

    async def aclose(self) -> None:
        return None

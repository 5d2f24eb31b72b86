"""Anthropic's Messages API (``POST /v1/messages``) and its typed SSE events.

The request moves system and developer messages to the top-level ``system``, makes
``max_tokens`` explicit (the API requires it), turns images into ``image`` blocks (base64 for
``data:`` URLs, ``url`` sources otherwise), ``stop`` into ``stop_sequences``, and maps tools,
tool calls and tool results to ``tool_use``/``tool_result`` blocks. The reply's text blocks are
joined, ``tool_use`` blocks become ``tool_calls``, and the event stream becomes the canonical
chunks: role first, text and tool-call deltas, the finish reason, then a usage-only chunk.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
from pydantic import BaseModel, JsonValue

from adapters.base import Endpoint
from adapters.content import (
    JsonObject,
    Wire,
    data_url,
    functions,
    named_tool,
    parts,
    stop_list,
    system_text,
    tool_calls,
)
from adapters.failures import Upstream
from adapters.replies import ChunkWriter, completion, finish_reason, tool_call, usage
from adapters.sse import SSEDecoder, SSEEvent
from adapters.transport import HttpAdapter, StreamTranslator, json_request
from app.schemas import ChatChunk, ChatCompletion, ChatMessage, ChatRequest, ImagePart, Usage

VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                "tool_use": "tool_calls", "refusal": "content_filter"}  # fmt: skip
ERROR_STATUS = {"invalid_request_error": 400, "authentication_error": 401,
                "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
                "rate_limit_error": 429, "api_error": 500, "overloaded_error": 529}  # fmt: skip
_TOOL_CHOICE: dict[str, Wire] = {
    "auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}
}  # fmt: skip


def _image(part: ImagePart) -> Wire:
    inline = data_url(part.image_url.url)
    if inline is None:
        return {"type": "image", "source": {"type": "url", "url": part.image_url.url}}
    source = {"type": "base64", "media_type": inline.media_type, "data": inline.data}
    return {"type": "image", "source": source}


def _message(message: ChatMessage) -> Wire:
    if message.role == "tool":
        result = {"type": "tool_result", "tool_use_id": message.tool_call_id or ""}
        return {"role": "user", "content": [{**result, "content": message.text()}]}
    blocks: list[Wire] = [
        {"type": "text", "text": p.text} if p.type == "text" else _image(p) for p in parts(message)
    ]
    blocks += [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
        for c in tool_calls(message)
    ]
    return {"role": "assistant" if message.role == "assistant" else "user", "content": blocks}


def build_body(endpoint: Endpoint, request: ChatRequest, *, stream: bool) -> Wire:
    body: Wire = {
        "model": endpoint.upstream_model,
        "max_tokens": request.output_limit() or DEFAULT_MAX_TOKENS,
        "messages": [
            _message(m) for m in request.messages if m.role not in ("system", "developer")
        ],
    }
    optional: Wire = {
        "system": system_text(request.messages),
        "temperature": None if request.temperature is None else min(request.temperature, 1.0),
        "top_p": request.top_p,
        "stop_sequences": stop_list(request),
        "metadata": {"user_id": request.user} if request.user else None,
        "stream": True if stream else None,
    }
    if declared := functions(request):
        optional["tools"] = [
            {"name": f.name, "input_schema": f.parameters}
            | ({"description": f.description} if f.description else {})
            for f in declared
        ]
        choice = request.tool_choice
        name = named_tool(choice)
        tool = _TOOL_CHOICE.get(choice) if isinstance(choice, str) else None
        optional["tool_choice"] = {"type": "tool", "name": name} if name else tool
    body.update({key: value for key, value in optional.items() if value is not None})
    return body


def build_request(endpoint: Endpoint, request: ChatRequest, *, stream: bool) -> httpx.Request:
    """``POST {base_url}/v1/messages`` with ``x-api-key`` and ``anthropic-version``."""
    headers = {"anthropic-version": VERSION}
    if endpoint.api_key is not None:
        headers["x-api-key"] = endpoint.api_key.get_secret_value()
    return json_request(
        endpoint, "/v1/messages", build_body(endpoint, request, stream=stream), headers
    )


class _Usage(BaseModel):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None

    def prompt(self) -> int:
        """OpenAI counts cached prompt tokens in ``prompt_tokens``; Anthropic lists them apart."""
        counts = (self.input_tokens, self.cache_creation_input_tokens, self.cache_read_input_tokens)
        return sum(n or 0 for n in counts)


class _Block(BaseModel):
    type: str
    text: str = ""
    id: str = ""
    name: str = ""
    input: JsonValue = None


class _Message(BaseModel):
    id: str = ""
    model: str = ""
    content: list[_Block] = []
    stop_reason: str | None = None
    usage: _Usage = _Usage()


def parse_response(response: httpx.Response) -> ChatCompletion:
    message = _Message.model_validate_json(response.content)
    calls = [
        tool_call(b.name, b.input or {}, b.id) for b in message.content if b.type == "tool_use"
    ]
    return completion(
        completion_id=message.id,
        model=message.model,
        text="".join(b.text for b in message.content if b.type == "text"),
        finish=finish_reason(STOP_REASONS, message.stop_reason),
        counts=usage(message.usage.prompt(), message.usage.output_tokens or 0),
        calls=calls,
    )


class _Delta(BaseModel):
    type: str = ""
    text: str = ""
    partial_json: str = ""
    stop_reason: str | None = None


class _Error(BaseModel):
    type: str = "api_error"
    message: str = ""


class _Event(BaseModel):
    type: str
    index: int = 0
    message: _Message | None = None
    content_block: _Block | None = None
    delta: _Delta = _Delta()
    usage: _Usage | None = None
    error: _Error | None = None


class AnthropicStream:
    """Anthropic's events -> chunks. Usage comes in two halves: input at the start, output
    (cumulative) in ``message_delta``; the usage chunk goes out at ``message_stop``."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.done = False
        self._sse = SSEDecoder()
        self._out = ChunkWriter()
        self._tools: dict[int, int] = {}  # content block index -> OpenAI tool call index
        self._usage = Usage()

    def feed(self, data: bytes) -> Iterator[ChatChunk]:
        return self._take(self._sse.feed(data))

    def close(self) -> Iterator[ChatChunk]:
        yield from self._take(self._sse.close())
        if not self.done:
            raise self.upstream.cut_short()

    def _take(self, events: list[SSEEvent]) -> Iterator[ChatChunk]:
        for event in events:
            if not self.done:
                yield from self._on(_Event.model_validate_json(event.data))

    def _on(self, event: _Event) -> list[ChatChunk]:
        if event.type == "message_start" and event.message is not None:
            self._out.id = event.message.id or self._out.id
            self._out.model = event.message.model
            self._count(event.message.usage)
            return []
        if event.type == "content_block_start" and event.content_block is not None:
            return self._block_start(event.index, event.content_block)
        if event.type == "content_block_delta":
            return self._delta(event.index, event.delta)
        if event.type == "message_delta":
            self._count(event.usage)
            reason = finish_reason(STOP_REASONS, event.delta.stop_reason)
            return [self._out.finish(reason)]
        if event.type == "message_stop":
            self.done = True
            return [self._out.usage(self._usage)]
        if event.type == "error":
            error = event.error or _Error()
            raise self.upstream.reported_error(ERROR_STATUS.get(error.type, 500), error.message)
        return []  # ping, content_block_stop, and event types added later

    def _block_start(self, index: int, block: _Block) -> list[ChatChunk]:
        if block.type == "text" and block.text:
            return [self._out.text(block.text)]
        if block.type != "tool_use":
            return []
        self._tools[index] = len(self._tools)
        call = {"index": self._tools[index], **tool_call(block.name, "", block.id)}
        return [self._out.tool_calls([call])]

    def _delta(self, index: int, delta: _Delta) -> list[ChatChunk]:
        if delta.type == "text_delta" and delta.text:
            return [self._out.text(delta.text)]
        if delta.type == "input_json_delta" and delta.partial_json and index in self._tools:
            call: JsonObject = {
                "index": self._tools[index],
                "function": {"arguments": delta.partial_json},
            }
            return [self._out.tool_calls([call])]
        return []  # thinking and signature deltas have no OpenAI counterpart

    def _count(self, counts: _Usage | None) -> None:
        if counts is None:
            return
        prompt = counts.prompt() if counts.input_tokens is not None else self._usage.prompt_tokens
        completion_tokens = counts.output_tokens or self._usage.completion_tokens
        self._usage = usage(prompt, completion_tokens)


class AnthropicAdapter(HttpAdapter):
    FEATURES = frozenset({"developer_role", "max_completion_tokens", "stop"})

    def build(self, request: ChatRequest, *, stream: bool) -> httpx.Request:
        return build_request(self.endpoint, request, stream=stream)

    def parse(self, response: httpx.Response) -> ChatCompletion:
        return parse_response(response)

    def translator(self) -> StreamTranslator:
        return AnthropicStream(self.upstream)

"""Ollama's native chat API (``POST /api/chat``), streaming newline-delimited JSON.

Sampling settings go in ``options`` (``num_predict`` is the output limit), images as a list of
base64 strings (Ollama cannot fetch URLs, so only ``data:`` images are accepted), tools in
OpenAI's own shape. ``stream`` is always sent, because Ollama streams unless told not to. The
final line (``"done": true``) carries ``done_reason`` and the token counts.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
from pydantic import BaseModel, JsonValue

from adapters.base import Endpoint
from adapters.content import JsonObject, Wire, data_url, parts, stop_list, tool_calls
from adapters.failures import Upstream
from adapters.replies import ChunkWriter, completion, finish_reason, tool_call, usage
from adapters.sse import NDJSONDecoder
from adapters.transport import HttpAdapter, StreamTranslator, json_request
from app.errors import UpstreamBadRequest
from app.schemas import ChatChunk, ChatCompletion, ChatMessage, ChatRequest, Usage

DONE_REASONS = {"stop": "stop", "length": "length"}


def _message(message: ChatMessage, upstream: Upstream) -> Wire:
    texts, images = [], []
    for part in parts(message):
        if part.type == "text":
            texts.append(part.text)
        elif (inline := data_url(part.image_url.url)) is not None:
            images.append(inline.data)
        else:
            raise UpstreamBadRequest(f"{upstream.name} (Ollama) takes images only as data: URLs")
    out: Wire = {"role": "system" if message.role == "developer" else message.role}
    out["content"] = "\n".join(texts)
    if images:
        out["images"] = images
    if calls := tool_calls(message):
        out["tool_calls"] = [
            {"function": {"name": c.name, "arguments": c.arguments}} for c in calls
        ]
    return out


def _format(request: ChatRequest) -> JsonValue:
    fmt = request.response_format or {}
    spec = fmt.get("json_schema")
    if isinstance(spec, dict) and isinstance(spec.get("schema"), dict):
        return spec["schema"]
    return "json" if fmt.get("type") == "json_object" else None


def build_body(endpoint: Endpoint, request: ChatRequest, *, stream: bool) -> Wire:
    upstream = Upstream.of(endpoint)
    options: Wire = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "seed": request.seed,
        "num_predict": request.output_limit(),
        "stop": stop_list(request),
        "presence_penalty": request.presence_penalty,
        "frequency_penalty": request.frequency_penalty,
    }
    body: Wire = {
        "model": endpoint.upstream_model,
        "messages": [_message(m, upstream) for m in request.messages],
        "stream": stream,
        "options": {key: value for key, value in options.items() if value is not None},
        "format": _format(request),
        "tools": request.tools,
    }
    return {key: value for key, value in body.items() if value not in (None, {})}


def build_request(endpoint: Endpoint, request: ChatRequest, *, stream: bool) -> httpx.Request:
    """``POST {base_url}/api/chat``; a key, if configured (e.g. behind a proxy), as Bearer."""
    headers = {"accept": "application/x-ndjson"} if stream else {}
    if endpoint.api_key is not None:
        headers["authorization"] = f"Bearer {endpoint.api_key.get_secret_value()}"
    return json_request(
        endpoint, "/api/chat", build_body(endpoint, request, stream=stream), headers
    )


class _Function(BaseModel):
    name: str = ""
    arguments: JsonValue = None


class _ToolCall(BaseModel):
    function: _Function = _Function()


class _Message(BaseModel):
    content: str = ""
    tool_calls: list[_ToolCall] = []


class _Reply(BaseModel):
    model: str = ""
    message: _Message = _Message()
    done: bool = False
    done_reason: str | None = None
    prompt_eval_count: int = 0
    eval_count: int = 0
    error: str | None = None

    def calls(self) -> list[JsonObject]:
        return [
            tool_call(c.function.name, c.function.arguments or {}) for c in self.message.tool_calls
        ]

    def finish(self, *, called: bool) -> str:
        return "tool_calls" if called else finish_reason(DONE_REASONS, self.done_reason)

    def counts(self) -> Usage:
        return usage(self.prompt_eval_count, self.eval_count)


def parse_response(response: httpx.Response) -> ChatCompletion:
    reply = _Reply.model_validate_json(response.content)
    calls = reply.calls()
    return completion(
        completion_id=None,
        model=reply.model,
        text=reply.message.content,
        finish=reply.finish(called=bool(calls)),
        counts=reply.counts(),
        calls=calls,
    )


class OllamaStream:
    """Ollama's NDJSON -> chunks; the ``done`` line ends it with the finish and usage."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.done = False
        self._lines = NDJSONDecoder()
        self._out = ChunkWriter()
        self._calls = 0

    def feed(self, data: bytes) -> Iterator[ChatChunk]:
        return self._take(self._lines.feed(data))

    def close(self) -> Iterator[ChatChunk]:
        yield from self._take(self._lines.close())
        if not self.done:
            raise self.upstream.cut_short()

    def _take(self, lines: list[str]) -> Iterator[ChatChunk]:
        for line in lines:
            if self.done:
                break
            reply = _Reply.model_validate_json(line)
            if reply.error is not None:
                raise self.upstream.reported_error(500, reply.error)
            self._out.model = reply.model or self._out.model
            if reply.message.content:
                yield self._out.text(reply.message.content)
            if calls := reply.calls():
                indexed: list[JsonObject] = [
                    {"index": self._calls + i, **c} for i, c in enumerate(calls)
                ]
                self._calls += len(calls)
                yield self._out.tool_calls(indexed)
            if reply.done:
                self.done = True
                yield self._out.finish(reply.finish(called=self._calls > 0))
                yield self._out.usage(reply.counts())


class OllamaAdapter(HttpAdapter):
    FEATURES = frozenset({"developer_role", "max_completion_tokens", "stop", "seed", "json_schema"})

    def build(self, request: ChatRequest, *, stream: bool) -> httpx.Request:
        return build_request(self.endpoint, request, stream=stream)

    def parse(self, response: httpx.Response) -> ChatCompletion:
        return parse_response(response)

    def translator(self) -> StreamTranslator:
        return OllamaStream(self.upstream)

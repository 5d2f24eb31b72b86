"""Google Gemini: ``generateContent`` and ``streamGenerateContent?alt=sse``.

Roles become ``user``/``model``, system and developer text ``systemInstruction``, sampling
options ``generationConfig``, ``data:`` images ``inline_data``, tools ``functionDeclarations``
(with their JSON Schema as ``parametersJsonSchema``). The key travels in the
``x-goog-api-key`` header, never in the URL, so it cannot end up in a logged request line.
Every streamed event is a whole ``GenerateContentResponse``; there is no end marker, so a
stream that closes without a ``finishReason`` was cut short.
"""

from __future__ import annotations

import mimetypes
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
    tool_names,
)
from adapters.failures import Upstream
from adapters.replies import ChunkWriter, completion, finish_reason, tool_call, usage
from adapters.sse import SSEDecoder, SSEEvent
from adapters.transport import HttpAdapter, StreamTranslator, json_request
from app.errors import UpstreamAuthError, UpstreamError
from app.schemas import ChatChunk, ChatCompletion, ChatMessage, ChatRequest, ImagePart, Usage

FINISH_REASONS = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter",
                  "RECITATION": "content_filter", "BLOCKLIST": "content_filter",
                  "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
                  "IMAGE_SAFETY": "content_filter"}  # fmt: skip
_MODES = {"auto": "AUTO", "required": "ANY", "none": "NONE"}


def _image(part: ImagePart) -> Wire:
    inline = data_url(part.image_url.url)
    if inline is not None:
        return {"inline_data": {"mime_type": inline.media_type, "data": inline.data}}
    guessed = mimetypes.guess_type(part.image_url.url)[0]
    file: Wire = {"file_uri": part.image_url.url}
    return {"file_data": {"mime_type": guessed, **file} if guessed else file}


def _turn(message: ChatMessage, names: dict[str, str]) -> tuple[str, list[Wire]]:
    if message.role == "tool":  # Gemini answers a call by function name, not by id
        call_id = message.tool_call_id or ""
        answer = {"name": names.get(call_id, call_id), "response": {"content": message.text()}}
        return "user", [{"functionResponse": answer}]
    out: list[Wire] = [{"text": p.text} if p.type == "text" else _image(p) for p in parts(message)]
    out += [{"functionCall": {"name": c.name, "args": c.arguments}} for c in tool_calls(message)]
    return ("model" if message.role == "assistant" else "user"), out


def _contents(messages: list[ChatMessage]) -> list[Wire]:
    """Turns that alternate, as Gemini wants: the answers to one turn's calls go together."""
    names = tool_names(messages)
    turns: list[tuple[str, list[Wire]]] = []
    for message in messages:
        if message.role in ("system", "developer"):
            continue
        role, found = _turn(message, names)
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(found)
        else:
            turns.append((role, found))
    return [{"role": role, "parts": found} for role, found in turns]


def _generation_config(request: ChatRequest) -> Wire:
    config: Wire = {
        "temperature": request.temperature,
        "topP": request.top_p,
        "maxOutputTokens": request.output_limit(),
        "stopSequences": stop_list(request),
        "seed": request.seed,
        "presencePenalty": request.presence_penalty,
        "frequencyPenalty": request.frequency_penalty,
    }
    fmt = request.response_format or {}
    if fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
    spec = fmt.get("json_schema")
    if isinstance(spec, dict) and isinstance(spec.get("schema"), dict):
        config["responseJsonSchema"] = spec["schema"]
    return {key: value for key, value in config.items() if value is not None}


def build_body(request: ChatRequest) -> Wire:
    body: Wire = {"contents": _contents(request.messages)}
    if system := system_text(request.messages):
        body["systemInstruction"] = {"parts": [{"text": system}]}
    if config := _generation_config(request):
        body["generationConfig"] = config
    if declared := functions(request):
        declarations = [
            {"name": f.name, "parametersJsonSchema": f.parameters}
            | ({"description": f.description} if f.description else {})
            for f in declared
        ]
        body["tools"] = [{"functionDeclarations": declarations}]
        choice = request.tool_choice
        forced = named_tool(choice)
        mode = "ANY" if forced else _MODES.get(choice) if isinstance(choice, str) else None
        if mode:
            calling: Wire = {"mode": mode, **({"allowedFunctionNames": [forced]} if forced else {})}
            body["toolConfig"] = {"functionCallingConfig": calling}
    return body


def build_request(endpoint: Endpoint, request: ChatRequest, *, stream: bool) -> httpx.Request:
    """``POST {base_url}/v1beta/models/{model}:generateContent`` (or the SSE stream method)."""
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    model = endpoint.upstream_model.removeprefix("models/")
    headers = {"accept": "text/event-stream"} if stream else {}
    if endpoint.api_key is not None:
        headers["x-goog-api-key"] = endpoint.api_key.get_secret_value()
    return json_request(endpoint, f"/v1beta/models/{model}:{method}", build_body(request), headers)


# Reply models: only the fields Switchboard reads, named as Gemini's JSON names them.


class _Call(BaseModel):
    name: str = ""
    args: JsonValue = None
    id: str | None = None


class _Part(BaseModel):
    text: str = ""
    thought: bool = False
    functionCall: _Call | None = None


class _Content(BaseModel):
    parts: list[_Part] = []


class _Candidate(BaseModel):
    content: _Content = _Content()
    finishReason: str | None = None


class _UsageMetadata(BaseModel):
    promptTokenCount: int = 0
    candidatesTokenCount: int = 0
    thoughtsTokenCount: int = 0
    totalTokenCount: int = 0

    def counts(self) -> Usage:
        """Thinking tokens are billed as output, as OpenAI's reasoning tokens are."""
        completion_tokens = self.candidatesTokenCount + self.thoughtsTokenCount
        return usage(self.promptTokenCount, completion_tokens, self.totalTokenCount)


class _Feedback(BaseModel):
    blockReason: str | None = None


class _Error(BaseModel):
    code: int = 500
    message: str = ""


class _Response(BaseModel):
    candidates: list[_Candidate] = []
    usageMetadata: _UsageMetadata | None = None
    modelVersion: str = ""
    responseId: str = ""
    promptFeedback: _Feedback | None = None
    error: _Error | None = None

    def text(self) -> str:
        found = self.candidates[0].content.parts if self.candidates else []
        return "".join(p.text for p in found if not p.thought)

    def calls(self) -> list[JsonObject]:
        found = self.candidates[0].content.parts if self.candidates else []
        return [
            tool_call(p.functionCall.name, p.functionCall.args or {}, p.functionCall.id)
            for p in found
            if p.functionCall is not None
        ]

    def finish(self, *, called: bool) -> str | None:
        """OpenAI's finish reason, or None while the candidate is still going."""
        if not self.candidates:  # the prompt itself was blocked
            blocked = self.promptFeedback is not None and self.promptFeedback.blockReason
            return "content_filter" if blocked else None
        reason = self.candidates[0].finishReason
        if reason is None:
            return None
        return (
            "tool_calls" if called and reason == "STOP" else finish_reason(FINISH_REASONS, reason)
        )


def parse_response(response: httpx.Response) -> ChatCompletion:
    reply = _Response.model_validate_json(response.content)
    calls = reply.calls()
    return completion(
        completion_id=reply.responseId,
        model=reply.modelVersion,
        text=reply.text(),
        finish=reply.finish(called=bool(calls)) or "stop",
        counts=reply.usageMetadata.counts() if reply.usageMetadata else None,
        calls=calls,
    )


class GeminiStream:
    """Gemini's SSE -> chunks; usage is cumulative per event, sent once at the end."""

    done = False  # Gemini never says so: the body just ends

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self._sse = SSEDecoder()
        self._out = ChunkWriter()
        self._calls = 0
        self._finished = False
        self._usage: Usage | None = None

    def feed(self, data: bytes) -> Iterator[ChatChunk]:
        return self._take(self._sse.feed(data))

    def close(self) -> Iterator[ChatChunk]:
        yield from self._take(self._sse.close())
        if not self._finished:
            raise self.upstream.cut_short()
        if self._usage is not None:
            yield self._out.usage(self._usage)

    def _take(self, events: list[SSEEvent]) -> Iterator[ChatChunk]:
        for event in events:
            reply = _Response.model_validate_json(event.data)
            if reply.error is not None:
                raise self.upstream.reported_error(reply.error.code, reply.error.message)
            self._out.id = reply.responseId or self._out.id
            self._out.model = reply.modelVersion or self._out.model
            if text := reply.text():
                yield self._out.text(text)
            if calls := reply.calls():
                indexed: list[JsonObject] = [
                    {"index": self._calls + i, **c} for i, c in enumerate(calls)
                ]
                self._calls += len(calls)
                yield self._out.tool_calls(indexed)
            if reason := reply.finish(called=self._calls > 0):
                self._finished = True
                yield self._out.finish(reason)
            if reply.usageMetadata is not None:
                self._usage = reply.usageMetadata.counts()


class GeminiAdapter(HttpAdapter):
    FEATURES = frozenset({"developer_role", "max_completion_tokens", "stop", "seed", "json_schema"})

    def build(self, request: ChatRequest, *, stream: bool) -> httpx.Request:
        return build_request(self.endpoint, request, stream=stream)

    def parse(self, response: httpx.Response) -> ChatCompletion:
        return parse_response(response)

    def translator(self) -> StreamTranslator:
        return GeminiStream(self.upstream)

    def http_error(self, response: httpx.Response) -> UpstreamError:
        error = self.upstream.error(response)
        if response.status_code == 400 and b"API_KEY_INVALID" in response.content:
            return UpstreamAuthError(error.message)  # Gemini answers a bad key with a 400
        return error

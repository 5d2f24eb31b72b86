"""Anthropic's Messages API (``POST /v1/messages``): its requests as a ``ChatRequest``, and back.

Served for every model in the catalog, not only Anthropic's: the request becomes the neutral
``ChatRequest`` and the answer comes back as an Anthropic ``message``.

- ``system`` (a string or text blocks) is the system message; ``max_tokens`` (required) is the
  output limit; ``stop_sequences`` is ``stop``; ``temperature``, ``top_p`` pass through;
  ``metadata.user_id`` is the ``user``.
- Blocks: ``text``; ``image`` with a ``base64`` source (a ``data:`` URL inside) or a ``url``
  source; the assistant's ``tool_use`` blocks are its ``tool_calls``; the user's
  ``tool_result`` blocks are ``tool`` messages, before the rest of that user turn (``is_error``
  results are marked ``[tool error]``).
- ``tools`` become function tools (``input_schema`` is the JSON Schema); ``tool_choice``
  ``auto``/``any``/``tool``/``none`` is ``auto``/``required``/that function/``none``, and
  ``disable_parallel_tool_use`` is ``parallel_tool_calls: false``. A ``web_search_*`` server
  tool makes the request need the ``web_search`` capability (a model that searches by itself).
- ``output_config.format`` (a JSON schema) is ``response_format`` ``json_schema``, so it goes
  to models whose server takes a schema.
- Refused with a 400 naming the field: ``top_k`` (no portable equivalent), ``thinking``,
  ``output_config.effort``, ``speed: fast``, ``inference_geo``, other server tools,
  ``document`` / ``thinking`` / file blocks, images inside tool results, unknown fields.
  ``cache_control`` (top-level or on blocks) and ``diagnostics`` are accepted and not
  forwarded: prompt caching is a provider's billing detail, the answer is the same.

The reply's ``stop_reason`` is ``end_turn`` / ``max_tokens`` / ``tool_use`` / ``refusal``; Chat
Completions does not say which stop sequence matched, so ``stop_sequence`` is always null.
"""

from __future__ import annotations

import json
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from app.errors import SwitchboardError
from app.schemas import (
    ChatCompletion,
    ChatMessage,
    ChatRequest,
    ContentPart,
    ImagePart,
    ImageURL,
    RoutingPreferences,
    TextPart,
    Usage,
)
from app.wire.parsing import parse, refuse, text_or_list, where

JsonObject = dict[str, JsonValue]

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "content_filter": "refusal"}  # fmt: skip
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
               403: "permission_error", 404: "not_found_error", 413: "request_too_large",
               429: "rate_limit_error", 500: "api_error", 503: "overloaded_error",
               504: "timeout_error", 529: "overloaded_error"}  # fmt: skip


class _Metadata(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | None = None


class _OutputConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    effort: str | None = None
    format: JsonObject | None = None


class MessagesRequest(BaseModel):
    """A Messages API request; fields it does not list are refused (``extra="forbid"``)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    max_tokens: int = Field(ge=1)
    messages: list[JsonObject] = Field(min_length=1)
    system: str | list[JsonObject] | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = None
    tools: list[JsonObject] | None = None
    tool_choice: JsonObject | None = None
    metadata: _Metadata | None = None
    stream: bool = False
    service_tier: Literal["auto", "standard_only"] | None = None
    thinking: JsonObject | None = None
    output_config: _OutputConfig | None = None
    speed: Literal["standard", "fast"] | None = None
    inference_geo: str | None = None
    cache_control: JsonObject | None = None
    diagnostics: JsonObject | None = None
    switchboard: RoutingPreferences | None = None

    _system = field_validator("system", mode="before")(text_or_list)


class _Turn(BaseModel):
    role: Literal["user", "assistant"]
    content: str | list[JsonObject]

    _content = field_validator("content", mode="before")(text_or_list)


class _Text(BaseModel):
    type: Literal["text"]
    text: str


class _Source(BaseModel):
    type: Literal["base64", "url"]
    media_type: str | None = None
    data: str | None = None
    url: str | None = None


class _Image(BaseModel):
    type: Literal["image"]
    source: _Source


class _ToolUse(BaseModel):
    type: Literal["tool_use"]
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    input: JsonObject


class _ToolResult(BaseModel):
    type: Literal["tool_result"]
    tool_use_id: str = Field(min_length=1)
    content: str | list[JsonObject] = ""
    is_error: bool = False

    _content = field_validator("content", mode="before")(text_or_list)


class _Tool(BaseModel):
    name: str = Field(min_length=1)
    description: str | None = None
    input_schema: JsonObject
    type: Literal["custom"] | None = None


class _ToolChoice(BaseModel):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


def to_chat(request: MessagesRequest) -> ChatRequest:
    """The neutral request (see the module docstring); a 400 names what cannot be honoured."""
    if request.top_k is not None:
        raise refuse("top_k", "top_k has no equivalent across models; use temperature or top_p")
    if request.thinking is not None and request.thinking.get("type") != "disabled":
        raise refuse("thinking", "extended thinking is not supported across models")
    if request.speed == "fast":
        raise refuse("speed", "fast mode is not supported across models")
    if request.inference_geo is not None:
        raise refuse("inference_geo", "Switchboard cannot choose where a provider runs a model")
    messages = _system(request.system)
    for i, raw in enumerate(request.messages):
        path = where("messages", i)
        messages += _turn(parse(_Turn, raw, path), path)
    tools, searches = _tools(request.tools or [])
    prefs = request.switchboard
    if searches:
        prefs = prefs or RoutingPreferences()
        wanted = sorted({*(prefs.capabilities or []), "web_search"})
        prefs = prefs.model_copy(update={"capabilities": wanted})
    choice, parallel = _tool_choice(request.tool_choice, bool(tools))
    fields: dict[str, object] = {
        "model": request.model,
        "messages": messages,
        "stream": request.stream,
        "max_tokens": request.max_tokens,
        "stop": request.stop_sequences or None,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "tools": tools or None,
        "tool_choice": choice,
        "parallel_tool_calls": parallel,
        "response_format": _response_format(request.output_config),
        "user": request.metadata.user_id if request.metadata else None,
        "switchboard": prefs,
    }
    return parse(ChatRequest, fields, "request")


def _response_format(config: _OutputConfig | None) -> JsonObject | None:
    if config is None:
        return None
    if config.effort is not None:
        raise refuse("output_config.effort", "effort cannot be set across models")
    if config.format is None:
        return None
    if config.format.get("type") != "json_schema" or not isinstance(
        config.format.get("schema"), dict
    ):
        raise refuse("output_config.format", "only a json_schema format with a schema is known")
    return {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": config.format["schema"]},
    }


def _system(system: str | list[JsonObject] | None) -> list[ChatMessage]:
    if system is None:
        return []
    if isinstance(system, str):
        return [ChatMessage(role="system", content=system)] if system else []
    texts = [parse(_Text, block, where("system", i)).text for i, block in enumerate(system)]
    return [ChatMessage(role="system", content="\n\n".join(texts))] if texts else []


def _turn(turn: _Turn, path: str) -> list[ChatMessage]:
    """One Anthropic turn as chat messages: tool results first, then the turn itself."""
    if isinstance(turn.content, str):
        return [ChatMessage(role=turn.role, content=turn.content)]
    parts: list[ContentPart] = []
    calls: list[JsonValue] = []
    results: list[ChatMessage] = []
    for j, block in enumerate(turn.content):
        block_path = where(path, "content", j)
        kind = block.get("type")
        if kind == "text":
            parts.append(TextPart(type="text", text=parse(_Text, block, block_path).text))
        elif kind == "image":
            parts.append(_image(parse(_Image, block, block_path), block_path))
        elif kind == "tool_use" and turn.role == "assistant":
            use = parse(_ToolUse, block, block_path)
            function: JsonObject = {"name": use.name, "arguments": json.dumps(use.input)}
            calls.append({"id": use.id, "type": "function", "function": function})
        elif kind == "tool_result" and turn.role == "user":
            results.append(_result(parse(_ToolResult, block, block_path), block_path))
        else:
            raise refuse(
                where(block_path, "type"),
                f"{kind!r} blocks are not supported in {turn.role} turns; send text, image, "
                "tool_use (assistant) or tool_result (user) blocks",
            )
    messages = results
    if parts or calls or not results:
        tool_calls = [c for c in calls if isinstance(c, dict)] or None
        content: str | list[ContentPart] | None = parts if parts else None
        if content is None and not tool_calls:
            content = ""
        messages.append(ChatMessage(role=turn.role, content=content, tool_calls=tool_calls))
    return messages


def _image(block: _Image, path: str) -> ImagePart:
    source = block.source
    if source.type == "base64":
        if not source.data or not source.media_type:
            raise refuse(where(path, "source"), "a base64 source needs media_type and data")
        url = f"data:{source.media_type};base64,{source.data}"
    else:
        if not source.url:
            raise refuse(where(path, "source", "url"), "a url source needs its url")
        url = source.url
    return ImagePart(type="image_url", image_url=ImageURL(url=url))


def _result(block: _ToolResult, path: str) -> ChatMessage:
    if isinstance(block.content, str):
        text = block.content
    else:
        texts = []
        for k, inner in enumerate(block.content):
            if inner.get("type") != "text":
                raise refuse(where(path, "content", k, "type"), "tool results may hold text only")
            texts.append(parse(_Text, inner, where(path, "content", k)).text)
        text = "\n".join(texts)
    if block.is_error:
        text = f"[tool error] {text}"
    return ChatMessage(role="tool", tool_call_id=block.tool_use_id, content=text)


def _tools(tools: list[JsonObject]) -> tuple[list[JsonObject], bool]:
    """Chat function tools, and whether Anthropic's web search server tool was asked for."""
    found: list[JsonObject] = []
    searches = False
    for i, raw in enumerate(tools):
        kind = raw.get("type")
        path = where("tools", i)
        if isinstance(kind, str) and kind.startswith("web_search_"):
            searches = True
            continue
        if kind not in (None, "custom"):
            raise refuse(where(path, "type"), f"server tool {kind!r} is not supported")
        tool = parse(_Tool, raw, path)
        function: JsonObject = {"name": tool.name, "parameters": tool.input_schema}
        if tool.description is not None:
            function["description"] = tool.description
        found.append({"type": "function", "function": function})
    return found, searches


def _tool_choice(raw: JsonObject | None, has_tools: bool) -> tuple[JsonValue, bool | None]:
    if raw is None:
        return None, None
    choice = parse(_ToolChoice, raw, "tool_choice")
    parallel = False if choice.disable_parallel_tool_use else None
    if not has_tools:
        if choice.type in ("any", "tool"):
            raise refuse("tool_choice", f"{choice.type!r} needs at least one tool")
        return None, None
    if choice.type == "tool":
        if not choice.name:
            raise refuse("tool_choice.name", "a tool choice of type 'tool' names the tool")
        return {"type": "function", "function": {"name": choice.name}}, parallel
    return {"auto": "auto", "any": "required", "none": "none"}[choice.type], parallel


# --- the reply ---------------------------------------------------------------------------------


def new_message_id() -> str:
    return "msg_" + uuid.uuid4().hex


def usage_object(usage: Usage | None, input_tokens: int = 0) -> JsonObject:
    if usage is None:
        return {"input_tokens": input_tokens, "output_tokens": 0}
    return {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens}


def tool_input(arguments: JsonValue) -> JsonObject:
    """A tool call's arguments (OpenAI's JSON string) as the object ``tool_use`` carries."""
    if isinstance(arguments, dict):
        return arguments
    try:
        value = json.loads(arguments) if isinstance(arguments, str) and arguments else {}
    except ValueError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"arguments": value}


def content_blocks(completion: ChatCompletion) -> list[JsonValue]:
    if not completion.choices:
        return []
    message = completion.choices[0].message
    blocks: list[JsonValue] = []
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    for call in message.tool_calls or []:
        spec = call.get("function")
        spec = spec if isinstance(spec, dict) else {}
        blocks.append({"type": "tool_use", "id": str(call.get("id") or "toolu_" + uuid.uuid4().hex),
                       "name": str(spec.get("name", "")),
                       "input": tool_input(spec.get("arguments"))})  # fmt: skip
    return blocks


def message_object(
    completion: ChatCompletion, model: str, switchboard: dict[str, object]
) -> dict[str, object]:
    """The whole ``message`` for a finished (non-streamed) answer."""
    finish = completion.choices[0].finish_reason if completion.choices else None
    return {
        "id": new_message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content_blocks(completion),
        "stop_reason": STOP_REASONS.get(finish or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": usage_object(completion.usage),
        "switchboard": switchboard,
    }


def error_body(error: SwitchboardError) -> dict[str, object]:
    """Anthropic's error shape, its error type chosen by the HTTP status."""
    status = error.status_code
    kind = ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")
    return {"type": "error", "error": {"type": kind, "message": error.message}}


class CountTokensRequest(MessagesRequest):
    """``POST /v1/messages/count_tokens``: a Messages request without ``max_tokens``."""

    max_tokens: int = Field(default=1, ge=1)

"""The OpenAI Responses API (``POST /v1/responses``): its requests as a ``ChatRequest``, and back.

Input items become chat messages: ``message`` items (``input_text`` / ``output_text`` /
``refusal`` parts, ``input_image`` parts with an ``image_url``, which may be a ``data:`` URL),
``function_call`` items become the assistant's ``tool_calls`` (consecutive calls join one
assistant turn, as Chat Completions wants them), ``function_call_output`` items become ``tool``
messages; ``instructions`` is the system message (not carried over with
``previous_response_id``, as OpenAI does). ``max_output_tokens`` is ``max_completion_tokens``
(sent as ``max_tokens`` to servers that only know that), ``text.format`` is ``response_format``.

Tools: function tools in the Responses' flat shape become Chat function tools. A
``web_search`` / ``web_search_preview`` tool makes the request need the ``web_search``
capability: it is routed to a model that searches by itself (e.g. Perplexity's), and a named
model without it is refused. The answer is that model's text; no ``web_search_call`` item is
reported. Other built-in tools (file search, computer use, code interpreter, MCP, ...) and every
field Switchboard cannot honour (``reasoning``, ``include``, ``truncation: auto``, ``background``,
``conversation``, file inputs, ...) are refused with a 400 naming the field, never dropped.
``prompt_cache_key`` and ``stream_options`` are accepted and have no effect (there is no
provider-side prompt cache to steer, and no obfuscation padding is sent).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

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
WEB_SEARCH_TOOLS = ("web_search", "web_search_preview")


class TextConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: JsonObject | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ResponsesRequest(BaseModel):
    """A Responses API request; fields it does not list are refused (``extra="forbid"``)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    input: str | list[JsonObject]
    instructions: str | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    tools: list[JsonObject] | None = None
    tool_choice: str | JsonObject | None = None
    parallel_tool_calls: bool | None = None
    stream: bool = False
    stream_options: JsonObject | None = None
    previous_response_id: str | None = Field(default=None, min_length=1)
    store: bool | None = None
    metadata: dict[str, str] | None = Field(default=None, max_length=16)
    text: TextConfig | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    reasoning: JsonObject | None = None
    include: list[str] | None = None
    truncation: Literal["disabled", "auto"] | None = None
    service_tier: str | None = None
    background: bool | None = None
    max_tool_calls: int | None = None
    top_logprobs: int | None = None
    switchboard: RoutingPreferences | None = None

    _input = field_validator("input", mode="before")(text_or_list)

    @property
    def stored(self) -> bool:
        """``store`` defaults to true, as on OpenAI."""
        return self.store is not False


class _Text(BaseModel):
    type: Literal["input_text", "output_text"]
    text: str


class _Refusal(BaseModel):
    type: Literal["refusal"]
    refusal: str


class _Image(BaseModel):
    type: Literal["input_image"]
    image_url: str | None = Field(default=None, min_length=1)
    file_id: str | None = None
    detail: Literal["auto", "low", "high"] | None = None


class _Message(BaseModel):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[JsonObject]

    _content = field_validator("content", mode="before")(text_or_list)


class _FunctionCall(BaseModel):
    type: Literal["function_call"]
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str


class _FunctionCallOutput(BaseModel):
    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1)
    output: str | list[JsonObject]

    _output = field_validator("output", mode="before")(text_or_list)


class _FunctionTool(BaseModel):
    type: Literal["function"]
    name: str = Field(min_length=1)
    description: str | None = None
    parameters: JsonObject | None = None
    strict: bool | None = None


def check_supported(request: ResponsesRequest) -> None:
    """Refuse the fields Switchboard cannot honour, naming each (see the module docstring)."""
    if request.reasoning and any(v is not None for v in request.reasoning.values()):
        raise refuse("reasoning", "reasoning settings are not supported across models")
    if request.include:
        raise refuse("include", f"{request.include[0]!r} cannot be included")
    if request.truncation == "auto":
        raise refuse("truncation", "only 'disabled' is supported; shorten the input instead")
    if request.service_tier not in (None, "auto", "default"):
        raise refuse("service_tier", f"{request.service_tier!r} is not supported")
    if request.background:
        raise refuse("background", "background responses are not supported")
    if request.max_tool_calls is not None:
        raise refuse("max_tool_calls", "cannot be enforced across models")
    if request.top_logprobs:
        raise refuse("top_logprobs", "log probabilities are not supported on this API")
    if request.text is not None and request.text.verbosity not in (None, "medium"):
        raise refuse("text.verbosity", "verbosity cannot be set across models")


def conversation(request: ResponsesRequest, history: list[ChatMessage]) -> list[ChatMessage]:
    """The conversation so far (``history`` kept for ``previous_response_id``) plus the input."""
    messages = list(history)
    if isinstance(request.input, str):
        messages.append(ChatMessage(role="user", content=request.input))
        return messages
    for i, item in enumerate(request.input):
        path = where("input", i)
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(parse(_Message, item, path), path))
        elif kind == "function_call":
            _add_call(messages, parse(_FunctionCall, item, path))
        elif kind == "function_call_output":
            output = parse(_FunctionCallOutput, item, path)
            text = _output_text(output.output, where(path, "output"))
            messages.append(ChatMessage(role="tool", tool_call_id=output.call_id, content=text))
        else:
            raise refuse(
                where(path, "type"),
                f"input items of type {kind!r} are not supported; send message, function_call "
                "and function_call_output items",
            )
    return messages


def _message(item: _Message, path: str) -> ChatMessage:
    if isinstance(item.content, str):
        return ChatMessage(role=item.role, content=item.content)
    parts: list[ContentPart] = []
    for j, raw in enumerate(item.content):
        part_path = where(path, "content", j)
        kind = raw.get("type")
        if kind in ("input_text", "output_text"):
            parts.append(TextPart(type="text", text=parse(_Text, raw, part_path).text))
        elif kind == "refusal":
            parts.append(TextPart(type="text", text=parse(_Refusal, raw, part_path).refusal))
        elif kind == "input_image":
            parts.append(_image(parse(_Image, raw, part_path), part_path))
        else:
            raise refuse(
                where(part_path, "type"),
                f"content parts of type {kind!r} are not supported; send input_text or input_image",
            )
    return ChatMessage(role=item.role, content=parts)


def _image(part: _Image, path: str) -> ImagePart:
    if part.image_url is None:
        if part.file_id is not None:
            raise refuse(where(path, "file_id"), "files are not supported; send image_url")
        raise refuse(where(path, "image_url"), "an image needs an image_url (a URL or data URL)")
    return ImagePart(type="image_url", image_url=ImageURL(url=part.image_url, detail=part.detail))


def _add_call(messages: list[ChatMessage], call: _FunctionCall) -> None:
    """A function call joins the assistant turn just before it, or starts one."""
    entry: JsonObject = {
        "id": call.call_id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }
    last = messages[-1] if messages else None
    if last is not None and last.role == "assistant":
        messages[-1] = last.model_copy(update={"tool_calls": [*(last.tool_calls or []), entry]})
    else:
        messages.append(ChatMessage(role="assistant", content=None, tool_calls=[entry]))


def _output_text(output: str | list[JsonObject], path: str) -> str:
    if isinstance(output, str):
        return output
    texts = []
    for j, raw in enumerate(output):
        if raw.get("type") != "input_text":
            raise refuse(where(path, j, "type"), "function outputs may hold input_text only")
        texts.append(parse(_Text, raw, where(path, j)).text)
    return "\n".join(texts)


def to_chat(request: ResponsesRequest, messages: list[ChatMessage]) -> ChatRequest:
    """The neutral request for ``messages`` (from ``conversation``) with the request's settings."""
    check_supported(request)
    if not messages:
        raise refuse("input", "there is nothing to answer: send at least one input item")
    tools, searches = _tools(request.tools or [])
    prefs = request.switchboard
    if searches:
        prefs = prefs or RoutingPreferences()
        wanted = sorted({*(prefs.capabilities or []), "web_search"})
        prefs = prefs.model_copy(update={"capabilities": wanted})
    system = []
    if request.instructions:
        system = [ChatMessage(role="system", content=request.instructions)]
    fields: dict[str, object] = {
        "model": request.model,
        "messages": [*system, *messages],
        "stream": request.stream,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_completion_tokens": request.max_output_tokens,
        "tools": tools or None,
        "tool_choice": _tool_choice(request.tool_choice, bool(tools)),
        "parallel_tool_calls": request.parallel_tool_calls,
        "response_format": _response_format(request.text),
        "user": request.user or request.safety_identifier,
        "switchboard": prefs,
    }
    return parse(ChatRequest, fields, "request")


def _tools(tools: list[JsonObject]) -> tuple[list[JsonObject], bool]:
    """Chat function tools, and whether a web-search tool was asked for."""
    found: list[JsonObject] = []
    searches = False
    for i, tool in enumerate(tools):
        kind = tool.get("type")
        path = where("tools", i)
        if isinstance(kind, str) and kind.startswith(WEB_SEARCH_TOOLS):
            options = sorted(set(tool) - {"type"})
            if options:
                raise refuse(where(path, options[0]), "the web search is the model's own")
            searches = True
        elif kind == "function":
            spec = parse(_FunctionTool, tool, path)
            function: JsonObject = {"name": spec.name}
            if spec.description is not None:
                function["description"] = spec.description
            function["parameters"] = spec.parameters or {"type": "object", "properties": {}}
            if spec.strict:
                function["strict"] = True
            found.append({"type": "function", "function": function})
        else:
            raise refuse(
                where(path, "type"),
                f"built-in tool {kind!r} is not supported; use function tools, or web_search "
                "(answered by a model that searches)",
            )
    return found, searches


def _tool_choice(choice: str | JsonObject | None, has_functions: bool) -> JsonValue:
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise refuse("tool_choice", f"{choice!r} is not one of auto, none, required")
        if not has_functions:  # nothing to choose from: web search is the model's own
            if choice == "required":
                raise refuse("tool_choice", "'required' needs at least one function tool")
            return None
        return choice
    name = choice.get("name")
    if choice.get("type") != "function" or not isinstance(name, str):
        raise refuse("tool_choice", "only auto, none, required or a function can be chosen")
    return {"type": "function", "function": {"name": name}}


def _response_format(text: TextConfig | None) -> JsonObject | None:
    form = text.format if text is not None else None
    if form is None or form.get("type") == "text":
        return None
    if form.get("type") == "json_object":
        return {"type": "json_object"}
    if form.get("type") == "json_schema":
        schema = {k: v for k, v in form.items() if k != "type"}
        return {"type": "json_schema", "json_schema": schema}
    kind = form.get("type")
    raise refuse("text.format.type", f"{kind!r} is not text, json_object or json_schema")


# --- the reply ---------------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def text_part(text: str) -> JsonObject:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item_id: str, text: str | None, status: str) -> JsonObject:
    content: list[JsonValue] = [text_part(text)] if text is not None else []
    return {"type": "message", "id": item_id, "status": status, "role": "assistant",
            "content": content}  # fmt: skip


def call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> JsonObject:
    return {"type": "function_call", "id": item_id, "call_id": call_id, "name": name,
            "arguments": arguments, "status": status}  # fmt: skip


def usage_object(usage: Usage) -> JsonObject:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens or usage.prompt_tokens + usage.completion_tokens,
    }


def ending(finish_reason: str | None) -> tuple[str, JsonObject | None]:
    """The response's status and ``incomplete_details`` for a Chat finish reason."""
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def output_items(completion: ChatCompletion) -> list[JsonValue]:
    """A completion's answer as output items: the message, then one item per function call."""
    if not completion.choices:
        return []
    message = completion.choices[0].message
    items: list[JsonValue] = []
    if message.content or not message.tool_calls:
        items.append(message_item(new_id("msg"), message.content or "", "completed"))
    for call in message.tool_calls or []:
        spec = call.get("function")
        spec = spec if isinstance(spec, dict) else {}
        items.append(call_item(new_id("fc"), str(call.get("id") or new_id("call")),
                               str(spec.get("name", "")), str(spec.get("arguments") or "{}"),
                               "completed"))  # fmt: skip
    return items


def assistant_turn(output: list[JsonValue]) -> ChatMessage:
    """Output items as the assistant message a later turn's history carries."""
    texts: list[str] = []
    calls: list[JsonValue] = []
    for item in output:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message" and isinstance(content := item.get("content"), list):
            texts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
        elif item.get("type") == "function_call":
            calls.append({"id": item.get("call_id"), "type": "function",
                          "function": {"name": item.get("name"),
                                       "arguments": item.get("arguments")}})  # fmt: skip
    tool_calls = [c for c in calls if isinstance(c, dict)] or None
    return ChatMessage(role="assistant", content="".join(texts) or None, tool_calls=tool_calls)


@dataclass(frozen=True)
class Frame:
    """The response object around an output: the request's settings echoed, as OpenAI does."""

    request: ResponsesRequest
    id: str = field(default_factory=lambda: new_id("resp"))
    created_at: int = field(default_factory=lambda: int(time.time()))

    def render(
        self,
        *,
        model: str,
        status: str,
        output: list[JsonValue],
        usage: Usage | None = None,
        error: JsonObject | None = None,
        incomplete: JsonObject | None = None,
        switchboard: dict[str, object] | None = None,
    ) -> dict[str, object]:
        r = self.request
        body: dict[str, object] = {
            "id": self.id, "object": "response", "created_at": self.created_at,
            "status": status, "background": False, "error": error,
            "incomplete_details": incomplete, "instructions": r.instructions,
            "max_output_tokens": r.max_output_tokens, "max_tool_calls": None, "model": model,
            "output": output, "parallel_tool_calls": r.parallel_tool_calls is not False,
            "previous_response_id": r.previous_response_id,
            "reasoning": {"effort": None, "summary": None}, "service_tier": "default",
            "store": r.stored, "temperature": r.temperature,
            "text": {"format": (r.text.format if r.text else None) or {"type": "text"}},
            "tool_choice": r.tool_choice or "auto", "tools": r.tools or [], "top_p": r.top_p,
            "truncation": "disabled", "usage": usage_object(usage) if usage else None,
            "user": r.user, "metadata": r.metadata or {},
        }  # fmt: skip
        if switchboard is not None:
            body["switchboard"] = switchboard
        return body

    def completed(
        self, completion: ChatCompletion, model: str, switchboard: dict[str, object]
    ) -> dict[str, object]:
        """The whole response for a finished (non-streamed) answer."""
        finish = completion.choices[0].finish_reason if completion.choices else None
        status, incomplete = ending(finish)
        return self.render(model=model, status=status, output=output_items(completion),
                           usage=completion.usage, incomplete=incomplete,
                           switchboard=switchboard)  # fmt: skip


def answered(completion: ChatCompletion) -> ChatMessage:
    """A finished answer as the assistant message a later turn's history carries."""
    message = completion.choices[0].message if completion.choices else None
    if message is None:
        return ChatMessage(role="assistant", content="")
    return ChatMessage(role="assistant", content=message.content, tool_calls=message.tool_calls)

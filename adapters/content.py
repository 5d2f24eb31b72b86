"""Taking an OpenAI chat request apart for wire formats that shape it differently.

Several formats want the same pieces: system text on its own, messages as text and image
parts, images as base64 when they came as ``data:`` URLs, stop as a list, tool definitions as
name/description/JSON Schema, and tool-call arguments as a JSON object. They live here once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import JsonValue

from app.schemas import ChatMessage, ChatRequest, ImagePart, TextPart

JsonObject = dict[str, JsonValue]  # JSON as it came from the client
Wire = dict[str, object]  # JSON being built for a provider


@dataclass(frozen=True)
class InlineImage:
    media_type: str
    data: str  # base64, as it came


def data_url(url: str) -> InlineImage | None:
    """``data:image/png;base64,...`` -> its media type and payload; None for other URLs."""
    if not url.startswith("data:"):
        return None
    header, comma, payload = url[len("data:") :].partition(",")
    params = header.split(";")
    if not comma or "base64" not in params[1:]:
        return None
    return InlineImage(params[0] or "application/octet-stream", payload)


def system_text(messages: list[ChatMessage]) -> str | None:
    """System and developer messages joined, for formats that take them apart."""
    texts = [m.text() for m in messages if m.role in ("system", "developer")]
    return "\n\n".join(t for t in texts if t) or None


def parts(message: ChatMessage) -> list[TextPart | ImagePart]:
    """The message's non-empty text parts and its images (audio has nowhere to go)."""
    if message.content is None:
        return []
    if isinstance(message.content, str):
        return [TextPart(type="text", text=message.content)] if message.content else []
    return [
        p
        for p in message.content
        if (isinstance(p, TextPart) and p.text) or isinstance(p, ImagePart)
    ]


def stop_list(request: ChatRequest) -> list[str] | None:
    if request.stop is None:
        return None
    return [request.stop] if isinstance(request.stop, str) else list(request.stop)


@dataclass(frozen=True)
class Function:
    """One tool the model may call, from OpenAI's ``{"type": "function", "function": {...}}``."""

    name: str
    description: str | None
    parameters: JsonObject


def functions(request: ChatRequest) -> list[Function]:
    found = []
    for tool in request.tools or []:
        spec = tool.get("function")
        if tool.get("type", "function") != "function" or not isinstance(spec, dict):
            continue
        params = spec.get("parameters")
        description = spec.get("description")
        found.append(
            Function(
                name=str(spec.get("name", "")),
                description=description if isinstance(description, str) else None,
                parameters=params if isinstance(params, dict) else {"type": "object"},
            )
        )
    return found


@dataclass(frozen=True)
class ToolCall:
    """An assistant turn's tool call, from OpenAI's ``tool_calls`` entry."""

    id: str
    name: str
    arguments: JsonObject


def tool_calls(message: ChatMessage) -> list[ToolCall]:
    calls = []
    for call in message.tool_calls or []:
        spec = call.get("function")
        if not isinstance(spec, dict):
            continue
        calls.append(ToolCall(str(call.get("id", "")), str(spec.get("name", "")), _object(spec)))
    return calls


def _object(spec: JsonObject) -> JsonObject:
    """OpenAI sends arguments as a JSON string; the other formats want the object."""
    arguments = spec.get("arguments")
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except ValueError:
            return {"arguments": arguments}
    return arguments if isinstance(arguments, dict) else {}


def tool_names(messages: list[ChatMessage]) -> dict[str, str]:
    """Tool-call id -> function name, for formats that answer a call by name, not id."""
    return {call.id: call.name for m in messages for call in tool_calls(m)}


def named_tool(choice: JsonValue) -> str | None:
    """The function name forced by ``tool_choice={"type": "function", ...}``, if any."""
    if isinstance(choice, dict) and isinstance(spec := choice.get("function"), dict):
        name = spec.get("name")
        return name if isinstance(name, str) else None
    return None

"""Building Switchboard's reply types from the pieces other wire formats send back.

Completions, stream chunks, usage and tool calls are built here once, so every translated
stream looks like OpenAI's: one id, model and timestamp on every chunk, ``role: assistant`` on
the first, a chunk with the finish reason, then a usage-only chunk (``choices`` empty).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping

from pydantic import JsonValue

from app.schemas import (
    AssistantMessage,
    ChatChunk,
    ChatCompletion,
    Choice,
    ChunkChoice,
    Delta,
    Usage,
    new_completion_id,
)

JsonObject = dict[str, JsonValue]


def usage(prompt: int, completion: int, total: int | None = None) -> Usage:
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total if total else prompt + completion,
    )


def finish_reason(table: Mapping[str, str], reason: str | None, default: str = "stop") -> str:
    """A provider's stop reason in OpenAI's words; unknown reasons read as ``default``."""
    return table.get(reason or "", default)


def tool_call(name: str, arguments: JsonValue, call_id: str | None = None) -> JsonObject:
    """An OpenAI ``tool_calls`` entry; arguments become the JSON string OpenAI sends."""
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {
        "id": call_id or "call_" + uuid.uuid4().hex[:24],
        "type": "function",
        "function": {"name": name, "arguments": text},
    }


def completion(
    *,
    completion_id: str | None,
    model: str,
    text: str,
    finish: str,
    counts: Usage | None,
    calls: list[JsonObject] | None = None,
) -> ChatCompletion:
    message = AssistantMessage(
        content=text if text or not calls else None, tool_calls=calls or None
    )
    return ChatCompletion(
        id=completion_id or new_completion_id(),
        model=model,
        choices=[Choice(message=message, finish_reason=finish)],
        usage=counts,
    )


class ChunkWriter:
    """Stamps one stream's chunks alike; the first chunk with a choice carries the role."""

    def __init__(self, model: str = "", chunk_id: str | None = None) -> None:
        self.id = chunk_id or new_completion_id()
        self.model = model
        self.created = int(time.time())
        self._role_sent = False

    def text(self, text: str) -> ChatChunk:
        return self._choice(Delta(content=text))

    def tool_calls(self, calls: list[JsonObject]) -> ChatChunk:
        return self._choice(Delta(tool_calls=calls))

    def finish(self, reason: str) -> ChatChunk:
        return self._choice(Delta(), reason)

    def usage(self, counts: Usage) -> ChatChunk:
        return ChatChunk(id=self.id, created=self.created, model=self.model, usage=counts)

    def _choice(self, delta: Delta, finish: str | None = None) -> ChatChunk:
        if not self._role_sent:
            delta.role, self._role_sent = "assistant", True
        choice = ChunkChoice(delta=delta, finish_reason=finish)
        return ChatChunk(id=self.id, created=self.created, model=self.model, choices=[choice])

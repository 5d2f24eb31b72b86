"""Anthropic's Messages event stream, made from the neutral chunks of one streamed answer.

``message_start`` (usage: the estimated input tokens), a ``ping``, then per content block
``content_block_start``, ``content_block_delta``s (``text_delta`` for text, ``input_json_delta``
for a tool call's arguments) and ``content_block_stop`` (a block is closed when the next one
begins); then ``message_delta`` with the ``stop_reason`` and the usage, and ``message_stop``.
A provider failure after the stream began is an ``error`` event in Anthropic's error shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import JsonValue

from app.errors import SwitchboardError
from app.schemas import ChatChunk, Usage
from app.wire.anthropic import STOP_REASONS, error_body, usage_object

Event = dict[str, object]


@dataclass
class _Block:
    index: int
    kind: Literal["text", "tool_use"]


class MessageEvents:
    """Translates one stream into Anthropic's events."""

    def __init__(self, message_id: str, model: str, input_tokens: int) -> None:
        self.message_id = message_id
        self.model = model
        self.input_tokens = input_tokens
        self.finish_reason: str | None = None
        self._blocks = 0
        self._open: _Block | None = None
        self._calls: dict[int, _Block] = {}

    def start(self) -> list[Event]:
        message: JsonValue = {"id": self.message_id, "type": "message", "role": "assistant",
                   "model": self.model, "content": [], "stop_reason": None,
                   "stop_sequence": None,
                   "usage": {"input_tokens": self.input_tokens, "output_tokens": 0}}  # fmt: skip
        return [{"type": "message_start", "message": message}, {"type": "ping"}]

    def chunk(self, chunk: ChatChunk) -> list[Event]:
        events: list[Event] = []
        for choice in chunk.choices:
            if choice.delta.content:
                if self._open is None or self._open.kind != "text":
                    events += self._begin("text", {"type": "text", "text": ""})
                delta: JsonValue = {"type": "text_delta", "text": choice.delta.content}
                events.append(self._delta(delta))
            for call in choice.delta.tool_calls or []:
                events += self._call(call)
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
        return events

    def finish(self, usage: Usage | None) -> list[Event]:
        stop = STOP_REASONS.get(self.finish_reason or "stop", "end_turn")
        delta = {"stop_reason": stop, "stop_sequence": None}
        return [*self._close(),
                {"type": "message_delta", "delta": delta,
                 "usage": usage_object(usage, self.input_tokens)},
                {"type": "message_stop"}]  # fmt: skip

    @staticmethod
    def fail(error: SwitchboardError) -> list[Event]:
        return [error_body(error)]

    def _begin(self, kind: Literal["text", "tool_use"], block: JsonValue) -> list[Event]:
        events = self._close()
        self._open = _Block(self._blocks, kind)
        self._blocks += 1
        events.append({"type": "content_block_start", "index": self._open.index,
                       "content_block": block})  # fmt: skip
        return events

    def _delta(self, delta: JsonValue) -> Event:
        assert self._open is not None
        return {"type": "content_block_delta", "index": self._open.index, "delta": delta}

    def _call(self, call: dict[str, JsonValue]) -> list[Event]:
        index = call.get("index")
        index = index if isinstance(index, int) else 0
        spec = call.get("function")
        spec = spec if isinstance(spec, dict) else {}
        events: list[Event] = []
        block = self._calls.get(index)
        if block is None:
            call_id, name = call.get("id"), spec.get("name")
            if not isinstance(call_id, str):
                call_id = f"toolu_{self.message_id[4:]}_{index}"
            name = name if isinstance(name, str) else ""
            start: JsonValue = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
            events = self._begin("tool_use", start)
            assert self._open is not None
            block = self._calls[index] = self._open
        arguments = spec.get("arguments")
        if isinstance(arguments, str) and arguments and block is self._open:
            events.append(self._delta({"type": "input_json_delta", "partial_json": arguments}))
        return events

    def _close(self) -> list[Event]:
        block, self._open = self._open, None
        return [] if block is None else [{"type": "content_block_stop", "index": block.index}]

"""The Responses API event stream, made from the neutral chunks of one streamed answer.

The order is OpenAI's: ``response.created`` and ``response.in_progress``; for the text,
``response.output_item.added`` (a message), ``response.content_part.added``, then
``response.output_text.delta``s, closed by ``response.output_text.done``,
``response.content_part.done`` and ``response.output_item.done``; for each function call,
``response.output_item.added`` (a function_call), ``response.function_call_arguments.delta``s,
``response.function_call_arguments.done`` and ``response.output_item.done``. An item is closed
when the next one begins. The stream ends with ``response.completed`` (``response.incomplete``
when the output limit cut the answer) carrying the usage; a provider failure after the stream
began ends it with an ``error`` event and ``response.failed``, never a silent close. Every event
carries a ``sequence_number``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import JsonValue

from app.errors import SwitchboardError
from app.schemas import ChatChunk, Usage
from app.wire.responses import (
    Frame,
    JsonObject,
    call_item,
    ending,
    message_item,
    new_id,
    text_part,
)

Event = dict[str, object]


@dataclass
class _Item:
    index: int
    kind: Literal["message", "function_call"]
    id: str
    call_id: str = ""
    name: str = ""
    pieces: list[str] = field(default_factory=list)

    def render(self, status: str) -> JsonObject:
        text = "".join(self.pieces)
        if self.kind == "message":
            return message_item(self.id, text, status)
        return call_item(self.id, self.call_id, self.name, text, status)


class ResponseEvents:
    """Translates one stream; ``output`` is the answer so far, as output items."""

    def __init__(self, frame: Frame, model: str) -> None:
        self.frame = frame
        self.model = model
        self.finish_reason: str | None = None
        self._items: list[_Item] = []
        self._open: _Item | None = None
        self._calls: dict[int, _Item] = {}
        self._sequence = 0

    def _event(self, kind: str, **fields: object) -> Event:
        event: Event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    @property
    def output(self) -> list[JsonValue]:
        return [item.render("completed") for item in self._items]

    def start(self) -> list[Event]:
        response = self.frame.render(model=self.model, status="in_progress", output=[])
        return [self._event("response.created", response=response),
                self._event("response.in_progress", response=response)]  # fmt: skip

    def chunk(self, chunk: ChatChunk) -> list[Event]:
        events: list[Event] = []
        for choice in chunk.choices:
            if choice.delta.content:
                events += self._text(choice.delta.content)
            for call in choice.delta.tool_calls or []:
                events += self._call(call)
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
        return events

    def finish(self, usage: Usage | None, switchboard: dict[str, object]) -> list[Event]:
        """The closing events and ``response.completed`` (or ``.incomplete``)."""
        events = self._close()
        status, incomplete = ending(self.finish_reason)
        response = self.frame.render(model=self.model, status=status, output=self.output,
                                     usage=usage, incomplete=incomplete,
                                     switchboard=switchboard)  # fmt: skip
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return [*events, self._event(kind, response=response)]

    def fail(self, error: SwitchboardError, switchboard: dict[str, object]) -> list[Event]:
        """An ``error`` event and ``response.failed``: the stream broke after it began."""
        code = "rate_limit_exceeded" if error.status_code == 429 else "server_error"
        output: list[JsonValue] = [item.render("incomplete") for item in self._items]
        response = self.frame.render(model=self.model, status="failed", output=output,
                                     error={"code": code, "message": error.message},
                                     switchboard=switchboard)  # fmt: skip
        return [self._event("error", code=error.code, message=error.message, param=error.param),
                self._event("response.failed", response=response)]  # fmt: skip

    def _begin(
        self, kind: Literal["message", "function_call"], call_id: str = "", name: str = ""
    ) -> list[Event]:
        events = self._close()
        prefix = "msg" if kind == "message" else "fc"
        item = _Item(len(self._items), kind, new_id(prefix), call_id, name)
        self._items.append(item)
        self._open = item
        if kind == "message":  # the text part is announced on its own
            added = message_item(item.id, None, "in_progress")
        else:
            added = item.render("in_progress")
        events.append(self._event("response.output_item.added", output_index=item.index,
                                  item=added))  # fmt: skip
        if kind == "message":
            events.append(self._event("response.content_part.added", item_id=item.id,
                                      output_index=item.index, content_index=0,
                                      part=text_part("")))  # fmt: skip
        return events

    def _text(self, delta: str) -> list[Event]:
        events = [] if self._open and self._open.kind == "message" else self._begin("message")
        assert self._open is not None
        self._open.pieces.append(delta)
        events.append(self._event("response.output_text.delta", item_id=self._open.id,
                                  output_index=self._open.index, content_index=0, delta=delta,
                                  logprobs=[]))  # fmt: skip
        return events

    def _call(self, call: dict[str, JsonValue]) -> list[Event]:
        index = call.get("index")
        index = index if isinstance(index, int) else 0
        spec = call.get("function")
        spec = spec if isinstance(spec, dict) else {}
        events: list[Event] = []
        item = self._calls.get(index)
        if item is None:
            call_id = call.get("id")
            name = spec.get("name")
            events = self._begin("function_call",
                                 call_id=call_id if isinstance(call_id, str) else new_id("call"),
                                 name=name if isinstance(name, str) else "")  # fmt: skip
            item = self._calls[index] = self._items[-1]
        arguments = spec.get("arguments")
        if isinstance(arguments, str) and arguments:
            item.pieces.append(arguments)
            if item is self._open:
                events.append(self._event("response.function_call_arguments.delta",
                                          item_id=item.id, output_index=item.index,
                                          delta=arguments))  # fmt: skip
        return events

    def _close(self) -> list[Event]:
        item, self._open = self._open, None
        if item is None:
            return []
        done = item.render("completed")
        text = "".join(item.pieces)
        if item.kind == "message":
            where: dict[str, object] = {"item_id": item.id, "output_index": item.index,
                                           "content_index": 0}  # fmt: skip
            return [self._event("response.output_text.done", **where, text=text, logprobs=[]),
                    self._event("response.content_part.done", **where, part=text_part(text)),
                    self._event("response.output_item.done", output_index=item.index,
                                item=done)]  # fmt: skip
        return [self._event("response.function_call_arguments.done", item_id=item.id,
                            output_index=item.index, name=item.name, arguments=text),
                self._event("response.output_item.done", output_index=item.index,
                            item=done)]  # fmt: skip

"""The Responses event stream made from neutral chunks: order, item ids, usage, failure."""

from __future__ import annotations

from app.errors import UpstreamUnavailable
from app.schemas import ChatChunk, ChunkChoice, Delta, Usage
from app.wire.responses import Frame, ResponsesRequest
from app.wire.responses_events import Event, ResponseEvents


def _chunk(text: str | None = None, calls: list[dict[str, object]] | None = None,
           finish: str | None = None) -> ChatChunk:  # fmt: skip
    delta = Delta(content=text, tool_calls=calls)
    return ChatChunk(choices=[ChunkChoice(delta=delta, finish_reason=finish)])


def _stream(*chunks: ChatChunk) -> tuple[ResponseEvents, list[Event]]:
    events = ResponseEvents(Frame(ResponsesRequest(model="auto", input="Hi")), "m")
    out = events.start()
    for chunk in chunks:
        out += events.chunk(chunk)
    return events, out


def _call(index: int, arguments: str, call_id: str | None = None, name: str | None = None
          ) -> dict[str, object]:  # fmt: skip
    function: dict[str, object] = {"arguments": arguments}
    if name:
        function["name"] = name
    return {"index": index, **({"id": call_id} if call_id else {}), "function": function}


def test_text_then_two_function_calls_in_openai_order() -> None:
    events, out = _stream(
        _chunk("Hel"), _chunk("lo"),
        _chunk(calls=[_call(0, '{"a"', "call_1", "f")]), _chunk(calls=[_call(0, ":1}")]),
        _chunk(calls=[_call(1, "{}", "call_2", "g")], finish="tool_calls"),
    )  # fmt: skip
    out += events.finish(Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7), {"x": 1})
    assert [e["type"] for e in out] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed",
    ]  # fmt: skip
    assert [e["sequence_number"] for e in out] == list(range(len(out)))
    assert out[6]["text"] == "Hello"
    assert [e["output_index"] for e in out if e["type"] == "response.output_item.done"] == [0, 1, 2]
    first_call = out[9]["item"]
    assert first_call["call_id"] == "call_1" and first_call["status"] == "in_progress"
    assert out[12]["arguments"] == '{"a":1}' and out[12]["name"] == "f"
    completed = out[-1]["response"]
    assert completed["status"] == "completed" and completed["switchboard"] == {"x": 1}
    assert completed["usage"]["total_tokens"] == 7
    assert [i["type"] for i in completed["output"]] == ["message", "function_call", "function_call"]
    assert events.output == completed["output"]


def test_the_message_item_announces_its_text_part_on_its_own() -> None:
    _, out = _stream(_chunk("Hi"))
    added = out[2]["item"]
    assert added["content"] == [] and added["status"] == "in_progress"
    assert out[3]["part"] == {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    assert out[4]["item_id"] == added["id"]


def test_an_answer_cut_by_the_output_limit_is_incomplete() -> None:
    events, _ = _stream(_chunk("Once upon", finish="length"))
    last = events.finish(None, {})[-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_a_failure_ends_with_an_error_event_and_response_failed() -> None:
    events, _ = _stream(_chunk("Hal"))
    error, failed = events.fail(UpstreamUnavailable("provider went away"), {})
    assert error["type"] == "error" and error["message"] == "provider went away"
    assert error["code"] == "upstream_unavailable"
    response = failed["response"]
    assert failed["type"] == "response.failed" and response["status"] == "failed"
    assert response["error"] == {"code": "server_error", "message": "provider went away"}
    assert response["output"][0]["status"] == "incomplete"

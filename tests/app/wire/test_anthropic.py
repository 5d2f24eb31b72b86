"""Anthropic Messages requests to ``ChatRequest``, answers and events back: pure translation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.errors import (
    ModelNotFound,
    RateLimited,
    RequestError,
    SwitchboardError,
    UpstreamBusy,
    UpstreamTimeout,
)
from app.schemas import ChatChunk, ChatCompletion, ChunkChoice, Delta, Usage
from app.wire import anthropic
from app.wire.anthropic import MessagesRequest
from app.wire.anthropic_events import MessageEvents

HI = [{"role": "user", "content": "Hi"}]


def _chat(**fields: object) -> dict[str, object]:
    body = {"model": "auto", "max_tokens": 64, "messages": HI, **fields}
    chat = anthropic.to_chat(MessagesRequest.model_validate(body))
    return chat.model_dump(mode="json", exclude_none=True, exclude={"stream"})


def _refused(**fields: object) -> RequestError:
    with pytest.raises(RequestError) as caught:
        _chat(**fields)
    return caught.value


def test_system_blocks_limits_and_metadata() -> None:
    chat = _chat(system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}},
                         {"type": "text", "text": "Be kind."}],
                 stop_sequences=["END"], temperature=0.4, top_p=0.8,
                 metadata={"user_id": "u-1"}, cache_control={"type": "ephemeral"})  # fmt: skip
    assert chat == {
        "model": "auto",
        "messages": [{"role": "system", "content": "Be brief.\n\nBe kind."}, *HI],
        "temperature": 0.4, "top_p": 0.8, "max_tokens": 64, "stop": ["END"], "user": "u-1",
    }  # fmt: skip


def test_images_tool_use_and_tool_results() -> None:
    messages = [
        {"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            {"type": "text", "text": "Compare."}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "look", "input": {"zoom": 2}}]},
        {"role": "user", "content": [
            {"type": "text", "text": "Here:"},
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a cat"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True,
             "content": [{"type": "text", "text": "timeout"}]}]},
    ]  # fmt: skip
    assert _chat(messages=messages)["messages"] == [
        {"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            {"type": "text", "text": "Compare."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Checking."}], "tool_calls": [
            {"id": "toolu_1", "type": "function",
             "function": {"name": "look", "arguments": '{"zoom": 2}'}}]},
        {"role": "tool", "content": "a cat", "tool_call_id": "toolu_1"},  # results first
        {"role": "tool", "content": "[tool error] timeout", "tool_call_id": "toolu_2"},
        {"role": "user", "content": [{"type": "text", "text": "Here:"}]},
    ]  # fmt: skip


def test_tools_and_tool_choice() -> None:
    tool = {"name": "f", "description": "d", "input_schema": {"type": "object"},
            "cache_control": {"type": "ephemeral"}}  # fmt: skip
    chat = _chat(tools=[tool], tool_choice={"type": "any", "disable_parallel_tool_use": True})
    assert chat["tools"] == [{"type": "function", "function": {
        "name": "f", "parameters": {"type": "object"}, "description": "d"}}]  # fmt: skip
    assert chat["tool_choice"] == "required" and chat["parallel_tool_calls"] is False
    named = _chat(tools=[tool], tool_choice={"type": "tool", "name": "f"})
    assert named["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert _chat(tools=[tool], tool_choice={"type": "none"})["tool_choice"] == "none"
    searching = _chat(tools=[{"type": "web_search_20250305", "name": "web_search"}])
    assert "tools" not in searching
    assert searching["switchboard"] == {"capabilities": ["web_search"]}


def test_a_json_schema_output_format_is_a_response_format() -> None:
    chat = _chat(output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}})
    assert chat["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "output", "schema": {"type": "object"}}}  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "param"),
    [({"top_k": 5}, "top_k"),
     ({"thinking": {"type": "enabled", "budget_tokens": 2000}}, "thinking"),
     ({"speed": "fast"}, "speed"),
     ({"inference_geo": "eu"}, "inference_geo"),
     ({"output_config": {"effort": "high"}}, "output_config.effort"),
     ({"tools": [{"type": "bash_20250124", "name": "bash"}]}, "tools[0].type"),
     ({"tools": [{"name": "f"}]}, "tools[0].input_schema"),
     ({"tool_choice": {"type": "any"}}, "tool_choice"),
     ({"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]},
      "messages[0].content[0].type"),
     ({"messages": [{"role": "assistant", "content": [
         {"type": "thinking", "thinking": "hm", "signature": "s"}]}]},
      "messages[0].content[0].type"),
     ({"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "f",
                                                  "input": {}}]}]},
      "messages[0].content[0].type"),
     ({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                                                  "content": [{"type": "image", "source": {}}]}]}]},
      "messages[0].content[0].content[0].type"),
     ({"messages": [{"role": "user", "content": [{"type": "image",
                                                  "source": {"type": "base64", "data": "AA"}}]}]},
      "messages[0].content[0].source"),
     ({"messages": [{"role": "system", "content": "hi"}]}, "messages[0].role"),
     ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content")],
)  # fmt: skip
def test_what_cannot_be_honoured_is_refused_naming_the_field(
    fields: dict[str, object], param: str
) -> None:
    error = _refused(**fields)
    assert error.param == param and error.status_code == 400


def test_required_and_unknown_fields_are_checked_by_the_model() -> None:
    with pytest.raises(ValidationError) as missing:
        MessagesRequest.model_validate({"model": "auto", "messages": HI})
    assert missing.value.errors()[0]["loc"] == ("max_tokens",)
    with pytest.raises(ValidationError) as unknown:
        MessagesRequest.model_validate({"model": "a", "max_tokens": 1, "messages": HI, "x": 1})
    assert unknown.value.errors()[0]["loc"] == ("x",)


def test_a_completion_as_an_anthropic_message() -> None:
    completion = ChatCompletion.model_validate({
        "model": "m",
        "choices": [{"message": {"role": "assistant", "content": "On it.", "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "f", "arguments": '{"city": "Oslo"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "oops"}}]},
            "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 9, "total_tokens": 20},
    })  # fmt: skip
    message = anthropic.message_object(completion, "google/gemini", {"model": "google/gemini"})
    assert str(message["id"]).startswith("msg_") and message["model"] == "google/gemini"
    assert message["content"] == [
        {"type": "text", "text": "On it."},
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "call_2", "name": "g", "input": {"arguments": "oops"}},
    ]
    assert message["stop_reason"] == "tool_use" and message["stop_sequence"] is None
    assert message["usage"] == {"input_tokens": 11, "output_tokens": 9}
    for finish, stop in (("stop", "end_turn"), ("length", "max_tokens"),
                         ("content_filter", "refusal")):  # fmt: skip
        completion.choices[0].finish_reason = finish
        assert anthropic.message_object(completion, "m", {})["stop_reason"] == stop


@pytest.mark.parametrize(
    ("error", "kind"),
    [(RequestError("bad"), "invalid_request_error"),
     (ModelNotFound("gone"), "not_found_error"),
     (RateLimited("slow down"), "rate_limit_error"),
     (UpstreamBusy("full"), "overloaded_error"),
     (UpstreamTimeout("late"), "timeout_error"),
     (SwitchboardError("bug"), "api_error")],
)  # fmt: skip
def test_error_types_follow_the_status(error: SwitchboardError, kind: str) -> None:
    assert anthropic.error_body(error) == {
        "type": "error", "error": {"type": kind, "message": error.message}}  # fmt: skip


def _chunk(text: str | None = None, calls: list[dict[str, object]] | None = None,
           finish: str | None = None) -> ChatChunk:  # fmt: skip
    delta = Delta(content=text, tool_calls=calls)
    return ChatChunk(choices=[ChunkChoice(delta=delta, finish_reason=finish)])


def test_the_event_stream_with_text_and_a_tool_call() -> None:
    events = MessageEvents("msg_1", "m", input_tokens=12)
    out = events.start()
    for chunk in (_chunk("Hi"), _chunk(" there"),
                  _chunk(calls=[{"index": 0, "id": "call_9", "function": {"name": "f", "arguments": '{"a"'}}]),
                  _chunk(calls=[{"index": 0, "function": {"arguments": ":1}"}}], finish="tool_calls")):  # fmt: skip
        out += events.chunk(chunk)
    out += events.finish(Usage(prompt_tokens=10, completion_tokens=5, total_tokens=15))
    assert [e["type"] for e in out] == [
        "message_start", "ping", "content_block_start", "content_block_delta",
        "content_block_delta", "content_block_stop", "content_block_start",
        "content_block_delta", "content_block_delta", "content_block_stop", "message_delta",
        "message_stop",
    ]  # fmt: skip
    assert out[0]["message"]["usage"] == {"input_tokens": 12, "output_tokens": 0}
    assert out[6] == {"type": "content_block_start", "index": 1, "content_block": {
        "type": "tool_use", "id": "call_9", "name": "f", "input": {}}}  # fmt: skip
    assert out[8]["delta"] == {"type": "input_json_delta", "partial_json": ":1}"}
    assert out[10] == {"type": "message_delta",
                       "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                       "usage": {"input_tokens": 10, "output_tokens": 5}}  # fmt: skip


def test_a_failure_is_an_error_event() -> None:
    (event,) = MessageEvents.fail(UpstreamBusy("Overloaded"))
    assert event == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }

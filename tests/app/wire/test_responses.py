"""Responses API requests to ``ChatRequest`` and answers back: pure translation, no server."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.errors import RequestError
from app.schemas import ChatCompletion, ChatMessage
from app.wire import responses
from app.wire.responses import ResponsesRequest

PIXEL = "data:image/png;base64,iVBORw0KGgo="


def _request(**fields: object) -> ResponsesRequest:
    return ResponsesRequest.model_validate({"model": "auto", "input": "Hi", **fields})


def _chat(**fields: object) -> dict[str, object]:
    request = _request(**fields)
    chat = responses.to_chat(request, responses.conversation(request, []))
    return chat.model_dump(mode="json", exclude_none=True, exclude={"stream"})


def _refused(**fields: object) -> RequestError:
    with pytest.raises(RequestError) as caught:
        _chat(**fields)
    return caught.value


def test_a_string_input_with_instructions_and_settings() -> None:
    chat = _chat(instructions="Be brief.", max_output_tokens=20, temperature=0.5, top_p=0.9,
                 user="u-1", parallel_tool_calls=False)  # fmt: skip
    assert chat == {
        "model": "auto",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "temperature": 0.5, "top_p": 0.9, "max_completion_tokens": 20,
        "parallel_tool_calls": False, "user": "u-1",
    }  # fmt: skip


def test_items_become_chat_messages_with_tool_calls_joined_to_their_turn() -> None:
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "What is this?"},
                                     {"type": "input_image", "image_url": PIXEL, "detail": "low"}]},
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
         "content": [{"type": "output_text", "text": "Let me look.", "annotations": []}]},
        {"type": "function_call", "call_id": "c1", "name": "look", "arguments": "{}", "id": "fc_1"},
        {"type": "function_call", "call_id": "c2", "name": "zoom", "arguments": '{"x":2}'},
        {"type": "function_call_output", "call_id": "c1", "output": "a cat"},
        {"type": "function_call_output", "call_id": "c2",
         "output": [{"type": "input_text", "text": "a big cat"}]},
        {"role": "developer", "content": "Answer in French."},
    ]  # fmt: skip
    assert _chat(input=items)["messages"] == [
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": PIXEL, "detail": "low"}}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Let me look."}],
         "tool_calls": [
             {"id": "c1", "type": "function", "function": {"name": "look", "arguments": "{}"}},
             {"id": "c2", "type": "function", "function": {"name": "zoom", "arguments": '{"x":2}'}}]},
        {"role": "tool", "content": "a cat", "tool_call_id": "c1"},
        {"role": "tool", "content": "a big cat", "tool_call_id": "c2"},
        {"role": "developer", "content": "Answer in French."},
    ]  # fmt: skip


def test_history_comes_before_the_input_and_instructions_before_both() -> None:
    request = _request(input="And now?", instructions="Be brief.")
    history = [
        ChatMessage(role="user", content="Hi"),
        ChatMessage(role="assistant", content="Hello"),
    ]
    chat = responses.to_chat(request, responses.conversation(request, history))
    assert [(m.role, m.text()) for m in chat.messages] == [
        ("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello"), ("user", "And now?")]  # fmt: skip


def test_function_tools_choice_and_json_schema_format() -> None:
    tool = {"type": "function", "name": "f", "description": "d", "strict": True,
            "parameters": {"type": "object", "properties": {}}}  # fmt: skip
    schema = {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True}
    chat = _chat(tools=[tool], tool_choice={"type": "function", "name": "f"},
                 text={"format": schema})  # fmt: skip
    assert chat["tools"] == [{"type": "function", "function": {
        "name": "f", "description": "d", "parameters": {"type": "object", "properties": {}},
        "strict": True}}]  # fmt: skip
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert chat["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "out", "schema": {"type": "object"}, "strict": True}}  # fmt: skip
    assert _chat(text={"format": {"type": "json_object"}})["response_format"] == {
        "type": "json_object"}  # fmt: skip
    assert "response_format" not in _chat(text={"format": {"type": "text"}})


def test_web_search_tools_become_a_required_capability() -> None:
    chat = _chat(tools=[{"type": "web_search_preview"}], tool_choice="auto",
                 switchboard={"capabilities": ["vision"], "preset": "cheap"})  # fmt: skip
    assert "tools" not in chat and "tool_choice" not in chat
    assert chat["switchboard"] == {"preset": "cheap", "capabilities": ["vision", "web_search"]}
    assert _refused(tools=[{"type": "web_search", "user_location": {"city": "Oslo"}}]).param == (
        "tools[0].user_location")  # fmt: skip
    assert _refused(tools=[{"type": "web_search"}], tool_choice="required").param == "tool_choice"


@pytest.mark.parametrize(
    ("fields", "param"),
    [({"input": [{"type": "reasoning", "id": "rs_1", "summary": []}]}, "input[0].type"),
     ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
      "input[0].content[0].type"),
     ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
      "input[0].content[0].file_id"),
     ({"input": [{"role": "user", "content": [{"type": "input_text"}]}]},
      "input[0].content[0].text"),
     ({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, "input[0].call_id"),
     ({"input": []}, "input"),
     ({"tools": [{"type": "file_search", "vector_store_ids": ["vs"]}]}, "tools[0].type"),
     ({"tools": [{"type": "function"}]}, "tools[0].name"),
     ({"tool_choice": {"type": "mcp", "server_label": "x"}}, "tool_choice"),
     ({"reasoning": {"effort": "high"}}, "reasoning"),
     ({"include": ["message.output_text.logprobs"]}, "include"),
     ({"truncation": "auto"}, "truncation"),
     ({"background": True}, "background"),
     ({"service_tier": "flex"}, "service_tier"),
     ({"max_tool_calls": 3}, "max_tool_calls"),
     ({"top_logprobs": 2}, "top_logprobs"),
     ({"text": {"verbosity": "low"}}, "text.verbosity")],
)  # fmt: skip
def test_what_cannot_be_honoured_is_refused_naming_the_field(
    fields: dict[str, object], param: str
) -> None:
    error = _refused(**fields)
    assert error.param == param and error.status_code == 400
    assert error.message.startswith(param)


def test_defaults_and_harmless_hints_are_accepted() -> None:
    chat = _chat(reasoning={"effort": None}, include=[], truncation="disabled",
                 service_tier="auto", background=False, prompt_cache_key="k",
                 stream_options={"include_obfuscation": False})  # fmt: skip
    assert chat["messages"] == [{"role": "user", "content": "Hi"}]


def test_unknown_fields_are_refused_by_the_model() -> None:
    with pytest.raises(ValidationError) as caught:
        _request(conversation="conv_1")
    assert caught.value.errors()[0]["loc"] == ("conversation",)


COMPLETION = ChatCompletion.model_validate({
    "model": "m",
    "choices": [{"message": {"role": "assistant", "content": "Let me check.", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}]},
        "finish_reason": "length"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
})  # fmt: skip


def test_a_completion_as_a_response_object() -> None:
    frame = responses.Frame(_request(instructions="Be brief.", metadata={"k": "v"}))
    body = frame.completed(COMPLETION, "openai/gpt-4o", {"model": "openai/gpt-4o"})
    assert body["id"] == frame.id and str(frame.id).startswith("resp_")
    assert body["object"] == "response" and body["model"] == "openai/gpt-4o"
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    message, call = body["output"]
    assert message["content"] == [responses.text_part("Let me check.")]
    assert (call["type"], call["call_id"], call["name"], call["arguments"]) == (
        "function_call", "call_1", "f", '{"a":1}')  # fmt: skip
    assert body["usage"] == {"input_tokens": 5, "input_tokens_details": {"cached_tokens": 0},
                             "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 0},
                             "total_tokens": 12}  # fmt: skip
    assert body["instructions"] == "Be brief." and body["metadata"] == {"k": "v"}
    assert body["store"] is True and body["switchboard"] == {"model": "openai/gpt-4o"}


def test_the_answer_kept_for_a_follow_up_is_the_same_from_both_paths() -> None:
    frame = responses.Frame(_request())
    output = frame.completed(COMPLETION, "m", {})["output"]
    from_items = responses.assistant_turn(output)
    from_completion = responses.answered(COMPLETION)
    assert from_items.content == from_completion.content == "Let me check."
    assert from_items.tool_calls == from_completion.tool_calls

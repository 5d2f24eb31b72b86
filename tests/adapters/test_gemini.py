"""The Gemini adapter against generateContent and streamGenerateContent (SSE)."""

from __future__ import annotations

import json

import httpx
import pytest

from adapters.gemini import GeminiAdapter, build_request, parse_response
from app.errors import UpstreamAuthError, UpstreamUnavailable
from app.schemas import ChatRequest
from tests.adapters.wire import KEY, Recorder, collect, endpoint, finishes, fixture, text_of

GEMINI = endpoint("https://generativelanguage.googleapis.com", "gemini-2.5-flash")
REQUEST = ChatRequest.model_validate({
    "model": "auto",
    "messages": [{"role": "developer", "content": "Answer in one line."},
                 {"role": "user", "content": "Explain AI"},
                 {"role": "assistant", "content": "Machines that learn."},
                 {"role": "user", "content": [{"type": "text", "text": "And this?"},
                  {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}]}],
    "max_completion_tokens": 100,
    "temperature": 0.7,
    "top_p": 0.9,
    "stop": ["\n\n"],
    "seed": 3,
    "response_format": {"type": "json_schema",
                        "json_schema": {"name": "a", "schema": {"type": "object"}}},
})  # fmt: skip
LIGHTS = {"type": "object", "properties": {"brightness": {"type": "integer"}}}
TOOLS = ChatRequest.model_validate({
    "model": "auto",
    "messages": [
        {"role": "user", "content": "Dim the lights"},
        {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "set_light_values", "arguments": '{"brightness": 25}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "done"},
    ],
    "tools": [{"type": "function", "function": {"name": "set_light_values", "parameters": LIGHTS}}],
    "tool_choice": "required",
})  # fmt: skip


def _adapter(recorder: Recorder) -> GeminiAdapter:
    return GeminiAdapter(GEMINI, recorder.client())


def test_request_uses_the_header_key_and_gemini_shapes() -> None:
    sent = build_request(GEMINI, REQUEST, stream=False)
    assert sent.method == "POST"
    assert str(sent.url) == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    )
    assert sent.headers["x-goog-api-key"] == KEY and KEY not in str(sent.url)
    assert "authorization" not in sent.headers
    assert json.loads(sent.content) == {
        "contents": [
            {"role": "user", "parts": [{"text": "Explain AI"}]},
            {"role": "model", "parts": [{"text": "Machines that learn."}]},
            {"role": "user", "parts": [{"text": "And this?"},
                                       {"inline_data": {"mime_type": "image/jpeg", "data": "/9j/4AAQ"}}]},
        ],
        "systemInstruction": {"parts": [{"text": "Answer in one line."}]},
        "generationConfig": {"temperature": 0.7, "topP": 0.9, "maxOutputTokens": 100,
                             "stopSequences": ["\n\n"], "seed": 3,
                             "responseMimeType": "application/json",
                             "responseJsonSchema": {"type": "object"}},
    }  # fmt: skip
    assert sent.extensions["timeout"] == GEMINI.timeout.as_dict()


def test_stream_request_uses_the_sse_method() -> None:
    sent = build_request(GEMINI, REQUEST, stream=True)
    assert str(sent.url).endswith("/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
    assert sent.url.params["alt"] == "sse" and KEY not in str(sent.url)


def test_tools_calls_and_answers() -> None:
    body = json.loads(build_request(GEMINI, TOOLS, stream=False).content)
    assert body == {
        "contents": [
            {"role": "user", "parts": [{"text": "Dim the lights"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "set_light_values", "args": {"brightness": 25}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "set_light_values",
                                                             "response": {"content": "done"}}}]},
        ],
        "tools": [{"functionDeclarations": [
            {"name": "set_light_values", "parametersJsonSchema": LIGHTS}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
    }  # fmt: skip


def test_answers_to_parallel_calls_share_one_turn() -> None:
    calls = [
        {"id": f"call_{n}", "type": "function", "function": {"name": name, "arguments": "{}"}}
        for n, name in ((1, "a"), (2, "b"))
    ]
    request = ChatRequest.model_validate({"model": "auto", "messages": [
        {"role": "user", "content": "Do both"},
        {"role": "assistant", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_1", "content": "A"},
        {"role": "tool", "tool_call_id": "call_2", "content": "B"},
    ]})  # fmt: skip
    contents = json.loads(build_request(GEMINI, request, stream=False).content)["contents"]
    assert [turn["role"] for turn in contents] == ["user", "model", "user"]
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "a", "response": {"content": "A"}}},
        {"functionResponse": {"name": "b", "response": {"content": "B"}}},
    ]


async def test_reply_is_translated() -> None:
    completion = await _adapter(Recorder(200, fixture("gemini_response.json"))).complete(REQUEST)
    assert completion.id == "mAitaLmkHPPlz7IPvtfUqQ4" and completion.model == "gemini-2.5-flash"
    assert completion.choices[0].message.content == "AI learns patterns from data."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.model_dump() == {
        "prompt_tokens": 8, "completion_tokens": 6, "total_tokens": 14
    }  # fmt: skip


def test_function_call_reply_becomes_tool_calls() -> None:
    reply = parse_response(httpx.Response(200, content=fixture("gemini_function_call.json")))
    assert reply.choices[0].finish_reason == "tool_calls"
    assert reply.choices[0].message.content is None
    [call] = reply.choices[0].message.tool_calls or []
    assert call["function"] == {
        "name": "set_light_values", "arguments": '{"brightness": 25, "color_temp": "warm"}'
    }  # fmt: skip
    assert str(call["id"]).startswith("call_")
    assert reply.usage is not None and reply.usage.completion_tokens == 32  # thoughts count


@pytest.mark.parametrize(
    ("reason", "mapped"),
    [("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"),
     ("RECITATION", "content_filter"), ("OTHER", "stop")],
)  # fmt: skip
def test_finish_reasons(reason: str, mapped: str) -> None:
    body = fixture("gemini_response.json").replace(b'"STOP"', f'"{reason}"'.encode())
    assert parse_response(httpx.Response(200, content=body)).choices[0].finish_reason == mapped


def test_blocked_prompt_is_a_content_filter_stop() -> None:
    reply = parse_response(httpx.Response(200, content=fixture("gemini_blocked.json")))
    assert reply.choices[0].finish_reason == "content_filter"
    assert reply.choices[0].message.content == ""


@pytest.mark.parametrize("size", [None, 1, 11])
async def test_sse_stream(size: int | None) -> None:
    recorder = Recorder(200, fixture("gemini_stream.sse"), "text/event-stream", size=size)
    chunks = await collect(_adapter(recorder), REQUEST)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert text_of(chunks) == "The sky is blue." and finishes(chunks) == ["stop"]
    assert {c.id for c in chunks} == {"mAitaLmkHPPlz7IPvtfUqQ4"}
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.model_dump() == {
        "prompt_tokens": 8, "completion_tokens": 5, "total_tokens": 13
    }  # fmt: skip


async def test_stream_without_a_finish_reason_is_cut_short() -> None:
    body = fixture("gemini_stream.sse").split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    with pytest.raises(UpstreamUnavailable, match="before it finished"):
        await collect(_adapter(Recorder(200, body, "text/event-stream")), REQUEST)


async def test_error_payload_mid_stream() -> None:
    first = fixture("gemini_stream.sse").split(b"\r\n\r\n")[0]
    body = (
        first
        + b'\r\n\r\ndata: {"error": {"code": 503, "message": "The model is overloaded."}}\r\n\r\n'
    )
    got = []
    with pytest.raises(UpstreamUnavailable, match="overloaded"):
        async for chunk in _adapter(Recorder(200, body, "text/event-stream")).stream(REQUEST):
            got.append(chunk)
    assert text_of(got) == "The"


async def test_invalid_key_400_is_an_auth_error_without_the_key() -> None:
    recorder = Recorder(400, fixture("gemini_error_400_api_key.json"))
    with pytest.raises(UpstreamAuthError, match="API key not valid") as raised:
        await _adapter(recorder).complete(REQUEST)
    assert KEY not in str(raised.value)
    with pytest.raises(UpstreamAuthError):
        await collect(_adapter(recorder), REQUEST)

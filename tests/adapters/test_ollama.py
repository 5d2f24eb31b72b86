"""The Ollama adapter against /api/chat, with NDJSON streaming."""

from __future__ import annotations

import json

import httpx
import pytest

from adapters.ollama import OllamaAdapter, build_request, parse_response
from app.errors import UpstreamBadRequest, UpstreamUnavailable
from app.schemas import ChatRequest
from tests.adapters.wire import Recorder, collect, endpoint, finishes, fixture, text_of

OLLAMA = endpoint("http://127.0.0.1:11434", "llama3.2", key=None)
PNG = "iVBORw0KGgo="
REQUEST = ChatRequest.model_validate({
    "model": "auto",
    "messages": [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "Why is the sky blue?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        ]},
    ],
    "temperature": 0, "seed": 42, "max_tokens": 64, "stop": ["\n\n"],
    "response_format": {"type": "json_object"},
})  # fmt: skip
WEATHER_TOOL = {"type": "function", "function": {"name": "get_current_weather",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}  # fmt: skip


def _adapter(recorder: Recorder) -> OllamaAdapter:
    return OllamaAdapter(OLLAMA, recorder.client())


def test_request_body() -> None:
    sent = build_request(OLLAMA, REQUEST, stream=False)
    assert (sent.method, str(sent.url)) == ("POST", "http://127.0.0.1:11434/api/chat")
    assert "authorization" not in sent.headers
    assert json.loads(sent.content) == {
        "model": "llama3.2",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Why is the sky blue?", "images": [PNG]},
        ],
        "stream": False,  # Ollama streams unless told not to
        "options": {"temperature": 0.0, "seed": 42, "num_predict": 64, "stop": ["\n\n"]},
        "format": "json",
    }
    assert sent.extensions["timeout"] == OLLAMA.timeout.as_dict()


def test_tools_and_tool_calls_keep_openais_shape_with_object_arguments() -> None:
    request = ChatRequest.model_validate({
        "model": "auto",
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "get_current_weather", "arguments": '{"location": "Paris"}'}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "18C"},
        ],
        "tools": [WEATHER_TOOL],
    })  # fmt: skip
    body = json.loads(build_request(OLLAMA, request, stream=True).content)
    assert body["tools"] == [WEATHER_TOOL] and body["stream"] is True
    assert body["messages"][1:] == [
        {"role": "assistant", "content": "",
         "tool_calls": [{"function": {"name": "get_current_weather", "arguments": {"location": "Paris"}}}]},
        {"role": "tool", "content": "18C"},
    ]  # fmt: skip


def test_image_urls_are_refused_before_sending() -> None:
    request = ChatRequest.model_validate({"model": "auto", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]})  # fmt: skip
    with pytest.raises(UpstreamBadRequest, match="data: URLs"):
        build_request(OLLAMA, request, stream=False)


async def test_reply_and_usage() -> None:
    completion = await _adapter(Recorder(200, fixture("ollama_response.json"))).complete(REQUEST)
    assert completion.model == "llama3.2" and completion.id.startswith("chatcmpl-")
    assert completion.choices[0].message.content == "Hello! How are you today?"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.model_dump() == {
        "prompt_tokens": 26, "completion_tokens": 298, "total_tokens": 324
    }  # fmt: skip


def test_length_and_tool_call_replies() -> None:
    cut = fixture("ollama_response.json").replace(
        b'"done_reason": "stop"', b'"done_reason": "length"'
    )
    assert parse_response(httpx.Response(200, content=cut)).choices[0].finish_reason == "length"
    reply = parse_response(httpx.Response(200, content=fixture("ollama_tool_calls.json")))
    assert reply.choices[0].finish_reason == "tool_calls"
    [call] = reply.choices[0].message.tool_calls or []
    assert call["function"] == {
        "name": "get_current_weather", "arguments": '{"format": "celsius", "location": "Paris, FR"}'
    }  # fmt: skip


@pytest.mark.parametrize("size", [None, 1, 17])
async def test_ndjson_stream(size: int | None) -> None:
    recorder = Recorder(200, fixture("ollama_stream.ndjson"), "application/x-ndjson", size=size)
    chunks = await collect(_adapter(recorder), REQUEST)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert text_of(chunks) == "The sky" and finishes(chunks) == ["stop"]
    assert len({c.id for c in chunks}) == 1 and chunks[0].model == "llama3.2"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (26, 282)


async def test_error_line_mid_stream() -> None:
    first = fixture("ollama_stream.ndjson").split(b"\n")[0]
    body = first + b'\n{"error":"an error was encountered while running the model"}\n'
    got = []
    with pytest.raises(UpstreamUnavailable, match="while running the model"):
        async for chunk in _adapter(Recorder(200, body, "application/x-ndjson")).stream(REQUEST):
            got.append(chunk)
    assert text_of(got) == "The"


async def test_stream_without_done_is_cut_short() -> None:
    body = b"\n".join(fixture("ollama_stream.ndjson").split(b"\n")[:2]) + b"\n"
    with pytest.raises(UpstreamUnavailable, match="before it finished"):
        await collect(_adapter(Recorder(200, body, "application/x-ndjson")), REQUEST)


async def test_unknown_model_is_a_bad_request_with_ollamas_words() -> None:
    recorder = Recorder(404, fixture("ollama_error_404.json"))
    with pytest.raises(UpstreamBadRequest, match='model "llama3" not found'):
        await _adapter(recorder).complete(REQUEST)

"""The Anthropic adapter against the Messages API's documented request, reply and events."""

from __future__ import annotations

import json

import httpx
import pytest

from adapters.anthropic import AnthropicAdapter, build_request, parse_response
from app.errors import UpstreamRateLimited, UpstreamUnavailable
from app.schemas import ChatRequest
from tests.adapters.wire import KEY, Recorder, collect, endpoint, finishes, fixture, text_of

PNG = "iVBORw0KGgo="
CLAUDE = endpoint("https://api.anthropic.com", "claude-sonnet-4-20250514")
REQUEST = ChatRequest.model_validate({
    "model": "auto",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": "Answer in English."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is in these images?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        ]},
        {"role": "assistant", "content": "A cat."},
        {"role": "user", "content": "Sure?"},
    ],
    "stop": "END",
    "temperature": 1.5,
    "user": "user-42",
})  # fmt: skip
WEATHER = {"type": "object", "properties": {"location": {"type": "string"}}}
TOOLS = ChatRequest.model_validate({
    "model": "auto",
    "max_completion_tokens": 300,
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "toolu_1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C, sunny"},
    ],
    "tools": [{"type": "function", "function": {
        "name": "get_weather", "description": "Current weather", "parameters": WEATHER}}],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
})  # fmt: skip


def _adapter(recorder: Recorder) -> AnthropicAdapter:
    return AnthropicAdapter(CLAUDE, recorder.client())


def test_request_follows_the_messages_api() -> None:
    sent = build_request(CLAUDE, REQUEST, stream=False)
    assert (sent.method, str(sent.url)) == ("POST", "https://api.anthropic.com/v1/messages")
    assert sent.headers["x-api-key"] == KEY and sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"] == "application/json"
    assert "authorization" not in sent.headers
    assert json.loads(sent.content) == {
        "model": "claude-sonnet-4-20250514",
        "max_tokens": 1024,
        "system": "You are terse.\n\nAnswer in English.",
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "What is in these images?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            ]},
            {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]},
            {"role": "user", "content": [{"type": "text", "text": "Sure?"}]},
        ],
        "temperature": 1.0,  # OpenAI allows up to 2, Anthropic up to 1
        "stop_sequences": ["END"],
        "metadata": {"user_id": "user-42"},
    }  # fmt: skip
    assert sent.extensions["timeout"] == CLAUDE.timeout.as_dict()


def test_tools_tool_calls_and_tool_results() -> None:
    body = json.loads(build_request(CLAUDE, TOOLS, stream=True).content)
    assert body == {
        "model": "claude-sonnet-4-20250514",
        "max_tokens": 300,
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C, sunny"}]},
        ],
        "tools": [{"name": "get_weather", "description": "Current weather", "input_schema": WEATHER}],
        "tool_choice": {"type": "tool", "name": "get_weather"},
        "stream": True,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("choice", "mapped"),
    [("auto", {"type": "auto"}), ("required", {"type": "any"}), ("none", {"type": "none"})],
)
def test_tool_choice_words(choice: str, mapped: dict[str, str]) -> None:
    request = TOOLS.model_copy(update={"tool_choice": choice})
    assert json.loads(build_request(CLAUDE, request, stream=False).content)["tool_choice"] == mapped


async def test_reply_is_translated() -> None:
    completion = await _adapter(Recorder(200, fixture("anthropic_message.json"))).complete(REQUEST)
    assert completion.id == "msg_013Zva2CMHLNnXjNJJKqJ2EF"
    assert completion.model == "claude-sonnet-4-20250514"
    assert completion.choices[0].message.content == "Hi! My name is Claude."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (2095, 503)


def test_tool_use_reply_becomes_tool_calls() -> None:
    reply = parse_response(httpx.Response(200, content=fixture("anthropic_tool_use.json")))
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "I'll check the current weather in San Francisco for you."
    assert choice.message.tool_calls == [{
        "id": "toolu_01A09q90qw90lq917835lq9", "type": "function",
        "function": {"name": "get_weather",
                     "arguments": '{"location": "San Francisco, CA", "unit": "celsius"}'},
    }]  # fmt: skip
    assert reply.usage is not None and reply.usage.prompt_tokens == 484  # cached tokens count


@pytest.mark.parametrize("size", [None, 1, 13])
async def test_event_stream_becomes_chunks_with_usage(size: int | None) -> None:
    recorder = Recorder(200, fixture("anthropic_stream.sse"), "text/event-stream", size=size)
    chunks = await collect(_adapter(recorder), REQUEST)
    assert json.loads(recorder.requests[0].content)["stream"] is True
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].delta.role for c in chunks[1:] if c.choices] == [None, None]
    assert text_of(chunks) == "Hello!" and finishes(chunks) == ["stop"]
    assert {c.id for c in chunks} == {"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY"}
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (25, 15)


async def test_streamed_tool_use_becomes_tool_call_deltas() -> None:
    recorder = Recorder(200, fixture("anthropic_stream_tool_use.sse"), "text/event-stream", size=5)
    chunks = await collect(_adapter(recorder), TOOLS)
    calls = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or []]
    assert calls[0] == {
        "index": 0, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }  # fmt: skip
    fragments = "".join(
        str(function["arguments"])
        for call in calls[1:]
        if isinstance(function := call["function"], dict)
    )
    assert json.loads(fragments) == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert {c["index"] for c in calls} == {0}
    assert text_of(chunks) == "Okay, let's check the weather."
    assert finishes(chunks) == ["tool_calls"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 89


async def test_overloaded_error_event_mid_stream() -> None:
    recorder = Recorder(200, fixture("anthropic_stream_overloaded.sse"), "text/event-stream")
    got = []
    with pytest.raises(UpstreamUnavailable, match="Overloaded"):
        async for chunk in _adapter(recorder).stream(REQUEST):
            got.append(chunk)
    assert text_of(got) == "Hel"
    assert recorder.bodies[0].closed


async def test_rate_limit_error_event_mid_stream() -> None:
    body = fixture("anthropic_stream_overloaded.sse").replace(
        b"overloaded_error", b"rate_limit_error"
    )
    with pytest.raises(UpstreamRateLimited):
        await collect(_adapter(Recorder(200, body, "text/event-stream")), REQUEST)


async def test_stream_without_message_stop_is_cut_short() -> None:
    body = fixture("anthropic_stream.sse").split(b"event: message_delta")[0]
    with pytest.raises(UpstreamUnavailable, match="before it finished"):
        await collect(_adapter(Recorder(200, body, "text/event-stream")), REQUEST)


async def test_rate_limit_response_with_retry_after() -> None:
    recorder = Recorder(429, fixture("anthropic_error_429.json"), headers={"retry-after": "12"})
    with pytest.raises(UpstreamRateLimited) as raised:
        await _adapter(recorder).complete(REQUEST)
    assert raised.value.retry_after == 12.0
    assert "exceed the rate limit" in raised.value.message and KEY not in str(raised.value)

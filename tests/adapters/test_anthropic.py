"""The Anthropic adapter against the Messages API's documented request, reply and events."""

from __future__ import annotations

import pytest

from adapters.anthropic import AnthropicAdapter
from app.errors import UpstreamRateLimited, UpstreamUnavailable
from app.schemas import ChatRequest
from tests.adapters.wire import KEY, Recorder, endpoint, fixture

PNG = "iVBORw0KGgo="
REQUEST = ChatRequest.model_validate({
    "model": "auto",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        ]},
        {"role": "assistant", "content": "A cat."},
        {"role": "user", "content": "Sure?"},
    ],
    "stop": "END",
    "temperature": 0.5,
})  # fmt: skip


def _adapter(recorder: Recorder) -> AnthropicAdapter:
    return AnthropicAdapter(
        endpoint("https://api.anthropic.com", "claude-sonnet-4-20250514"), recorder.client()
    )


async def test_request_follows_the_messages_api() -> None:
    recorder = Recorder(200, fixture("anthropic_message.json"))
    await _adapter(recorder).complete(REQUEST)
    sent = recorder.requests[0]
    assert str(sent.url) == "https://api.anthropic.com/v1/messages"
    assert sent.headers["x-api-key"] == KEY and sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    assert recorder.sent == {
        "model": "claude-sonnet-4-20250514",
        "max_tokens": 1024,
        "system": "You are terse.",
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            ]},
            {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]},
            {"role": "user", "content": [{"type": "text", "text": "Sure?"}]},
        ],
        "temperature": 0.5,
        "stop_sequences": ["END"],
    }  # fmt: skip


async def test_reply_is_translated() -> None:
    completion = await _adapter(Recorder(200, fixture("anthropic_message.json"))).complete(REQUEST)
    assert completion.choices[0].message.content == "Hi! My name is Claude."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (2095, 503)


async def test_event_stream_becomes_chunks_with_usage() -> None:
    recorder = Recorder(200, fixture("anthropic_stream.sse"), "text/event-stream")
    chunks = [c async for c in _adapter(recorder).stream(REQUEST)]
    assert recorder.sent["stream"] is True
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert texts == ["Hello", "!"]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (25, 15)


async def test_overloaded_error_event_mid_stream() -> None:
    recorder = Recorder(200, fixture("anthropic_stream_overloaded.sse"), "text/event-stream")
    got = []
    with pytest.raises(UpstreamUnavailable, match="Overloaded"):
        async for chunk in _adapter(recorder).stream(REQUEST):
            got.append(chunk)
    assert got[0].choices[0].delta.content == "Hel"


async def test_rate_limit_with_retry_after() -> None:
    body = b'{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your rate limit"}}'
    recorder = Recorder(429, body, headers={"retry-after": "12"})
    with pytest.raises(UpstreamRateLimited) as raised:
        await _adapter(recorder).complete(REQUEST)
    assert raised.value.retry_after == 12.0 and KEY not in raised.value.message

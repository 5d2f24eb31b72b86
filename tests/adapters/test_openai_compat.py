"""The OpenAI-compatible adapter against OpenAI's documented Chat Completions wire format."""

from __future__ import annotations

import json

import httpx
import pytest

from adapters.openai_compat import (
    OpenAICompatAdapter,
    build_embeddings_request,
    build_request,
    parse_chunk,
    parse_response,
)
from app.errors import UpstreamError, UpstreamRateLimited, UpstreamUnavailable
from app.schemas import ChatRequest, EmbeddingRequest
from tests.adapters.wire import KEY, Recorder, collect, endpoint, finishes, fixture, text_of

REQUEST = ChatRequest.model_validate({
    "model": "auto",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        ]},
    ],
    "temperature": 0.2,
    "max_tokens": 50,
    "logit_bias": {"50256": -100},
    "stream_options": {"include_usage": False},
    "switchboard": {"preset": "cheap"},
})  # fmt: skip
GROQ = endpoint(
    "https://api.groq.com/openai/v1/", "llama-3.1-8b-instant", headers={"X-Title": "sb"}
)
SENT = {
    "model": "llama-3.1-8b-instant",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        ]},
    ],
    "temperature": 0.2,
    "max_tokens": 50,
    "logit_bias": {"50256": -100},
}  # fmt: skip


def _adapter(recorder: Recorder) -> OpenAICompatAdapter:
    return OpenAICompatAdapter(GROQ, recorder.client())


def test_request_is_the_clients_body_with_the_upstream_model() -> None:
    sent = build_request(GROQ, REQUEST, stream=False)
    assert sent.method == "POST"
    assert str(sent.url) == "https://api.groq.com/openai/v1/chat/completions"
    assert dict(sent.headers) == {
        "host": "api.groq.com",
        "content-length": str(len(sent.content)),
        "content-type": "application/json",
        "x-title": "sb",
        "accept": "application/json",
        "authorization": f"Bearer {KEY}",
    }
    assert json.loads(sent.content) == SENT
    assert sent.extensions["timeout"] == GROQ.timeout.as_dict()


def test_stream_request_always_asks_for_usage() -> None:
    sent = build_request(GROQ, REQUEST, stream=True)
    assert json.loads(sent.content) == {
        **SENT, "stream": True, "stream_options": {"include_usage": True}
    }  # fmt: skip
    assert sent.headers["accept"] == "text/event-stream"


def test_keyless_local_server_gets_no_auth_header_and_config_cannot_duplicate_it() -> None:
    local = endpoint("http://127.0.0.1:8080/v1", "gemma", key=None)
    assert "authorization" not in build_request(local, REQUEST, stream=False).headers
    clash = endpoint("https://api.openai.com/v1", "gpt-4o", headers={"Authorization": "Bearer x"})
    sent = build_request(clash, REQUEST, stream=False)
    assert sent.headers.get_list("authorization") == [f"Bearer {KEY}"]


async def test_completion_is_parsed() -> None:
    completion = await _adapter(Recorder(200, fixture("openai_completion.json"))).complete(REQUEST)
    assert completion.id == "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"
    assert completion.choices[0].message.content == "Hello! How can I assist you today?"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.total_tokens) == (19, 29)


def test_tool_calls_and_provider_extras_come_through() -> None:
    reply = parse_response(httpx.Response(200, content=fixture("openai_tool_calls.json")))
    assert reply.choices[0].finish_reason == "tool_calls"
    assert reply.choices[0].message.tool_calls == [{
        "id": "call_abc123", "type": "function",
        "function": {"name": "get_current_weather", "arguments": '{\n"location": "Boston, MA"\n}'},
    }]  # fmt: skip
    sonar = parse_response(httpx.Response(200, content=fixture("perplexity_completion.json")))
    assert sonar.choices[0].message.content is not None
    assert sonar.choices[0].message.content.startswith("The sky is blue")


def test_logprobs_pass_through_and_missing_fields_do_not_break_parsing() -> None:
    logprobs = {
        "content": [{"token": "hi", "logprob": -0.01, "bytes": [104, 105], "top_logprobs": []}]
    }
    body = json.dumps({"choices": [{"message": {"content": "hi"}, "logprobs": logprobs}]})
    reply = parse_response(httpx.Response(200, content=body.encode()))
    assert reply.choices[0].message.content == "hi" and reply.id.startswith("chatcmpl-")
    assert reply.choices[0].logprobs == logprobs  # a caller asking for logprobs gets them


@pytest.mark.parametrize("size", [None, 1, 7])
async def test_stream_yields_chunks_then_usage_however_the_bytes_arrive(size: int | None) -> None:
    recorder = Recorder(200, fixture("openai_stream.sse"), "text/event-stream", size=size)
    chunks = await collect(_adapter(recorder), REQUEST)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert text_of(chunks) == "Hello there" and finishes(chunks) == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (9, 2)
    assert {c.id for c in chunks} == {"chatcmpl-123"}
    assert recorder.bodies[0].closed


async def test_error_event_mid_stream_raises_after_the_chunks_before_it() -> None:
    events = fixture("openai_stream.sse").split(b"\n\n")
    error = b'data: {"error": {"message": "Rate limit hit", "type": "rate_limit_error"}}\n\n'
    body = events[0] + b"\n\n" + events[1] + b"\n\n" + error
    got = []
    with pytest.raises(UpstreamRateLimited, match="Rate limit hit"):
        async for chunk in _adapter(Recorder(200, body, "text/event-stream")).stream(REQUEST):
            got.append(chunk)
    assert text_of(got) == "Hello"


def test_error_codes_in_stream_payloads() -> None:
    with pytest.raises(UpstreamUnavailable, match="Provider returned error"):
        parse_chunk('{"error": {"code": 502, "message": "Provider returned error"}}')
    assert parse_chunk("[DONE]") is None


async def test_stream_closed_before_any_finish_is_cut_short() -> None:
    body = fixture("openai_stream.sse").split(b"\n\n")[1] + b"\n\n"
    with pytest.raises(UpstreamUnavailable, match="ended the stream before it finished"):
        await collect(_adapter(Recorder(200, body, "text/event-stream")), REQUEST)


async def test_nothing_after_done_is_read() -> None:
    body = fixture("openai_stream.sse") + b"data: {not json\n\n"
    chunks = await collect(_adapter(Recorder(200, body, "text/event-stream")), REQUEST)
    assert text_of(chunks) == "Hello there"


EMBED = endpoint("https://api.openai.com/v1", "text-embedding-3-small")
TEXTS = EmbeddingRequest(model="openai/text-embedding-3-small", texts=["first", "second"],
                         dimensions=4, user="u-1")  # fmt: skip


def test_embeddings_request_asks_for_floats_with_the_upstream_model() -> None:
    sent = build_embeddings_request(EMBED, TEXTS)
    assert str(sent.url) == "https://api.openai.com/v1/embeddings"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.content == (
        b'{"model":"text-embedding-3-small","input":["first","second"],'
        b'"encoding_format":"float","dimensions":4,"user":"u-1"}'
    )


async def test_embeddings_reply_comes_back_in_input_order() -> None:
    recorder = Recorder(200, fixture("openai_embeddings.json"))
    embeddings = await OpenAICompatAdapter(EMBED, recorder.client()).embed(TEXTS)
    assert embeddings.vectors == [
        [0.0023064255, -0.009327292, 0.0150825, -0.0028842222],  # "index": 0, listed second
        [0.0143, -0.0211, 0.0057, 0.0312],
    ]
    assert embeddings.model == "text-embedding-3-small" and embeddings.prompt_tokens == 8


async def test_embeddings_errors_are_typed_and_a_short_reply_is_unreadable() -> None:
    limited = Recorder(429, fixture("openai_error_429.json"), headers={"retry-after": "3"})
    with pytest.raises(UpstreamRateLimited) as caught:
        await OpenAICompatAdapter(EMBED, limited.client()).embed(TEXTS)
    assert caught.value.retry_after == 3.0 and "Rate limit reached" in caught.value.message
    one = EmbeddingRequest(model="m", texts=["only one"])
    with pytest.raises(UpstreamError, match="different number of embeddings"):
        await OpenAICompatAdapter(
            EMBED, Recorder(200, fixture("openai_embeddings.json")).client()
        ).embed(one)

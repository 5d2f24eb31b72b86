"""The OpenAI-compatible adapter against OpenAI's documented wire format."""

from __future__ import annotations

import httpx
import pytest

from adapters.openai_compat import OpenAICompatAdapter
from app.errors import (
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from app.schemas import ChatRequest
from tests.adapters.wire import KEY, Recorder, endpoint, fixture, raising

REQUEST = ChatRequest.model_validate({
    "model": "auto",
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    "temperature": 0.2,
    "max_tokens": 50,
    "logit_bias": {"50256": -100},
    "switchboard": {"preset": "cheap"},
})  # fmt: skip


def _adapter(recorder: Recorder) -> OpenAICompatAdapter:
    ep = endpoint(
        "https://api.groq.com/openai/v1", "llama-3.1-8b-instant", headers={"X-Title": "sb"}
    )
    return OpenAICompatAdapter(ep, recorder.client())


async def test_request_is_exactly_the_openai_body_with_upstream_model() -> None:
    recorder = Recorder(200, fixture("openai_completion.json"))
    await _adapter(recorder).complete(REQUEST)
    sent = recorder.requests[0]
    assert (
        sent.method == "POST" and str(sent.url) == "https://api.groq.com/openai/v1/chat/completions"
    )
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["x-title"] == "sb"
    assert recorder.sent == {
        "model": "llama-3.1-8b-instant",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "temperature": 0.2,
        "max_tokens": 50,
        "logit_bias": {"50256": -100},
    }
    assert sent.extensions["timeout"]["read"] == 60.0


async def test_completion_is_parsed() -> None:
    completion = await _adapter(Recorder(200, fixture("openai_completion.json"))).complete(REQUEST)
    assert completion.choices[0].message.content == "Hello! How can I assist you today?"
    assert completion.usage is not None and completion.usage.total_tokens == 29
    assert completion.id == "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"


async def test_stream_asks_for_usage_and_yields_chunks_then_usage() -> None:
    recorder = Recorder(200, fixture("openai_stream.sse"), "text/event-stream")
    chunks = [c async for c in _adapter(recorder).stream(REQUEST)]
    assert recorder.sent["stream"] is True
    assert recorder.sent["stream_options"] == {"include_usage": True}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello there"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 2


@pytest.mark.parametrize(
    ("status", "error", "headers"),
    [(429, UpstreamRateLimited, {"retry-after": "7"}), (401, UpstreamAuthError, {}),
     (403, UpstreamAuthError, {}), (500, UpstreamUnavailable, {}), (503, UpstreamUnavailable, {}),
     (408, UpstreamUnavailable, {}), (400, UpstreamBadRequest, {}), (404, UpstreamBadRequest, {})],
)  # fmt: skip
async def test_status_codes_map_to_typed_errors(
    status: int, error: type[UpstreamError], headers: dict[str, str]
) -> None:
    recorder = Recorder(status, fixture("openai_error_429.json"), headers=headers)
    with pytest.raises(error) as raised:
        await _adapter(recorder).complete(REQUEST)
    assert KEY not in str(raised.value) and KEY not in raised.value.message
    if status == 429:
        assert raised.value.retry_after == 7.0 and raised.value.retryable
        assert "Rate limit reached" in raised.value.message
    with pytest.raises(error):
        [c async for c in _adapter(recorder).stream(REQUEST)]


@pytest.mark.parametrize(
    ("exc", "error"),
    [(httpx.ReadTimeout("slow"), UpstreamTimeout), (httpx.ConnectError("refused"), UpstreamUnavailable),
     (httpx.ConnectTimeout("slow"), UpstreamUnavailable)],
)  # fmt: skip
async def test_transport_failures_map_to_retryable_errors(
    exc: Exception, error: type[UpstreamError]
) -> None:
    ep = endpoint("https://api.openai.com/v1", "gpt-4o")
    client = httpx.AsyncClient(transport=httpx.MockTransport(raising(exc)))
    with pytest.raises(error) as raised:
        await OpenAICompatAdapter(ep, client).complete(REQUEST)
    assert raised.value.retryable


async def test_error_event_mid_stream_raises() -> None:
    body = (fixture("openai_stream.sse").split(b"\n\n")[1] + b"\n\n"
            + b'data: {"error": {"message": "server overloaded"}}\n\n')  # fmt: skip
    chunks = []
    with pytest.raises(UpstreamUnavailable, match="server overloaded"):
        async for chunk in _adapter(Recorder(200, body, "text/event-stream")).stream(REQUEST):
            chunks.append(chunk)
    assert chunks and chunks[0].choices[0].delta.content == "Hello"


async def test_stream_cut_short_without_finish_raises() -> None:
    body = fixture("openai_stream.sse").split(b"\n\n")[1] + b"\n\n"
    with pytest.raises(UpstreamUnavailable, match="ended the stream early"):
        [c async for c in _adapter(Recorder(200, body, "text/event-stream")).stream(REQUEST)]


async def test_local_servers_need_no_key() -> None:
    recorder = Recorder(200, fixture("openai_completion.json"))
    ep = endpoint("http://127.0.0.1:8080/v1", "gemma")
    keyless = type(ep)(base_url=ep.base_url, upstream_model="gemma")
    await OpenAICompatAdapter(keyless, recorder.client()).complete(REQUEST)
    assert "authorization" not in recorder.requests[0].headers

"""What every adapter does alike: map failures, keep the key out of errors, close responses."""

from __future__ import annotations

import httpx
import pytest

from adapters.anthropic import AnthropicAdapter
from adapters.base import ChatAdapter
from adapters.gemini import GeminiAdapter
from adapters.ollama import OllamaAdapter
from adapters.openai_compat import OpenAICompatAdapter
from app.errors import (
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamBusy,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tests.adapters.wire import KEY, SIMPLE, Recorder, collect, endpoint, fixture, raising

# name -> (adapter class, base URL, a good streamed body)
ADAPTERS = {
    "openai_compat": (OpenAICompatAdapter, "https://api.openai.com/v1", "openai_stream.sse"),
    "anthropic": (AnthropicAdapter, "https://api.anthropic.com", "anthropic_stream.sse"),
    "gemini": (GeminiAdapter, "https://generativelanguage.googleapis.com", "gemini_stream.sse"),
    "ollama": (OllamaAdapter, "http://127.0.0.1:11434", "ollama_stream.ndjson"),
}
NAMES = sorted(ADAPTERS)
# Providers that echo a rejected key back must not leak it through us.
ECHO = b'{"error": {"message": "Incorrect API key provided: ' + KEY.encode() + b'"}}'


def make(name: str, client: httpx.AsyncClient) -> ChatAdapter:
    cls, base_url, _ = ADAPTERS[name]
    return cls(endpoint(base_url, "some-model"), client)


def good_stream(name: str) -> bytes:
    return fixture(ADAPTERS[name][2])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("status", "error"),
    [(429, UpstreamRateLimited), (401, UpstreamAuthError), (403, UpstreamAuthError),
     (408, UpstreamUnavailable), (409, UpstreamUnavailable), (500, UpstreamUnavailable),
     (503, UpstreamUnavailable), (529, UpstreamUnavailable), (400, UpstreamBadRequest),
     (404, UpstreamBadRequest), (422, UpstreamBadRequest)],
)  # fmt: skip
async def test_status_codes_map_to_typed_errors_without_the_key(
    name: str, status: int, error: type[UpstreamError]
) -> None:
    recorder = Recorder(status, ECHO, headers={"retry-after": "7"})
    with pytest.raises(error) as raised:
        await make(name, recorder.client()).complete(SIMPLE)
    assert KEY not in str(raised.value) and KEY not in repr(raised.value.args)
    assert "Incorrect API key provided" in raised.value.message
    if status == 429:
        assert raised.value.retry_after == 7.0
    with pytest.raises(error) as streamed:
        await collect(make(name, recorder.client()))
    assert KEY not in str(streamed.value)
    assert all(body.closed for body in recorder.bodies)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("exc", "error"),
    [(httpx.ReadTimeout("timed out"), UpstreamTimeout),
     (httpx.WriteTimeout("timed out"), UpstreamTimeout),
     (httpx.ConnectError("connection refused"), UpstreamUnavailable),
     (httpx.ConnectTimeout("timed out"), UpstreamUnavailable),
     (httpx.RemoteProtocolError("server disconnected"), UpstreamUnavailable)],
)  # fmt: skip
async def test_transport_failures_are_retryable_typed_errors(
    name: str, exc: httpx.TransportError, error: type[UpstreamError]
) -> None:
    with pytest.raises(error) as raised:
        await make(name, raising(exc)).complete(SIMPLE)
    assert raised.value.retryable and raised.value.__cause__ is exc
    with pytest.raises(error):
        await collect(make(name, raising(exc)))


@pytest.mark.parametrize("name", NAMES)
async def test_a_full_connection_pool_is_busy_not_a_provider_failure(name: str) -> None:
    exc = httpx.PoolTimeout("no free connection")
    with pytest.raises(UpstreamBusy) as raised:
        await make(name, raising(exc)).complete(SIMPLE)
    assert not raised.value.retryable and not raised.value.provider_fault
    assert raised.value.status_code == 503 and raised.value.retry_after is not None


@pytest.mark.parametrize("name", NAMES)
async def test_connection_dropped_mid_stream(name: str) -> None:
    recorder = Recorder(200, good_stream(name), size=40, fail_after=2)
    got = []
    with pytest.raises(UpstreamUnavailable, match="ReadError") as raised:
        async for chunk in make(name, recorder.client()).stream(SIMPLE):
            got.append(chunk)
    assert isinstance(raised.value.__cause__, httpx.ReadError)
    assert recorder.bodies[0].closed


@pytest.mark.parametrize("name", NAMES)
async def test_response_is_closed_when_the_consumer_stops_early(name: str) -> None:
    recorder = Recorder(200, good_stream(name), size=1)
    stream = make(name, recorder.client()).stream(SIMPLE)
    first = await anext(stream)
    assert first.choices and first.choices[0].delta.role == "assistant"
    await stream.aclose()  # type: ignore[attr-defined]
    assert recorder.bodies[0].closed and recorder.bodies[0].sent < len(good_stream(name))


@pytest.mark.parametrize("name", NAMES)
async def test_every_stream_ends_with_a_usage_only_chunk(name: str) -> None:
    chunks = await collect(make(name, Recorder(200, good_stream(name)).client()))
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens > 0
    assert sum(1 for c in chunks if c.choices and c.choices[0].finish_reason) == 1


@pytest.mark.parametrize("name", NAMES)
async def test_garbage_reply_is_a_non_retryable_upstream_error(name: str) -> None:
    recorder = Recorder(200, b"<html>captive portal</html>", "text/html")
    with pytest.raises(UpstreamError, match="cannot read") as raised:
        await make(name, recorder.client()).complete(SIMPLE)
    assert type(raised.value) is UpstreamError and not raised.value.retryable
    with pytest.raises(UpstreamError, match="cannot read"):
        await collect(make(name, Recorder(200, b"data: {oops\n\n{oops\n").client()))


@pytest.mark.parametrize("name", NAMES)
async def test_aclose_leaves_the_shared_client_open(name: str) -> None:
    client = Recorder(200, b"{}").client()
    adapter = make(name, client)
    await adapter.aclose()
    assert not client.is_closed
    await client.aclose()

"""Status codes, Retry-After and transport failures map to the documented typed errors."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from adapters.failures import Upstream, error_detail, retry_after
from app.errors import (
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamBusy,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tests.adapters.wire import KEY, endpoint, fixture

UPSTREAM = Upstream("api.example.com", KEY)


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, UpstreamRateLimited), (401, UpstreamAuthError), (403, UpstreamAuthError),
     (408, UpstreamUnavailable), (409, UpstreamUnavailable), (500, UpstreamUnavailable),
     (502, UpstreamUnavailable), (503, UpstreamUnavailable), (504, UpstreamUnavailable),
     (529, UpstreamUnavailable), (400, UpstreamBadRequest), (404, UpstreamBadRequest),
     (413, UpstreamBadRequest), (422, UpstreamBadRequest)],
)  # fmt: skip
def test_status_mapping(status: int, error: type[UpstreamError]) -> None:
    got = UPSTREAM.error(httpx.Response(status, content=b'{"error": {"message": "nope"}}'))
    assert type(got) is error
    assert got.message == f"api.example.com answered HTTP {status}: nope"
    assert got.retryable is (error in (UpstreamRateLimited, UpstreamUnavailable))


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [({"retry-after": "7"}, 7.0), ({"retry-after": "1.5"}, 1.5), ({"retry-after": "-3"}, 0.0),
     ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5), ({"retry-after-ms": "x", "retry-after": "9"}, 9.0),
     ({"retry-after": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
     ({"retry-after": email.utils.formatdate(NOW - 30, usegmt=True)}, 0.0),
     ({"retry-after": "Wed, 21 Oct 2015 07:28:00 -0000"}, 0.0),
     ({"retry-after": "soon"}, None), ({"retry-after": "nan"}, None), ({"retry-after": "inf"}, None),
     ({}, None)],
)  # fmt: skip
def test_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after(httpx.Headers(headers), now=NOW) == seconds


def test_retry_after_reaches_rate_limit_and_unavailable_errors() -> None:
    limited = UPSTREAM.error(httpx.Response(429, headers={"retry-after": "12"}))
    assert isinstance(limited, UpstreamRateLimited) and limited.retry_after == 12.0
    busy = UPSTREAM.error(httpx.Response(503, headers={"retry-after-ms": "250"}))
    assert isinstance(busy, UpstreamUnavailable) and busy.retry_after == 0.25


@pytest.mark.parametrize(
    ("body", "detail"),
    [(fixture("openai_error_429.json"), "Rate limit reached for gpt-4o in organization org-abc"),
     (fixture("anthropic_error_429.json"), "This request would exceed the rate limit"),
     (fixture("gemini_error_400_api_key.json"), "API key not valid. Please pass a valid API key."),
     (b'[{"error": {"code": 503, "message": "The model is overloaded."}}]', "The model is overloaded."),
     (fixture("ollama_error_404.json"), 'model "llama3" not found, try pulling it first'),
     (b'{"object": "error", "message": "max_tokens is too large", "code": 400}', "max_tokens is too large"),
     (b'{"detail": "Not Found"}', "Not Found"),
     (b"<html><body>502 Bad Gateway</body></html>", "<html><body>502 Bad Gateway</body></html>"),
     (b"", "")],
)  # fmt: skip
def test_error_detail_reads_every_providers_shape(body: bytes, detail: str) -> None:
    assert error_detail(body).startswith(detail)


def test_detail_is_quoted_shortened_and_on_one_line() -> None:
    body = b'{"error": {"message": "line one\\n   line two ' + b"x" * 1000 + b'"}}'
    got = UPSTREAM.error(httpx.Response(400, content=body))
    assert "line one line two xxx" in got.message
    assert len(got.message) < 400 and got.message.endswith("…")


@pytest.mark.parametrize("offset", [0, 250, 290, 299, 320])
def test_an_echoed_key_is_scrubbed_wherever_it_falls(offset: int) -> None:
    body = (
        b'{"error": {"message": "' + b"y" * offset + b"Incorrect API key " + KEY.encode() + b'"}}'
    )
    for status in (400, 401, 429, 500):
        got = UPSTREAM.error(httpx.Response(status, content=body))
        assert KEY not in str(got) and KEY[:12] not in got.message


@pytest.mark.parametrize(
    ("exc", "error"),
    [(httpx.ConnectError("refused"), UpstreamUnavailable),
     (httpx.ConnectTimeout("slow"), UpstreamUnavailable),
     (httpx.RemoteProtocolError("server disconnected"), UpstreamUnavailable),
     (httpx.ReadError("reset"), UpstreamUnavailable),
     (httpx.ReadTimeout("slow"), UpstreamTimeout), (httpx.WriteTimeout("slow"), UpstreamTimeout),
     (httpx.PoolTimeout("busy"), UpstreamBusy)],
)  # fmt: skip
def test_transport_failures(exc: httpx.TransportError, error: type[UpstreamError]) -> None:
    got = UPSTREAM.error(exc)
    assert type(got) is error and got.retryable == (error is not UpstreamBusy)
    assert "api.example.com" in got.message


def test_upstream_is_named_by_host_only() -> None:
    upstream = Upstream.of(endpoint("https://user:pw@api.groq.com:443/openai/v1", "m"))
    assert upstream == Upstream("api.groq.com", KEY)
    assert KEY not in repr(upstream) and "pw" not in repr(upstream)


def test_errors_reported_inside_a_2xx_reply_do_not_claim_an_http_status() -> None:
    got = UPSTREAM.reported_error(529, f"Overloaded (key {KEY})")
    assert isinstance(got, UpstreamUnavailable)
    assert got.message == "api.example.com reported an error: Overloaded (key [redacted])"


def test_unread_streamed_error_body_still_maps() -> None:
    response = httpx.Response(500, stream=httpx.ByteStream(b"boom"))
    assert isinstance(UPSTREAM.error(response), UpstreamUnavailable)

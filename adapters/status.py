"""Provider failures -> Switchboard's typed ``UpstreamError``s: the one place per status code.

Messages carry the provider's own error text when the body has one, never request headers
(and so never a key).
"""

from __future__ import annotations

import email.utils
import json
import time

import httpx

from app.errors import (
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)

_MAX_DETAIL = 300


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return None if parsed is None else max(0.0, parsed.timestamp() - time.time())


def _detail(body: bytes) -> str:
    try:
        payload = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")[:_MAX_DETAIL]
    error = payload.get("error", payload) if isinstance(payload, dict) else payload
    if isinstance(error, dict):
        message = error.get("message") or error.get("error") or json.dumps(error)
        return str(message)[:_MAX_DETAIL]
    return str(error)[:_MAX_DETAIL]


def from_status(provider: str, status: int, headers: httpx.Headers, body: bytes) -> UpstreamError:
    """The typed error for an upstream HTTP error response."""
    message = f"{provider} returned {status}: {_detail(body)}".rstrip(": ")
    if status == 429:
        return UpstreamRateLimited(message, retry_after=retry_after(headers))
    if status in (401, 403):
        return UpstreamAuthError(f"{provider} rejected Switchboard's credentials ({status})")
    if status in (408, 409) or status >= 500:
        return UpstreamUnavailable(message, retry_after=retry_after(headers))
    return UpstreamBadRequest(message)


def from_transport(provider: str, exc: httpx.TransportError) -> UpstreamError:
    """The typed error for a connection or timeout failure."""
    if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError):
        return UpstreamUnavailable(f"cannot connect to {provider}")
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"{provider} did not answer in time ({type(exc).__name__})")
    return UpstreamUnavailable(f"{provider} connection failed ({type(exc).__name__})")


async def raise_for_status(provider: str, response: httpx.Response) -> None:
    """Raise the typed error for a non-2xx response (reads the body; works for streams)."""
    if response.status_code < 400:
        return
    body = await response.aread()
    raise from_status(provider, response.status_code, response.headers, body)

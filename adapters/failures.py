"""Provider failures -> typed ``UpstreamError``s: the one place they are classified.

    HTTP 429                              UpstreamRateLimited   (+ retry_after)
    HTTP 401, 403                         UpstreamAuthError     (our key, not the caller's)
    HTTP 408, 409, 5xx                    UpstreamUnavailable   (+ retry_after when sent)
    other HTTP 4xx                        UpstreamBadRequest
    connect error / connect timeout       UpstreamUnavailable
    pool timeout (no free connection)     UpstreamBusy          (not the provider's fault)
    read or write timeout                 UpstreamTimeout
    any other transport error             UpstreamUnavailable   (e.g. a dropped connection)

``retry_after`` comes from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date).
Messages name the provider by host and quote the provider's own error text when the body has
one. They never include request headers, and the endpoint's key is scrubbed from quoted text,
since some servers echo a rejected key back.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC
from urllib.parse import urlsplit

import httpx

from adapters.base import Endpoint
from app.errors import (
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamBusy,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)

_MAX_DETAIL = 300
_SPACES = re.compile(r"\s+")


def retry_after(headers: httpx.Headers, *, now: float | None = None) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``Retry-After``; None when absent or bad."""
    millis = _number(headers.get("retry-after-ms", ""))
    if millis is not None:
        return millis / 1000
    value = headers.get("retry-after", "").strip()
    seconds = _number(value)
    if seconds is not None or not value:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" dates parse naive; HTTP dates are UTC
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return max(0.0, value) if math.isfinite(value) else None


def error_detail(body: bytes) -> str:
    """The provider's error message from an error body, whatever the provider's shape."""
    text = body.decode("utf-8", "replace").strip()
    try:
        found = _message_in(json.loads(text))
    except ValueError:
        found = None
    return found or text


def _message_in(payload: object) -> str | None:
    """OpenAI/Anthropic ``{"error": {"message"}}``, Ollama ``{"error": "..."}``, and kin."""
    if isinstance(payload, str):
        return payload
    if isinstance(payload, list) and payload:  # Gemini wraps stream errors in a list
        return _message_in(payload[0])
    if isinstance(payload, dict):
        for key in ("error", "message", "detail"):
            found = _message_in(payload.get(key))
            if found:
                return found
    return None


@dataclass(frozen=True)
class Upstream:
    """Builds the typed errors for one endpoint: named by host, its key scrubbed from text."""

    name: str
    secret: str | None = field(default=None, repr=False)

    @classmethod
    def of(cls, endpoint: Endpoint) -> Upstream:
        secret = endpoint.api_key.get_secret_value() if endpoint.api_key else None
        return cls(urlsplit(endpoint.base_url).hostname or "upstream", secret or None)

    def error(self, failure: httpx.Response | httpx.TransportError) -> UpstreamError:
        """The typed error for an error response (body already read) or a transport failure."""
        if isinstance(failure, httpx.Response):
            try:
                body = failure.content
            except httpx.ResponseNotRead:
                body = b""
            return self.status_error(
                failure.status_code, error_detail(body), retry_after=retry_after(failure.headers)
            )
        kind = type(failure).__name__
        if isinstance(failure, httpx.ConnectError | httpx.ConnectTimeout):
            return UpstreamUnavailable(f"cannot connect to {self.name} ({kind})")
        if isinstance(failure, httpx.PoolTimeout):  # our pool is full: no call was made
            return UpstreamBusy(f"no free connection to {self.name}", retry_after=1.0)
        if isinstance(failure, httpx.TimeoutException):
            return UpstreamTimeout(f"{self.name} did not answer in time ({kind})")
        return UpstreamUnavailable(f"the connection to {self.name} failed ({kind})")

    def status_error(
        self, status: int, detail: str = "", *, retry_after: float | None = None
    ) -> UpstreamError:
        """The typed error for an HTTP error status."""
        return _by_status(status, self._say(f"answered HTTP {status}", detail), retry_after)

    def reported_error(self, status: int, detail: str) -> UpstreamError:
        """The typed error for an error payload inside a 2xx reply or stream; ``status`` is what the
        provider's error type or code corresponds to (e.g. 529 for Anthropic's overload)."""
        return _by_status(status, self._say("reported an error", detail), None)

    def unreadable(self, what: str) -> UpstreamError:
        """The provider broke its own wire format: a bad gateway, worth a fallback."""
        return UpstreamError(f"{self.name} sent {what} Switchboard cannot read")

    def cut_short(self) -> UpstreamUnavailable:
        return UpstreamUnavailable(f"{self.name} ended the stream before it finished")

    def scrub(self, text: str) -> str:
        return text.replace(self.secret, "[redacted]") if self.secret else text

    def _say(self, what: str, detail: str) -> str:
        detail = _SPACES.sub(" ", self.scrub(detail)).strip()  # scrub first, then shorten
        if len(detail) > _MAX_DETAIL:
            detail = detail[: _MAX_DETAIL - 1] + "…"
        return f"{self.name} {what}: {detail}" if detail else f"{self.name} {what}"


def _by_status(status: int, message: str, retry_after: float | None) -> UpstreamError:
    """The one status -> error table (see the module docstring)."""
    if status == 429:
        return UpstreamRateLimited(message, retry_after=retry_after)
    if status in (401, 403):
        return UpstreamAuthError(message)
    if status in (408, 409) or status >= 500:
        return UpstreamUnavailable(message, retry_after=retry_after)
    return UpstreamBadRequest(message)

"""The I/O every adapter shares: send a built request, map failures, iterate a streamed body."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx

from adapters.status import from_transport, raise_for_status


def provider_name(base_url: str) -> str:
    """A log- and error-safe name for an upstream: its host, never a key or path."""
    return urlsplit(base_url).hostname or "upstream"


async def send(client: httpx.AsyncClient, request: httpx.Request, provider: str) -> httpx.Response:
    """Send a non-streaming request; raise the typed error for transport and HTTP failures."""
    try:
        response = await client.send(request)
    except httpx.TransportError as exc:
        raise from_transport(provider, exc) from exc
    await raise_for_status(provider, response)
    return response


async def stream_bytes(
    client: httpx.AsyncClient, request: httpx.Request, provider: str
) -> AsyncIterator[bytes]:
    """Send a streaming request and yield its body as it arrives; always closes the response."""
    try:
        response = await client.send(request, stream=True)
    except httpx.TransportError as exc:
        raise from_transport(provider, exc) from exc
    try:
        await raise_for_status(provider, response)
        async for chunk in response.aiter_bytes():  # decoded: providers may gzip streams
            yield chunk
    except httpx.TransportError as exc:
        raise from_transport(provider, exc) from exc
    finally:
        await response.aclose()

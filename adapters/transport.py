"""The I/O every adapter shares: send a built request, map failures, iterate a streamed body."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlsplit

import httpx

from adapters.base import Endpoint
from adapters.status import from_transport, raise_for_status
from app.errors import UpstreamUnavailable
from app.schemas import ChatCompletion, ChatRequest


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


def json_request(
    endpoint: Endpoint, url: str, body: Mapping[str, object], headers: Mapping[str, str]
) -> httpx.Request:
    """A POST of ``body`` as compact JSON, with the endpoint's headers and explicit timeout."""
    return httpx.Request(
        "POST",
        url,
        content=json.dumps(body, separators=(",", ":")).encode(),
        headers={"content-type": "application/json", **endpoint.headers, **headers},
        extensions={"timeout": endpoint.timeout.as_dict()},
    )


class HttpAdapter:
    """The I/O shared by the adapters; each subclass supplies its pure ``build`` and ``parse``."""

    def __init__(self, endpoint: Endpoint, client: httpx.AsyncClient) -> None:
        self.endpoint = endpoint
        self.client = client
        self.provider = provider_name(endpoint.base_url)

    def build(self, request: ChatRequest, *, stream: bool) -> httpx.Request:
        raise NotImplementedError

    def parse(self, body: bytes) -> ChatCompletion:
        raise NotImplementedError

    async def complete(self, request: ChatRequest) -> ChatCompletion:
        response = await send(self.client, self.build(request, stream=False), self.provider)
        try:
            return self.parse(response.content)
        except (ValueError, KeyError, TypeError) as exc:  # pydantic's ValidationError included
            raise UpstreamUnavailable(f"{self.provider} sent an unreadable reply") from exc

    def open(self, request: ChatRequest) -> AsyncIterator[bytes]:
        """The streamed body of ``request`` as it arrives."""
        return stream_bytes(self.client, self.build(request, stream=True), self.provider)

    async def aclose(self) -> None:
        return None

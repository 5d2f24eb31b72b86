"""The HTTP I/O every adapter shares, kept apart from the wire formats.

An adapter module supplies three pure pieces: ``build`` (our request -> an ``httpx.Request``),
``parse`` (the provider's reply -> a ``ChatCompletion``) and a ``StreamTranslator`` (streamed
bytes -> ``ChatChunk``s). ``HttpAdapter`` sends, checks the status before reading, maps every
failure through ``adapters.failures``, and always closes a streamed response, also when the
consumer stops early.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Iterator, Mapping
from typing import Protocol

import httpx

from adapters.base import Endpoint
from adapters.failures import Upstream
from app.errors import UpstreamError
from app.schemas import ChatChunk, ChatCompletion, ChatRequest


def json_request(
    endpoint: Endpoint, path: str, body: Mapping[str, object], headers: Mapping[str, str]
) -> httpx.Request:
    """A POST of ``body`` as compact JSON to ``base_url + path``, with an explicit timeout.

    Configured endpoint headers come before the adapter's own, so they cannot replace the
    auth header the adapter derives from the endpoint's key.
    """
    merged = httpx.Headers({"content-type": "application/json"})
    merged.update(endpoint.headers)  # case-insensitive: a later name replaces an earlier one
    merged.update(headers)
    return httpx.Request(
        "POST",
        endpoint.base_url.rstrip("/") + path,
        content=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
        headers=merged,
        extensions={"timeout": endpoint.timeout.as_dict()},
    )


class StreamTranslator(Protocol):
    """Pure: a provider's streamed bytes in, canonical chunks out.

    The decoder consumes ``data`` at once; the returned iterator translates lazily.
    """

    @property
    def done(self) -> bool:
        """The provider said the stream is over; later bytes are ignored."""
        ...

    def feed(self, data: bytes) -> Iterator[ChatChunk]:
        """The chunks ``data`` completes, in order; a provider's error event raises when the
        iteration reaches it, so the chunks before it still go out."""
        ...

    def close(self) -> Iterator[ChatChunk]:
        """The chunks the end of the body completes; raises if the stream was cut short."""
        ...


class HttpAdapter(ABC):
    """A ``ChatAdapter`` over HTTP; subclasses supply the wire format."""

    def __init__(self, endpoint: Endpoint, client: httpx.AsyncClient) -> None:
        self.endpoint = endpoint
        self.client = client  # owned by the service, never closed here
        self.upstream = Upstream.of(endpoint)

    @abstractmethod
    def build(self, request: ChatRequest, *, stream: bool) -> httpx.Request: ...

    @abstractmethod
    def parse(self, response: httpx.Response) -> ChatCompletion: ...

    @abstractmethod
    def translator(self) -> StreamTranslator: ...

    def http_error(self, response: httpx.Response) -> UpstreamError:
        """The typed error for an error response; a format may refine the status mapping."""
        return self.upstream.error(response)

    async def send(self, request: httpx.Request) -> httpx.Response:
        """Send one non-streamed request; a transport failure or an error status raises."""
        try:
            response = await self.client.send(request)
        except httpx.TransportError as exc:
            raise self.upstream.error(exc) from exc
        if response.is_error:
            raise self.http_error(response)
        return response

    async def complete(self, request: ChatRequest) -> ChatCompletion:
        response = await self.send(self.build(request, stream=False))
        try:
            return self.parse(response)
        except ValueError as exc:  # includes JSON and pydantic validation errors
            raise self.upstream.unreadable("a reply") from exc

    async def stream(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        translator = self.translator()
        try:
            response = await self.client.send(self.build(request, stream=True), stream=True)
        except httpx.TransportError as exc:
            raise self.upstream.error(exc) from exc
        try:
            if response.is_error:
                await response.aread()
                raise self.http_error(response)
            async for data in response.aiter_bytes():  # decoded: providers may gzip streams
                for chunk in translator.feed(data):
                    yield chunk
                if translator.done:
                    return
            for chunk in translator.close():
                yield chunk
        except httpx.TransportError as exc:
            raise self.upstream.error(exc) from exc
        except ValueError as exc:
            raise self.upstream.unreadable("a stream event") from exc
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        """Nothing to release: the HTTP client belongs to the service."""
        return None

"""Test plumbing: serve fixture bytes through ``httpx.MockTransport`` and record what was sent."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
from pydantic import SecretStr

from adapters.base import ChatAdapter, Endpoint
from app.schemas import ChatChunk, ChatRequest

FIXTURES = Path(__file__).parent / "fixtures"
KEY = "sk-test-very-secret-0123456789"
SIMPLE = ChatRequest.model_validate(
    {"model": "auto", "messages": [{"role": "user", "content": "Hi"}]}
)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def endpoint(
    base_url: str, model: str, *, key: str | None = KEY, headers: dict[str, str] | None = None
) -> Endpoint:
    return Endpoint(
        base_url=base_url,
        upstream_model=model,
        api_key=SecretStr(key) if key is not None else None,
        headers=headers or {},
    )


class Pieces(httpx.AsyncByteStream):
    """A response body delivered ``size`` bytes at a time; can drop the connection midway."""

    def __init__(self, body: bytes, size: int, fail_after: int | None = None) -> None:
        self.body, self.size, self.fail_after = body, size, fail_after
        self.sent = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.body), self.size):
            if self.fail_after is not None and self.sent >= self.fail_after:
                raise httpx.ReadError("connection reset by peer")
            self.sent += 1
            yield self.body[start : start + self.size]

    async def aclose(self) -> None:
        self.closed = True


class Recorder:
    """A MockTransport handler: answers every request alike and keeps each request it got."""

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        *,
        headers: dict[str, str] | None = None,
        size: int | None = None,
        fail_after: int | None = None,
    ) -> None:
        self.status, self.body, self.size, self.fail_after = status, body, size, fail_after
        self.headers = {"content-type": content_type, **(headers or {})}
        self.requests: list[httpx.Request] = []
        self.bodies: list[Pieces] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        pieces = Pieces(self.body, self.size or max(1, len(self.body)), self.fail_after)
        self.bodies.append(pieces)
        return httpx.Response(self.status, headers=self.headers, stream=pieces)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))

    @property
    def sent(self) -> dict[str, object]:
        body: dict[str, object] = json.loads(self.requests[-1].content)
        return body


def raising(exc: Exception) -> httpx.AsyncClient:
    """A client whose every request fails with ``exc`` before any response."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def collect(adapter: ChatAdapter, request: ChatRequest = SIMPLE) -> list[ChatChunk]:
    return [chunk async for chunk in adapter.stream(request)]


def text_of(chunks: list[ChatChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def finishes(chunks: list[ChatChunk]) -> list[str]:
    return [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]


AdapterMaker = Callable[[httpx.AsyncClient], ChatAdapter]

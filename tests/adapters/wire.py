"""Test plumbing: serve fixture bytes through httpx.MockTransport and record what was sent."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
from pydantic import SecretStr

from adapters.base import Endpoint

FIXTURES = Path(__file__).parent / "fixtures"
KEY = "sk-test-very-secret-0123456789"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def endpoint(base_url: str, model: str, **extra: object) -> Endpoint:
    return Endpoint(base_url=base_url, upstream_model=model, api_key=SecretStr(KEY), **extra)  # type: ignore[arg-type]


class Recorder:
    """A MockTransport handler: answers with a fixed response, keeps every request."""

    def __init__(self, status: int, body: bytes, content_type: str = "application/json",
                 headers: dict[str, str] | None = None) -> None:  # fmt: skip
        self.status, self.body = status, body
        self.headers = {"content-type": content_type, **(headers or {})}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, content=self.body, headers=self.headers)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))

    @property
    def sent(self) -> dict[str, object]:
        body: dict[str, object] = json.loads(self.requests[-1].content)
        return body


def raising(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler

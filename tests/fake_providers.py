"""Hosted providers on loopback, answering with byte-exact fixtures of their documented formats.

The fixture files are those of ``tests/adapters/fixtures``; what a request asks for picks one:

- ``/openai/v1/chat/completions``: ``openai_completion.json``, or ``openai_tool_calls.json``
  when the request has tools; streamed: ``openai_stream.sse`` / ``openai_stream_tool_calls.sse``.
- ``/openai/v1/embeddings``: ``openai_embeddings.json`` (two vectors).
- ``/anthropic/v1/messages``: ``anthropic_message.json`` / ``anthropic_tool_use.json``;
  streamed: ``anthropic_stream.sse`` / ``anthropic_stream_tool_use.sse``.
- ``/gemini/v1beta/models/<model>:generateContent``: ``gemini_response.json`` /
  ``gemini_function_call.json``; streamed: ``gemini_stream.sse``.
- ``/ratelimited/<openai|anthropic>/...``: HTTP 429, ``Retry-After: 7``, the provider's 429 body.
- ``/overloaded/anthropic/v1/messages``: a stream that breaks with Anthropic's
  ``overloaded_error`` event after its first text (``anthropic_stream_overloaded.sse``).

The last request body each path received is kept in ``received`` (keyed by path), so a test
can check what reached the provider.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fake_upstream import serve

FIXTURES = Path(__file__).parent / "adapters" / "fixtures"
RETRY_AFTER = "7"
received: dict[str, dict[str, object]] = {}


def _fixture(name: str, status: int = 200, **headers: str) -> Response:
    media = "text/event-stream" if name.endswith(".sse") else "application/json"
    return Response((FIXTURES / name).read_bytes(), status_code=status, media_type=media,
                    headers=headers)  # fmt: skip


async def _body(request: Request) -> dict[str, object]:
    body: dict[str, object] = json.loads(await request.body())
    received[request.url.path] = body
    return body


async def openai_chat(request: Request) -> Response:
    body = await _body(request)
    tools = bool(body.get("tools"))
    if body.get("stream"):
        return _fixture("openai_stream_tool_calls.sse" if tools else "openai_stream.sse")
    return _fixture("openai_tool_calls.json" if tools else "openai_completion.json")


async def openai_embeddings(request: Request) -> Response:
    await _body(request)
    return _fixture("openai_embeddings.json")


async def anthropic_messages(request: Request) -> Response:
    body = await _body(request)
    tools = bool(body.get("tools"))
    if body.get("stream"):
        return _fixture("anthropic_stream_tool_use.sse" if tools else "anthropic_stream.sse")
    return _fixture("anthropic_tool_use.json" if tools else "anthropic_message.json")


async def gemini(request: Request) -> Response:
    body = await _body(request)
    if request.path_params["call"].endswith(":streamGenerateContent"):
        return _fixture("gemini_stream.sse")
    return _fixture("gemini_function_call.json" if body.get("tools") else "gemini_response.json")


async def ratelimited(request: Request) -> Response:
    await _body(request)
    name = f"{request.path_params['provider']}_error_429.json"
    return _fixture(name, 429, **{"retry-after": RETRY_AFTER})


async def overloaded(request: Request) -> Response:
    body = await _body(request)
    if body.get("stream"):
        return _fixture("anthropic_stream_overloaded.sse")
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    return Response(json.dumps(error), status_code=529, media_type="application/json")


app = Starlette(
    routes=[
        Route("/openai/v1/chat/completions", openai_chat, methods=["POST"]),
        Route("/openai/v1/embeddings", openai_embeddings, methods=["POST"]),
        Route("/anthropic/v1/messages", anthropic_messages, methods=["POST"]),
        Route("/gemini/v1beta/models/{call}", gemini, methods=["POST"]),
        Route("/ratelimited/{provider}/{rest:path}", ratelimited, methods=["POST"]),
        Route("/overloaded/anthropic/v1/messages", overloaded, methods=["POST"]),
    ]
)


@contextmanager
def fake_providers() -> Iterator[str]:
    """Serve ``app`` on a free loopback port for the duration of the block; yields its URL."""
    with serve(app) as url:
        yield url

"""A small misbehaving OpenAI-compatible upstream on loopback, for fallback tests.

Paths pick the behaviour: ``/status/{code}/v1/...`` answers that status, ``/hang/v1/...`` never
answers in time, ``/midstream/v1/...`` streams one chunk and then drops the connection, and
``/answer/{name}/v1/...`` answers (streamed too) with what it received: its name, how many
images the request carried and the last user text, so a test can see what reached which model;
``/tail/{every}/{name}/v1/...`` answers the same way but is slow on every ``every``-th call;
``/stream/{name}/v1/...`` streams twenty words, 50 ms apart, then its usage (streamed requests)
or answers at once (others); ``/trickle/v1/...`` sends its reply a byte at a time, 0.2 s apart.
Every request body is kept in ``received`` (path -> bodies), so tests can see what was sent.
``/transcribe/v1/audio/transcriptions`` transcribes any recording as "what is this".
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.gateway.local_servers import free_port

hits: Counter[str] = Counter()
received: dict[str, list[dict[str, object]]] = {}


async def _body(request: Request) -> dict[str, object]:
    body: dict[str, object] = await request.json()
    received.setdefault(request.url.path, []).append(body)
    return body


def _error(code: int) -> JSONResponse:
    body = {"error": {"message": f"upstream says {code}", "type": "server_error", "code": None}}
    headers = {"Retry-After": "0"} if code == 429 else {}
    return JSONResponse(body, status_code=code, headers=headers)


async def status(request: Request) -> Response:
    hits[request.url.path] += 1
    return _error(int(request.path_params["code"]))


async def hang(request: Request) -> Response:
    hits[request.url.path] += 1
    await asyncio.sleep(30)
    return _error(500)


def _chunk(text: str) -> str:
    chunk = {
        "id": "chatcmpl-mid",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "mid",
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}
        ],
    }
    return f"data: {json.dumps(chunk)}\n\n"


async def midstream(request: Request) -> Response:
    hits[request.url.path] += 1
    body = await request.json()
    if not body.get("stream"):
        return _error(500)

    async def events() -> AsyncIterator[str]:
        yield _chunk("partial ")
        await asyncio.sleep(0.05)
        raise RuntimeError("upstream died mid-stream")

    return StreamingResponse(events(), media_type="text/event-stream")


async def tail(request: Request) -> Response:
    """Like ``answer``, after 50 ms -- but every ``every``-th call takes 2.5 s (a slow tail)."""
    hits[request.url.path] += 1
    every = int(request.path_params["every"])
    await asyncio.sleep(2.5 if hits[request.url.path] % every == 0 else 0.05)
    return await answer(request, count=False)


async def answer(request: Request, count: bool = True) -> Response:
    if count:
        hits[request.url.path] += 1
    body = await _body(request)
    images, last = 0, ""
    for message in body["messages"]:
        content = message.get("content")
        parts = content if isinstance(content, list) else [{"type": "text", "text": content or ""}]
        images += sum(1 for p in parts if p.get("type") == "image_url")
        if message["role"] == "user":
            last = " ".join(p.get("text", "") for p in parts if p.get("type") == "text")
    name = request.path_params["name"]
    if body.get("stream"):
        text = f"{name} saw {images} image(s): {last}"

        async def events() -> AsyncIterator[str]:
            yield _chunk(text)
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")
    reply = {
        "id": "chatcmpl-answer",
        "object": "chat.completion",
        "created": 0,
        "model": name,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": f"{name} saw {images} image(s): {last}",
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60},
    }
    return JSONResponse(reply)


WORDS = 20


async def stream(request: Request) -> Response:
    """Twenty words, 50 ms apart, then the usage chunk and [DONE]."""
    hits[request.url.path] += 1
    body = await _body(request)
    name = request.path_params["name"]
    if not body.get("stream"):
        return await answer(request, count=False)

    async def events() -> AsyncIterator[str]:
        for i in range(WORDS):
            yield _chunk(f"w{i} ")
            await asyncio.sleep(0.05)
        usage = {"prompt_tokens": 50, "completion_tokens": WORDS, "total_tokens": 50 + WORDS}
        final = {
            "id": "chatcmpl-s",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": name,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
        yield f"data: {json.dumps(final)}\n\n"
        yield f"data: {json.dumps({**final, 'choices': [], 'usage': usage})}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


async def trickle(request: Request) -> Response:
    """A provider that never stops sending: one byte of whitespace every 0.2 s."""
    hits[request.url.path] += 1
    await _body(request)

    async def dribble() -> AsyncIterator[bytes]:
        for _ in range(10_000):
            yield b" "
            await asyncio.sleep(0.2)

    return StreamingResponse(dribble(), media_type="application/json")


async def transcribe(request: Request) -> Response:
    hits[request.url.path] += 1
    await request.body()
    return JSONResponse({"text": "what is this"})


app = Starlette(
    routes=[
        Route("/transcribe/v1/audio/transcriptions", transcribe, methods=["POST"]),
        Route("/status/{code:int}/v1/chat/completions", status, methods=["POST"]),
        Route("/hang/v1/chat/completions", hang, methods=["POST"]),
        Route("/midstream/v1/chat/completions", midstream, methods=["POST"]),
        Route("/answer/{name}/v1/chat/completions", answer, methods=["POST"]),
        Route("/tail/{every:int}/{name}/v1/chat/completions", tail, methods=["POST"]),
        Route("/stream/{name}/v1/chat/completions", stream, methods=["POST"]),
        Route("/trickle/v1/chat/completions", trickle, methods=["POST"]),
    ]
)


@contextmanager
def fake_upstream() -> Iterator[str]:
    with serve(app) as url:
        yield url


@contextmanager
def serve(asgi: Any) -> Iterator[str]:
    """Serve an ASGI app on a free loopback port in a thread of this process (lifespan run)."""
    port = free_port()
    config = uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="critical")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120  # an app's lifespan may load models first
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)

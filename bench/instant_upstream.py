"""An OpenAI-compatible upstream that answers at once, in a process of its own.

The baseline of the overhead benchmarks: what a client sees calling it directly is the cost of
the client, the loopback and this server; what a proxy in front of it adds is the proxy's own
time. ``POST /v1/chat/completions`` answers a short reply (``stream: true``: three content
chunks, the finish chunk, a usage chunk and ``[DONE]``), ``GET /v1/models`` lists its model.
It runs on uvloop and httptools when present, so it is never the slowest part.

    .venv/bin/python bench/instant_upstream.py --port 9100
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.gateway.local_servers import free_port
from tests.processes import stop, wait_http

MODEL = "instant"
USAGE = {"prompt_tokens": 20, "completion_tokens": 3, "total_tokens": 23}


def _chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
    chunk = {"id": "chatcmpl-instant", "object": "chat.completion.chunk", "created": 0,
             "model": MODEL, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


async def _events() -> AsyncIterator[bytes]:
    yield _chunk({"role": "assistant", "content": "Blue"})
    yield _chunk({"content": " is"})
    yield _chunk({"content": " calm."})
    yield _chunk({}, "stop")
    usage = {"id": "chatcmpl-instant", "object": "chat.completion.chunk", "created": 0,
             "model": MODEL, "choices": [], "usage": USAGE}  # fmt: skip
    yield b"data: " + json.dumps(usage).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


async def completions(request: Request) -> Response:
    body = await request.json()
    if body.get("stream"):
        return StreamingResponse(_events(), media_type="text/event-stream")
    return JSONResponse({
        "id": "chatcmpl-instant", "object": "chat.completion", "created": 0, "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Blue is calm."},
                     "finish_reason": "stop"}],
        "usage": USAGE,
    })  # fmt: skip


async def models(request: Request) -> Response:
    return JSONResponse({"object": "list", "data": [{"id": MODEL, "object": "model"}]})


app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"]),
                        Route("/v1/models", models)])  # fmt: skip


@contextlib.contextmanager
def instant_upstream() -> Iterator[str]:
    """The upstream in its own process; yields its API root (``http://127.0.0.1:P/v1``)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--port", str(port)])
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/models", process)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

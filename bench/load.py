"""Backpressure under a burst: 500 concurrent calls against a slow provider.

Starts a fake OpenAI-compatible provider that takes ``--upstream-ms`` per answer (in this
process) and ``switchboard serve`` in front of it, with the provider's row limited to
``--model-concurrency`` calls at once. Fires ``--calls`` requests at once, each with a distinct
prompt of ``--prompt-chars`` characters cut from the shared routing data (``bench/prompts.py``), and prints the statuses, latency percentiles per status, the provider's peak
concurrency, and Switchboard's peak memory (VmHWM of its process). What a user should see: the
calls the provider can take in time are answered, the rest get a quick 503 with Retry-After
(never a pile-up that times everyone out), and memory stays flat.

    .venv/bin/python bench/load.py [--calls 500] [--upstream-ms 500] [--model-concurrency 32]
        [--prompt-chars 400]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.gateway.local_servers import free_port
from bench.prompts import read_prompts, windows
from tests.processes import stop, switchboard_process, wait_http

state = {"running": 0, "peak": 0}


def slow_provider(delay_s: float) -> Starlette:
    """The provider; ``GET /stats`` says how many calls it had at once at most."""

    async def answer(request: Request) -> JSONResponse:
        await request.json()
        state["running"] += 1
        state["peak"] = max(state["peak"], state["running"])
        try:
            await asyncio.sleep(delay_s)
        finally:
            state["running"] -= 1
        return JSONResponse({
            "id": "x", "object": "chat.completion", "created": 0, "model": "slow",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22},
        })  # fmt: skip

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(state)

    return Starlette(routes=[Route("/v1/chat/completions", answer, methods=["POST"]),
                             Route("/stats", stats)])  # fmt: skip


@contextlib.contextmanager
def provider_process(delay_s: float) -> Iterator[str]:
    """The provider in a process of its own, so the load generator's GIL does not slow it."""
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--provider", str(port),
                                "--upstream-ms", str(delay_s * 1000)])  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/stats", process)
        yield url
    finally:
        stop(process)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


async def burst(url: str, prompts: list[str]) -> list[tuple[int, float, str]]:
    calls = len(prompts)
    limits = httpx.Limits(max_connections=calls, max_keepalive_connections=calls)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def one(i: int) -> tuple[int, float, str]:
            body = {"model": "auto", "max_tokens": 8,
                    "messages": [{"role": "user", "content": prompts[i]}]}  # fmt: skip
            started = time.perf_counter()
            try:
                reply = await client.post(f"{url}/v1/chat/completions", json=body)
            except httpx.HTTPError as exc:
                return 0, time.perf_counter() - started, type(exc).__name__
            code = ""
            if reply.status_code >= 400:
                error = json.loads(reply.content).get("error", {})
                code = f"{error.get('code') or ''} ({error.get('type')})"
            return reply.status_code, time.perf_counter() - started, code

        return await asyncio.gather(*(one(i) for i in range(calls)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--upstream-ms", type=float, default=500)
    parser.add_argument("--model-concurrency", type=int, default=32)
    parser.add_argument("--queue-timeout-s", type=float, default=2.0)
    parser.add_argument("--prompt-chars", type=int, default=400)
    parser.add_argument("--embedding-queue-timeout-s", type=float, default=None,
                        help="SWITCHBOARD_EMBEDDING_QUEUE_TIMEOUT_S (default: the service's)")  # fmt: skip
    parser.add_argument("--provider", type=int, help=argparse.SUPPRESS)  # run as the provider
    args = parser.parse_args()
    if args.provider:
        app = slow_provider(args.upstream_ms / 1000)
        uvicorn.run(app, host="127.0.0.1", port=args.provider, log_level="warning")
        return
    texts = windows(read_prompts(), args.prompt_chars)
    warm, prompts = [next(texts) for _ in range(20)], [next(texts) for _ in range(args.calls)]
    with tempfile.TemporaryDirectory() as tmp, provider_process(args.upstream_ms / 1000) as up:
        catalog = {"models": [{
            "id": "hosted/slow", "adapter": "openai_compat", "base_url": f"{up}/v1",
            "price": {"input_per_mtok": 1, "output_per_mtok": 2}, "context_window": 8192,
            "max_concurrency": args.model_concurrency, "queue_timeout_s": args.queue_timeout_s,
            "profile": {"prior_quality": 0.5},
        }]}  # fmt: skip
        path = Path(tmp) / "catalog.yaml"
        path.write_text(yaml.safe_dump(catalog))
        env = {"SWITCHBOARD_CATALOG": str(path), "SWITCHBOARD_TRANSCRIPTION": "off",
               "SWITCHBOARD_LOG_LEVEL": "WARNING"}  # fmt: skip
        if args.embedding_queue_timeout_s is not None:
            env["SWITCHBOARD_EMBEDDING_QUEUE_TIMEOUT_S"] = str(args.embedding_queue_timeout_s)
        with switchboard_process(env, Path(tmp) / "sb.log") as (board, process):
            asyncio.run(burst(board, warm))  # warm the encoder and the pools
            base_rss = peak_rss_mb(process.pid)
            started = time.perf_counter()
            results = asyncio.run(burst(board, prompts))
            wall = time.perf_counter() - started
            rss = peak_rss_mb(process.pid)
            peak = httpx.get(f"{up}/stats").json()["peak"]
    by_status: dict[str, list[float]] = collections.defaultdict(list)
    for status, seconds, code in results:
        by_status[f"{status} {code}".strip()].append(seconds)
    print(f"{args.calls} concurrent calls of {args.prompt_chars} characters, provider {args.upstream_ms:g} ms per answer, "
          f"{args.model_concurrency} at once for the model, queue wait up to "
          f"{args.queue_timeout_s:g} s; wall {wall:.1f} s\n")  # fmt: skip
    print("| status | calls | p50 ms | p90 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|")
    for status, seconds in sorted(by_status.items()):
        print(f"| {status} | {len(seconds)} | {pct(seconds, 0.5):.0f} | {pct(seconds, 0.9):.0f} "
              f"| {pct(seconds, 0.99):.0f} | {max(seconds) * 1000:.0f} |")  # fmt: skip
    print(f"\nprovider peak concurrency: {peak} (limit {args.model_concurrency})")
    print(f"Switchboard peak RSS: {base_rss:.0f} MB after warm-up, {rss:.0f} MB after the burst")


if __name__ == "__main__":
    main()

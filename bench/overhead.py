"""What Switchboard adds on top of calling the same llama.cpp server directly.

Starts the real llama.cpp server (the bundled default, Qwen2.5-Coder-0.5B-Instruct) and Switchboard under uvicorn with a catalog
pointing at that server, then in one run measures, direct vs. through Switchboard:
non-streaming latency and streaming time-to-first-token at concurrency 1 (paired: each prompt
direct, then through Switchboard, so llama.cpp's own variance cancels) and 16, requests per
second for the dry-run ``/v1/route``, and Switchboard's self-reported time (the
``x-switchboard-overhead-ms`` header: everything but waiting on the model); then the same
paired concurrency-1 measures for the Responses API (``/v1/responses``) and Anthropic's
Messages API (``/v1/messages``), each against the direct Chat Completions call, so the added
time of every API comes from one run. Prints a table.

    .venv/bin/python bench/overhead.py [--requests 40]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.processes import llama_server, switchboard

BODY = {
    "messages": [{"role": "user", "content": "Name a colour."}],
    "max_tokens": 4,
    "temperature": 0,
}


def _chat(model: str, stream: bool, text: str) -> dict[str, object]:
    return {**BODY, "model": model, "stream": stream,
            "messages": [{"role": "user", "content": text}]}  # fmt: skip


def _responses(model: str, stream: bool, text: str) -> dict[str, object]:
    return {"model": model, "input": text, "max_output_tokens": 4, "temperature": 0,
            "stream": stream}  # fmt: skip


def _messages(model: str, stream: bool, text: str) -> dict[str, object]:
    return {"model": model, "max_tokens": 4, "temperature": 0, "stream": stream,
            "messages": [{"role": "user", "content": text}]}  # fmt: skip


APIS = {
    # name: (path, body, what marks a streamed event that carries text)
    "chat": ("/v1/chat/completions", _chat, '"content"'),
    "responses": ("/v1/responses", _responses, "response.output_text.delta"),
    "messages": ("/v1/messages", _messages, '"text_delta"'),
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def one(
    client: httpx.AsyncClient, url: str, model: str, stream: bool, n: str, api: str = "chat"
) -> tuple[float, float]:
    """Seconds to the full reply (or first token), and Switchboard's own reported overhead."""
    _, build, marker = APIS[api]
    body = build(model, stream, f"Name a colour. ({n})")
    started = time.perf_counter()
    if not stream:
        reply = await client.post(url, json=body)
        reply.raise_for_status()
        return time.perf_counter() - started, float(
            reply.headers.get("x-switchboard-overhead-ms", 0)
        )
    first: float | None = None
    async with client.stream("POST", url, json=body) as reply:
        reply.raise_for_status()
        overhead = float(reply.headers.get("x-switchboard-overhead-ms", 0))
        # Read to the end: a stream dropped at its first token goes on generating in llama.cpp,
        # on both cores, while the next request is being measured.
        async for line in reply.aiter_lines():
            if first is None and line.startswith("data: {") and marker in line:
                first = time.perf_counter() - started
    return (first if first is not None else time.perf_counter() - started), overhead


async def paired(
    direct: str, board: str, stream: bool, total: int, api: str = "chat"
) -> tuple[list[float], list[float], list[float]]:
    """Concurrency 1: the same prompt direct (Chat Completions), then through Switchboard's
    ``api``, alternating."""
    d, s, own = [], [], []
    async with httpx.AsyncClient(timeout=120) as client:
        for i in range(total):
            # Distinct prompts per pass: a repeated one would hit the embedding cache and
            # understate Switchboard's own time (the streaming pass used to reuse them).
            # And not the same prompt on both sides: llama.cpp reuses the KV cache of the longest
            # prefix it has just evaluated, so the second of two identical prompts skips its
            # prompt evaluation (that made Switchboard look faster than the direct call).
            n = f"{api[0]}{'s' if stream else 'c'}{i}"
            plain, _ = await one(
                client, direct + "/chat/completions", "qwen2.5-coder-0.5b-instruct", stream, n + "d"
            )
            d.append(plain)
            t, o = await one(client, board + APIS[api][0], "auto", stream, n + "s", api)
            s.append(t)
            own.append(o / 1000)
    return d, s, own


async def concurrent(
    url: str, model: str, stream: bool, concurrency: int, total: int, tag: str, api: str = "chat"
) -> tuple[list[float], list[float]]:
    timings: list[float] = []
    own: list[float] = []
    counter = iter(range(total))
    async with httpx.AsyncClient(timeout=120) as client:

        async def worker() -> None:
            for n in counter:
                t, o = await one(client, url, model, stream, f"{tag}{n:04d}", api)
                timings.append(t)
                own.append(o / 1000)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return timings, own


async def route_rps(url: str, seconds: float = 5.0, concurrency: int = 16) -> float:
    done = 0
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(timeout=30) as client:

        async def worker(w: int) -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                text = f"question {w}-{done}: how far away is the moon?"
                body = {"model": "auto", "messages": [{"role": "user", "content": text}]}
                (await client.post(url, json=body)).raise_for_status()
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return done / (time.perf_counter() - started)


def ms(values: list[float], q: float = 0.5) -> float:
    return pct(values, q) * 1000


async def measure(direct: str, board: str, requests: int) -> list[str]:
    rows = []
    for stream in (False, True):
        what = "time to first token" if stream else "latency"
        await concurrent(board + "/v1/chat/completions", "auto", stream, 1, 3, "warm")
        d, s, own = await paired(direct, board, stream, requests)
        added = [b - a for a, b in zip(d, s, strict=True)]
        rows.append(f"| {what}, concurrency 1 | {ms(d):.1f} | {ms(s):.1f} | **{ms(added):+.1f}** | "
                    f"{ms(added, 0.99):+.1f} | {ms(own):.1f} / {ms(own, 0.99):.1f} |")  # fmt: skip
        tag = "S" if stream else "C"
        d, _ = await concurrent(
            direct + "/chat/completions",
            "qwen2.5-coder-0.5b-instruct",
            stream,
            16,
            requests * 2,
            "d" + tag,
        )
        s, own = await concurrent(
            board + "/v1/chat/completions", "auto", stream, 16, requests * 2, "b" + tag
        )
        rows.append(f"| {what}, concurrency 16 | {ms(d):.1f} | {ms(s):.1f} | {ms(s) - ms(d):+.1f} | "
                    f"{ms(s, 0.99) - ms(d, 0.99):+.1f} | {ms(own):.1f} / {ms(own, 0.99):.1f} |")  # fmt: skip
    for api in ("responses", "messages"):
        for stream in (False, True):
            what = "time to first token" if stream else "latency"
            await concurrent(board + APIS[api][0], "auto", stream, 1, 3, "warm" + api, api)
            d, s, own = await paired(direct, board, stream, requests, api)
            added = [b - a for a, b in zip(d, s, strict=True)]
            rows.append(f"| {what}, concurrency 1, `{APIS[api][0]}` | {ms(d):.1f} | {ms(s):.1f} | "
                        f"**{ms(added):+.1f}** | {ms(added, 0.99):+.1f} | "
                        f"{ms(own):.1f} / {ms(own, 0.99):.1f} |")  # fmt: skip
    rps = await route_rps(board + "/v1/route")
    rows.append(
        f"| `/v1/route` (dry run, embedding + selection), concurrency 16 | - | {rps:.0f} req/s | - | - | - |"
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, llama_server() as direct:
        catalog = {"models": [{
            "id": "local/qwen", "adapter": "openai_compat", "base_url": direct,
            "upstream_model": "qwen2.5-coder-0.5b-instruct", "price": {"input_per_mtok": 0, "output_per_mtok": 0},
            "context_window": 2048, "local": True, "profile": {"prior_quality": 0.5},
        }]}  # fmt: skip
        path = Path(tmp) / "catalog.yaml"
        path.write_text(yaml.safe_dump(catalog))
        with switchboard({"SWITCHBOARD_CATALOG": str(path)}, Path(tmp) / "sb.log") as board:
            rows = asyncio.run(measure(direct, board, args.requests))
    print("| measure | direct p50 ms | via Switchboard p50 ms | added p50 ms | added p99 ms "
          "| Switchboard's own time p50 / p99 ms |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

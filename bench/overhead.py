"""What Switchboard adds on top of calling the same llama.cpp server directly.

Starts the real llama.cpp server (Gemma 3 270M) and Switchboard under uvicorn with a catalog
pointing at that server, then in one run measures, direct vs. through Switchboard:
non-streaming latency and streaming time-to-first-token at concurrency 1 and 16, and
requests per second for the dry-run ``/v1/route``. Prints a Markdown table.

    .venv/bin/python bench/overhead.py [--requests 40]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
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


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def one(client: httpx.AsyncClient, url: str, model: str, stream: bool, n: int) -> float:
    body = {**BODY, "model": model, "stream": stream,
            "messages": [{"role": "user", "content": f"Name a colour. ({n})"}]}  # fmt: skip
    started = time.perf_counter()
    if not stream:
        (await client.post(url, json=body)).raise_for_status()
        return time.perf_counter() - started
    async with client.stream("POST", url, json=body) as reply:
        reply.raise_for_status()
        async for line in reply.aiter_lines():
            if line.startswith("data: {") and '"content"' in line:
                return time.perf_counter() - started
    return time.perf_counter() - started


async def phase(url: str, model: str, stream: bool, concurrency: int, total: int) -> list[float]:
    timings: list[float] = []
    counter = iter(range(total))
    async with httpx.AsyncClient(timeout=120) as client:

        async def worker() -> None:
            for n in counter:
                timings.append(await one(client, url, model, stream, n))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return timings


async def route_rps(url: str, seconds: float = 5.0, concurrency: int = 16) -> float:
    done = 0
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(timeout=30) as client:

        async def worker(w: int) -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                body = {
                    "model": "auto",
                    "messages": [
                        {"role": "user", "content": f"question {w}-{done}: how far is the moon?"}
                    ],
                }
                (await client.post(url, json=body)).raise_for_status()
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return done / (time.perf_counter() - started)


async def measure(direct: str, board: str, requests: int) -> list[tuple[str, str]]:
    rows = []
    for stream in (False, True):
        for concurrency in (1, 16):
            total = requests if concurrency == 1 else requests * 2
            await phase(board + "/v1/chat/completions", "auto", stream, 1, 3)  # warm up
            d = await phase(
                direct + "/chat/completions", "gemma-3-270m", stream, concurrency, total
            )
            s = await phase(board + "/v1/chat/completions", "auto", stream, concurrency, total)
            what = "time to first token" if stream else "latency"
            rows.append((
                f"{what}, concurrency {concurrency}",
                f"{statistics.median(d) * 1000:.1f} | {statistics.median(s) * 1000:.1f} | "
                f"**{(statistics.median(s) - statistics.median(d)) * 1000:+.1f}** | "
                f"{(pct(s, 0.99) - pct(d, 0.99)) * 1000:+.1f}",
            ))  # fmt: skip
    rps = await route_rps(board + "/v1/route")
    rows.append(("`/v1/route` dry-run, concurrency 16", f"- | {rps:.0f} req/s | - | -"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, llama_server() as direct:
        catalog = {"models": [{
            "id": "local/gemma", "adapter": "openai_compat", "base_url": direct,
            "upstream_model": "gemma-3-270m", "price": {"input_per_mtok": 0, "output_per_mtok": 0},
            "context_window": 2048, "local": True, "profile": {"prior_quality": 0.5},
        }]}  # fmt: skip
        path = Path(tmp) / "catalog.yaml"
        path.write_text(yaml.safe_dump(catalog))
        with switchboard({"SWITCHBOARD_CATALOG": str(path)}, Path(tmp) / "sb.log") as board:
            rows = asyncio.run(measure(direct, board, args.requests))
    print("| measure | direct p50 ms | via Switchboard p50 ms | added p50 ms | added p99 ms |")
    print("|---|---|---|---|---|")
    for name, cells in rows:
        print(f"| {name} | {cells} |")


if __name__ == "__main__":
    main()

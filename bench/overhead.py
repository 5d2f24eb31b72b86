"""What Switchboard adds to a call, beside a plain LiteLLM proxy, in one run.

An instant OpenAI-compatible upstream runs in its own process (``bench/instant_upstream.py``),
so what a proxy adds is the proxy's own time, not a model's variance. In front of it:
Switchboard with ``model: "auto"`` over a routed catalog (``bench/routed_service.py``: learned
profiles, the turn classifier, the decision log; one worker unless ``--workers``), and, when
installed, a plain LiteLLM proxy (no routing) with one worker. Every request carries a prompt
of its own (``bench/prompts.py``: 50, 400 and 2,000 characters cut from the shared routing
data), so no cache answers a repeat.

Measured, per prompt length, plain and streamed (time to the first byte of the body):

- concurrency 1: each prompt is sent direct, then through Switchboard, then through LiteLLM;
  the added latency is the difference per prompt (p50 and p99 of the differences);
- concurrency 16: each target on its own, 16 calls at a time; added = its p50 (p99) minus the
  direct p50 (p99);
- ``POST /v1/route`` (the decision without the call): p50 / p99 at concurrency 1, and
  decisions per second at concurrency 16;
- the other APIs, when this Switchboard has them (``/v1/responses``, ``/v1/messages``; one
  that answers 404 is skipped), at 400 characters, against the direct chat call.

    .venv/bin/python bench/overhead.py [--requests 300] [--workers 1]

LiteLLM goes in an environment of its own (its pins are not Switchboard's); CI does not need it:

    python3.11 -m venv /tmp/litellm && /tmp/litellm/bin/pip install 'litellm[proxy]'
    .venv/bin/python bench/overhead.py --litellm /tmp/litellm/bin/litellm

The machine's other load inflates every figure: the load average is printed with the table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.gateway.local_servers import free_port
from bench.instant_upstream import instant_upstream
from bench.prompts import PromptPool
from bench.routed_service import routed_service
from tests.processes import stop, wait_http
from tests.redis_server import redis_server

LENGTHS = (50, 400, 2000)
ERRORS: dict[str, int] = {}
"""Non-2xx replies per URL (left out of the timings; printed with the tables)."""
MAX_TOKENS = 16
LITELLM = Path("/tmp/litellm/bin/litellm")
LITELLM_KEY = "sk-bench-" + "0" * 32
"""The proxy's master key (recent LiteLLM refuses to start without one); checked per call."""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


@dataclass
class Target:
    """An OpenAI-compatible chat endpoint and the model name it is called with."""

    name: str
    url: str
    model: str
    key: str | None = None
    client: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        headers = {"authorization": f"Bearer {self.key}"} if self.key else None
        self.client = httpx.AsyncClient(timeout=60, limits=limits, headers=headers)


def chat(prompt: str, model: str, stream: bool) -> dict[str, object]:
    return {"model": model, "max_tokens": MAX_TOKENS, "stream": stream,
            "messages": [{"role": "user", "content": prompt}]}  # fmt: skip


def other_api(path: str, prompt: str, stream: bool) -> dict[str, object]:
    if path == "/v1/responses":
        return {"model": "auto", "input": prompt, "max_output_tokens": MAX_TOKENS,
                "stream": stream}  # fmt: skip
    return {"model": "auto", "max_tokens": MAX_TOKENS, "stream": stream,
            "messages": [{"role": "user", "content": prompt}]}  # fmt: skip


async def timed(client: httpx.AsyncClient, url: str, body: dict[str, object]) -> float:
    """Seconds to the whole reply, or for a stream to the first byte of its body (read to the
    end all the same, so the connection is reused)."""
    started = time.perf_counter()
    if not body.get("stream"):
        reply = await client.post(url, json=body)
        _check(reply)
        return time.perf_counter() - started
    first: float | None = None
    async with client.stream("POST", url, json=body) as reply:
        _check(reply)
        async for _ in reply.aiter_raw():
            first = first or time.perf_counter() - started
    return first or time.perf_counter() - started


def _check(reply: httpx.Response) -> None:
    if reply.status_code >= 300:
        key = f"{reply.status_code} from {reply.url}"
        ERRORS[key] = ERRORS.get(key, 0) + 1


Call = Callable[[str, bool], tuple[str, dict[str, object]]]
"""(prompt, stream) -> (url, body) of one request to a target."""


def chat_call(target: Target) -> Call:
    return lambda prompt, stream: (f"{target.url}/chat/completions",
                                   chat(prompt, target.model, stream))  # fmt: skip


async def paired(
    targets: list[Target], pool: PromptPool, length: int, stream: bool, total: int
) -> dict[str, list[float]]:
    """Concurrency 1: each prompt through every target in turn; seconds per target."""
    times: dict[str, list[float]] = {t.name: [] for t in targets}
    for _ in range(total):
        prompt = pool.take(length)
        for target in targets:
            url, body = chat_call(target)(prompt, stream)
            times[target.name].append(await timed(target.client, url, body))
    return times


async def concurrent(
    client: httpx.AsyncClient, call: Call, prompts: list[str], stream: bool, concurrency: int
) -> list[float]:
    times: list[float] = []
    todo = iter(prompts)

    async def worker() -> None:
        for prompt in todo:
            url, body = call(prompt, stream)
            times.append(await timed(client, url, body))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return times


async def decisions_per_s(
    client: httpx.AsyncClient, url: str, pool: PromptPool, length: int, seconds: float = 5.0
) -> float:
    """``/v1/route`` at concurrency 16 for ``seconds``, every decision on a new prompt."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            body = {"model": "auto", "messages": [{"role": "user", "content": pool.take(length)}]}
            _check(await client.post(f"{url}/v1/route", json=body))
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(16)))
    return done / (time.perf_counter() - started)


@dataclass
class Results:
    rows: list[str] = field(default_factory=list)
    route: list[str] = field(default_factory=list)
    apis: list[str] = field(default_factory=list)


def _added(proxy: list[float], direct: list[float], q: float) -> float:
    return pct([p - d for p, d in zip(proxy, direct, strict=True)], q)


async def measure_chat(
    direct: Target, proxies: list[Target], pool: PromptPool, total: int, out: Results
) -> None:
    for length in LENGTHS:
        for stream in (False, True):
            c1 = await paired([direct, *proxies], pool, length, stream, total)
            cells = []
            for proxy in proxies:
                cells += [_added(c1[proxy.name], c1[direct.name], 0.5),
                          _added(c1[proxy.name], c1[direct.name], 0.99)]  # fmt: skip
            prompts = [pool.take(length) for _ in range(total * 2)]  # each proxy sees each once
            base = await concurrent(direct.client, chat_call(direct), prompts, stream, 16)
            c16 = []
            for proxy in proxies:
                timings = await concurrent(proxy.client, chat_call(proxy), prompts, stream, 16)
                c16 += [pct(timings, 0.5) - pct(base, 0.5), pct(timings, 0.99) - pct(base, 0.99)]
            what = "streamed, first byte" if stream else "plain"
            row = [f"{length:,} chars, {what}", f"{pct(c1[direct.name], 0.5):.1f}"]
            for i, _ in enumerate(proxies):
                row += [f"{cells[2 * i]:.1f} / {cells[2 * i + 1]:.1f}",
                        f"{c16[2 * i]:.1f} / {c16[2 * i + 1]:.1f}"]  # fmt: skip
            out.rows.append("| " + " | ".join(row) + " |")


async def measure_route(board: Target, pool: PromptPool, total: int, out: Results) -> None:
    for length in LENGTHS:
        times = []
        for _ in range(total):
            body = {"model": "auto", "messages": [{"role": "user", "content": pool.take(length)}]}
            times.append(await timed(board.client, f"{board.url}/v1/route", body))
        rate = await decisions_per_s(board.client, board.url, pool, length)
        out.route.append(f"| {length:,} chars | {pct(times, 0.5):.1f} | {pct(times, 0.99):.1f} "
                         f"| {rate:.0f} |")  # fmt: skip


async def has_api(board: Target, path: str) -> bool:
    reply = await board.client.post(f"{board.url}{path}", json={})
    return reply.status_code != 404


async def measure_apis(
    direct: Target, board: Target, pool: PromptPool, total: int, out: Results
) -> None:
    for path in ("/v1/chat/completions", "/v1/responses", "/v1/messages"):
        if not await has_api(board, path):
            out.apis.append(f"| `{path}` | not in this Switchboard | - | - | - |")
            continue

        def call(prompt: str, stream: bool, path: str = path) -> tuple[str, dict[str, object]]:
            return f"{board.url}{path}", other_api(path, prompt, stream)

        cells = []
        for stream in (False, True):
            d1, s1 = [], []
            for _ in range(total):
                prompt = pool.take(400)
                d1.append(await timed(direct.client, *chat_call(direct)(prompt, stream)))
                s1.append(await timed(board.client, *call(prompt, stream)))
            prompts = [pool.take(400) for _ in range(total * 2)]
            base = await concurrent(direct.client, chat_call(direct), prompts, stream, 16)
            timings = await concurrent(board.client, call, prompts, stream, 16)
            cells += [f"{_added(s1, d1, 0.5):.1f} / {_added(s1, d1, 0.99):.1f}",
                      f"{pct(timings, 0.5) - pct(base, 0.5):.1f} / "
                      f"{pct(timings, 0.99) - pct(base, 0.99):.1f}"]  # fmt: skip
        out.apis.append(f"| `{path}` | " + " | ".join(cells) + " |")


@contextlib.contextmanager
def litellm_proxy(binary: Path, upstream: str, tmp: Path) -> Iterator[str]:
    """A plain LiteLLM proxy (one worker, no database) in front of the upstream."""
    config = {"model_list": [{"model_name": "instant", "litellm_params": {
        "model": "openai/instant", "api_base": upstream, "api_key": "none"}}],
        "litellm_settings": {"telemetry": False}}  # fmt: skip
    (tmp / "litellm.yaml").write_text(yaml.safe_dump(config))
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
           "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False",
           "LITELLM_MASTER_KEY": LITELLM_KEY}  # fmt: skip
    with (tmp / "litellm.log").open("wb") as log:
        process = subprocess.Popen([str(binary), "--config", str(tmp / "litellm.yaml"),
                                    "--host", "127.0.0.1", "--port", str(port),
                                    "--num_workers", "1"], stdout=log, stderr=subprocess.STDOUT,
                                   env=env)  # fmt: skip
        try:
            wait_http(f"http://127.0.0.1:{port}/health/liveliness", process, timeout=180)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            stop(process)


async def run(
    upstream: str, board_url: str, litellm: str | None, args: argparse.Namespace
) -> Results:
    pool = PromptPool()
    direct = Target("direct", upstream, "instant")
    board = Target("Switchboard", f"{board_url}/v1", "auto")
    proxies = [board] + ([Target("LiteLLM", litellm, "instant", LITELLM_KEY)] if litellm else [])
    for target in [direct, *proxies]:  # warm the connections, the encoder and the caches
        await concurrent(target.client, chat_call(target), [pool.take(400) for _ in range(40)],
                         False, 4)  # fmt: skip
    out = Results()
    await measure_chat(direct, proxies, pool, args.requests, out)
    await measure_route(Target("Switchboard", board_url, "auto"), pool, args.requests, out)
    await measure_apis(direct, Target("Switchboard", board_url, "auto"), pool,
                       args.requests // 2, out)  # fmt: skip
    for target in [direct, *proxies]:
        await target.client.aclose()
    print(
        f"(prompts used: {pool.given:,}, every one distinct; non-2xx replies: {ERRORS or 'none'})"
    )
    return out


def report(out: Results, litellm: bool, workers: int, load: tuple[float, float]) -> str:
    head = "| prompt, reply | direct p50 ms | Switchboard added p50 / p99 ms, c=1 | c=16 |"
    rule = "|---|---|---|---|"
    if litellm:
        head += " LiteLLM added p50 / p99 ms, c=1 | c=16 |"
        rule += "---|---|"
    lines = [f"Switchboard: {workers} worker(s); LiteLLM: 1 worker. Load average "
             f"{load[0]:.2f} at the start, {load[1]:.2f} at the end ({os.cpu_count()} cores).",
             "", head, rule, *out.rows, "",
             "| `/v1/route`, distinct prompts | p50 ms, c=1 | p99 ms, c=1 | decisions/s, c=16 |",
             "|---|---|---|---|", *out.route, "",
             "| API (400 chars, `model: auto`), added vs direct chat | plain p50 / p99 ms, c=1 "
             "| plain, c=16 | streamed first byte, c=1 | streamed, c=16 |",
             "|---|---|---|---|---|", *out.apis]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="calls per measurement")
    parser.add_argument("--workers", type=int, default=1, help="Switchboard workers (Redis if >1)")
    parser.add_argument("--backend", default="auto", choices=["auto", "static", "onnx", "onnx-int8"],
                        help="embedding backend (auto: the service's default, fp32)")  # fmt: skip
    parser.add_argument("--litellm", type=Path, default=LITELLM if LITELLM.exists() else None,
                        help="the `litellm` command of a separate environment (see above)")  # fmt: skip
    parser.add_argument("--no-litellm", dest="litellm", action="store_const", const=None)
    args = parser.parse_args()
    start_load = os.getloadavg()[0]
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        upstream = stack.enter_context(instant_upstream())
        env = {}
        if args.workers > 1:
            env["SWITCHBOARD_REDIS_URL"] = stack.enter_context(redis_server()).url
        board, _ = stack.enter_context(
            routed_service(upstream, tmp, env, args.workers, args.backend)
        )
        litellm = None
        if args.litellm:
            litellm = stack.enter_context(litellm_proxy(args.litellm, upstream, tmp))
        out = asyncio.run(run(upstream, board, litellm, args))
    print(f"embedding backend: {args.backend}")
    print(report(out, litellm is not None, args.workers, (start_load, os.getloadavg()[0])))


if __name__ == "__main__":
    main()

"""Where a routed request's time goes, stage by stage: py-spy on the running service under load.

Starts the instant upstream (``bench/instant_upstream.py``) and ``switchboard serve`` over the
bench catalog (``bench/routed_service.py``), then for each load (distinct prompts of 50, 400
and 2,000 characters one at a time, and 400 characters 16 at a time) sends
``POST /v1/chat/completions`` with ``model: "auto"`` while py-spy samples every thread of the
service at 1 kHz. Each sample is put in the stage of the innermost frame that names one (store calls count in
the stage that makes them)
(``STAGES``; the encoder's thread hop counts as embedding, FastAPI running sync dependencies
in a thread pool as a stage of its own). Each thread's CPU time (from ``/proc``) is shared out over the stages its samples
fell in; threads py-spy cannot see are onnxruntime's and the tokenizer's own native threads,
and count as embedding. Prints CPU milliseconds per request by stage, and the median latency.

    .venv/bin/python bench/profile_stages.py [--requests 300]

Needs ``py-spy`` (``pip install py-spy``; it reads the service's memory, as root or with
``ptrace`` allowed). CPU time is inflated when other processes share the cores: say the load.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.instant_upstream import instant_upstream
from bench.prompts import PromptPool
from bench.routed_service import routed_service

ROOT = Path(__file__).resolve().parents[1]
Rule = Callable[[str, str], bool]
"""(function, file) of one frame -> whether it belongs to the stage."""
CONVERSATION_MEMORY = {"remember", "_recall", "fingerprint", "_conversational", "_history"}
LIBS = str(Path(sys.prefix).resolve())


def _repo(*prefixes: str) -> Rule:
    paths = tuple(str(ROOT / p) for p in prefixes)
    return lambda function, file: file.startswith(paths)


def _lib(*packages: str) -> Rule:
    """Files of these installed packages (``name`` or ``name/module.py``)."""
    needles = [f"/site-packages/{p}" + ("" if p.endswith(".py") else "/") for p in packages]
    return lambda function, file: file.startswith(LIBS) and any(n in file for n in needles)


def _std(*modules: str) -> Rule:
    return lambda function, file: "/site-packages/" not in file and file.endswith(modules)


def _conversation(memory: bool) -> Rule:
    path = str(ROOT / "app/pipeline/conversation.py")
    return lambda function, file: file == path and (function in CONVERSATION_MEMORY) == memory


STAGES: list[tuple[str, Rule]] = [
    ("embedding", _repo("app/embedding/")),
    ("embedding", _lib("onnxruntime", "tokenizers")),
    ("embedding", _std("/concurrent/futures/thread.py", "/concurrent/futures/_base.py")),
    ("dependencies run in threads", _lib("anyio/to_thread.py", "starlette/concurrency.py")),
    ("turn classification", _repo("app/selection/turns.py")),
    ("turn classification", _conversation(memory=False)),
    ("conversation memory", _conversation(memory=True)),
    ("parse & validation", _repo("app/schemas.py", "app/json_body.py")),
    (
        "parse & validation",
        lambda function, file: (
            _repo("app/limits.py")(function, file) and not function.startswith("LimitsScope")
        ),
    ),  # the middleware is under every frame
    ("parse & validation", _lib("fastapi/dependencies")),
    ("auth", _repo("app/pipeline/access.py", "routers/deps.py")),
    ("accounting", _repo("app/pipeline/accounting.py", "app/pipeline/ledger.py", "app/metrics.py")),
    ("accounting", _lib("prometheus_client")),
    ("decision log", _repo("app/pipeline/decision_log.py")),
    ("selection", _repo("app/selection/", "app/pipeline/decisions.py")),
    ("upstream call", _repo("adapters/", "app/gateway/")),
    ("upstream call", _lib("httpx", "httpcore", "h11")),
    ("response shaping", _repo("routers/", "app/pipeline/streaming.py")),
    ("response shaping", _lib("starlette/responses.py", "orjson")),
    ("tracing", _repo("app/telemetry.py")),
    ("tracing", _lib("opentelemetry")),
    ("pipeline glue", _repo("app/pipeline/completions.py")),
    ("serving stack (HTTP, ASGI, event loop)", _lib("uvicorn", "uvloop", "httptools")),
]
IDLE = {
    ("_worker", "concurrent/futures/thread.py"),
    ("Condition.wait", "threading.py"),
    ("Event.wait", "threading.py"),
    ("Queue.get", "queue.py"),
    ("Runner.run", "runners.py"),
}
"""Leaf frames of a thread that waits: for work, for a lock, or in the event loop's poll
(uvloop's loop is C code below ``Runner.run``). py-spy's own idle detection does not see
these as idle here, so they are dropped before each thread's CPU time is shared out."""
SERVING = "serving stack (HTTP, ASGI, event loop)"
NATIVE = "embedding (native threads)"


def idle(stack: str) -> bool:
    function, _, where = stack.rpartition(";")[2].partition(" (")
    file = where.rpartition(":")[0]
    return any(function == name and file.endswith("/" + path) for name, path in IDLE)


def stage_of(stack: str) -> str:
    """The stage of one collapsed py-spy stack (root first, frames ``func (file:line)``)."""
    for frame in reversed(stack.split(";")):
        function, _, where = frame.partition(" (")
        file = where.rpartition(":")[0]
        for stage, rule in STAGES:
            if rule(function, file):
                return stage
    return SERVING


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds per thread of ``pid`` (user + system)."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick
    return found


def attribute(raw: Path, cpu: dict[int, float]) -> dict[str, float]:
    """CPU seconds per stage: each thread's CPU over its samples' stages (see the docstring)."""
    samples: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or not stack.startswith("thread ("):
            continue  # py-spy's own remarks
        thread, _, frames = stack.partition(";")
        tid = int(thread.split("(")[1].split(")")[0])
        if not idle(frames):
            samples[tid][stage_of(frames)] += int(count)
    stages: collections.Counter[str] = collections.Counter()
    for tid, seconds in cpu.items():
        seen = samples.get(tid)
        if not seen:  # onnxruntime's and the tokenizer's threads (or a Python one that waits)
            stages[NATIVE] += seconds
            continue
        total = sum(seen.values())
        for stage, count in seen.items():
            stages[stage] += seconds * count / total
    return dict(stages)


async def drive(
    url: str, pool: PromptPool, length: int, concurrency: int, total: int
) -> list[float]:
    """``total`` routed chat calls, ``concurrency`` at a time; their latencies in seconds."""
    timings: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        remaining = iter(range(total))

        async def worker() -> None:
            for _ in remaining:
                body = {"model": "auto", "max_tokens": 16,
                        "messages": [{"role": "user", "content": pool.take(length)}]}  # fmt: skip
                started = time.perf_counter()
                reply = await client.post(f"{url}/v1/chat/completions", json=body)
                reply.raise_for_status()
                timings.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return timings


def profiled(
    url: str, pid: int, pool: PromptPool, length: int, concurrency: int, total: int, out: Path
) -> tuple[dict[str, float], float]:
    """Stage CPU seconds for one load, and its median latency."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    before = thread_cpu(pid)
    recorder = subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "1000",
                                 "--threads", "--nonblocking", "--full-filenames", "--format", "raw", "--output",
                                 str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(1.0)  # py-spy attaches
    timings = asyncio.run(drive(url, pool, length, concurrency, total))
    after = thread_cpu(pid)
    recorder.send_signal(signal.SIGINT)
    recorder.wait(timeout=60)
    cpu = {tid: seconds - before.get(tid, 0.0) for tid, seconds in after.items()}
    return attribute(out, cpu), sorted(timings)[len(timings) // 2]


def table(loads: list[tuple[str, int, int]], results: list[tuple[dict[str, float], float]],
          total: int) -> str:  # fmt: skip
    names = [stage for stage, _ in STAGES]
    order = list(dict.fromkeys([*names[:1], NATIVE, *names[1:], SERVING]))
    lines = ["| stage, CPU ms per request | " + " | ".join(name for name, _, _ in loads) + " |",
             "|---|" + "---|" * len(loads)]  # fmt: skip
    for stage in order:
        cells = [f"{stages.get(stage, 0.0) * 1000 / total:.2f}" for stages, _ in results]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    sums = [f"**{sum(stages.values()) * 1000 / total:.2f}**" for stages, _ in results]
    lines.append("| **all stages (process CPU)** | " + " | ".join(sums) + " |")
    p50 = [f"{median * 1000:.1f}" for _, median in results]
    lines.append("| latency p50 ms (instant upstream) | " + " | ".join(p50) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per load")
    parser.add_argument("--keep", type=Path, help="keep py-spy's raw stacks in this directory")
    args = parser.parse_args()
    loads = [("50 chars, c=1", 50, 1), ("400 chars, c=1", 400, 1),
             ("2,000 chars, c=1", 2000, 1), ("400 chars, c=16", 400, 16)]  # fmt: skip
    pool = PromptPool()
    with (
        tempfile.TemporaryDirectory() as tmp,
        instant_upstream() as upstream,
        routed_service(upstream, Path(tmp)) as (url, process),
    ):
        asyncio.run(drive(url, pool, 400, 4, 40))  # warm the encoder, pools and caches
        out = args.keep or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        results = [profiled(url, process.pid, pool, length, concurrency, args.requests,
                            out / f"spy-{length}-c{concurrency}.txt")
                   for _, length, concurrency in loads]  # fmt: skip
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})\n")
    print(table(loads, results, args.requests))


if __name__ == "__main__":
    main()

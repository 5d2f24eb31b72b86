"""Wall time of ``switchboard predict`` on 10,000 prompts, as a user runs it (the CLI process).

Profiles are built from ``--profiles-data`` with ``switchboard profiles build``; the prompts are
the first ``--count`` distinct prompts of ``--prompts`` files (by default both shared train files
and the labelled glasses turns, so short and long prompts mix). Each backend builds its own
profiles (profile and query embeddings must match); fp32 is the default, int8 the opt-in.

    .venv/bin/python bench/predict_speed.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "routing"
TURNS = ROOT / "data" / "glasses_turns.jsonl"


def distinct_prompts(paths: list[Path], count: int) -> list[str]:
    seen: dict[str, None] = {}
    for path in paths:
        for line in path.read_text(encoding="utf-8").split("\n"):
            if line.strip():
                record = json.loads(line)
                seen.setdefault(str(record.get("prompt") or record.get("text")), None)
    prompts = list(seen)[:count]
    if len(prompts) < count:
        raise SystemExit(f"only {len(prompts)} distinct prompts in {paths}")
    return prompts


def run(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "app.cli", *args], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles-data", type=Path, default=DATA / "routerbench_train.jsonl")
    parser.add_argument("--prompts", type=Path, action="append")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--backends", nargs="+", default=["static", "onnx", "onnx-int8"])
    args = parser.parse_args()
    sources = args.prompts or [DATA / "routerdc7_train.jsonl", DATA / "routerbench_train.jsonl",
                               TURNS]  # fmt: skip
    prompts = distinct_prompts(sources, args.count)
    print(f"{len(prompts)} distinct prompts; profiles from {args.profiles_data.name}\n")
    print(
        "| embedding backend | profiles build (s; embeddings cached on disk after a first run) "
        "| predict, wall (s) | prompts/s |"
    )
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "prompts.jsonl"
        source.write_text("".join(json.dumps({"id": i, "prompt": p}) + "\n"
                                  for i, p in enumerate(prompts)), encoding="utf-8")  # fmt: skip
        for backend in args.backends:
            env = {**os.environ, "SWITCHBOARD_EMBEDDING_BACKEND": backend, "HF_HUB_OFFLINE": "1"}
            profiles = Path(tmp) / f"profiles-{backend}"
            build = run(["profiles", "build", "--data", str(args.profiles_data),
                         "--out", str(profiles)], env)  # fmt: skip
            out = Path(tmp) / f"out-{backend}.jsonl"
            wall = run(["predict", "--profiles", str(profiles), "--input", str(source),
                        "--output", str(out)], env)  # fmt: skip
            lines = out.read_text(encoding="utf-8").count("\n")
            assert lines == len(prompts), (lines, len(prompts))
            print(f"| {backend} | {build:.1f} | {wall:.1f} | {len(prompts) / wall:.0f} |")


if __name__ == "__main__":
    main()

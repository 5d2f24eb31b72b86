"""Bootstrap the bundled catalog's local (llama.cpp) models on a stratified slice of the default
suite, and print the summary and the wall time: the figures of docs/bootstrap.md.

The catalog rows are the bundled ones, with a longer ``timeout_s`` (``--timeout-s``): on a
machine busy with other work a 640-token answer can take a small model over the bundled 60 s.

    .venv/bin/python bench/bootstrap_local.py [--limit 16] [--out /tmp/local-bootstrap]
        [--also local/smollm2-135m]     # rows of bench/local_models.yaml to profile beside them
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import yaml

from app.catalog import BUNDLED_CATALOG

CANDIDATES = Path(__file__).resolve().parent / "local_models.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path("/tmp/local-bootstrap"))
    parser.add_argument("--timeout-s", type=float, default=600)
    parser.add_argument("--also", action="append", default=[], metavar="ID")
    args = parser.parse_args()
    bundled = yaml.safe_load(BUNDLED_CATALOG.read_text(encoding="utf-8"))
    local = [m for m in bundled["models"] if m.get("launch")]
    candidates = yaml.safe_load(CANDIDATES.read_text(encoding="utf-8"))["models"]
    local += [m for m in candidates if m["id"] in args.also]
    for row in local:
        row["timeout_s"] = args.timeout_s
    args.out.mkdir(parents=True, exist_ok=True)
    catalog = args.out / "catalog.yaml"
    catalog.write_text(yaml.safe_dump({"models": local}), encoding="utf-8")
    started = time.perf_counter()
    command = [sys.executable, "-m", "app.cli", "profiles", "bootstrap", "--out", str(args.out),
               "--catalog", str(catalog), "--limit", str(args.limit), "--yes"]  # fmt: skip
    done = subprocess.run(command, check=False)
    print(f"\nwall time {time.perf_counter() - started:.0f} s for {[m['id'] for m in local]}")
    raise SystemExit(done.returncode)


if __name__ == "__main__":
    main()

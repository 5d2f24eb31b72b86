"""The Switchboard the speed benchmarks measure: a routed catalog in front of one upstream.

Three catalog rows (a strong, a middle and a cheap model at list prices) all point at the same
upstream, with learned profiles built from the shared RouterBench train split
(``switchboard profiles build``, so routing does its real work: the neighbour search over
2,205 labelled prompts and 11 models). ``model: "auto"`` then embeds, classifies the turn,
ranks the three and calls the chosen one.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.prompts import SHARED
from tests.processes import CACHE, switchboard_process

ROWS = (  # catalog id, model in the labelled data, USD per million tokens in / out
    ("bench/strong", "gpt-4-1106-preview", 10.0, 30.0),
    ("bench/middle", "gpt-3.5-turbo-1106", 1.0, 2.0),
    ("bench/cheap", "mistralai/mixtral-8x7b-chat", 0.6, 0.6),
)


def write_catalog(upstream: str, path: Path) -> Path:
    models = [
        {"id": model_id, "adapter": "openai_compat", "base_url": upstream,
         "upstream_model": "instant", "profile_id": data_name, "context_window": 32000,
         "price": {"input_per_mtok": price_in, "output_per_mtok": price_out}}
        for model_id, data_name, price_in, price_out in ROWS
    ]  # fmt: skip
    path.write_text(yaml.safe_dump({"models": models}))
    return path


def build_profiles(out: Path, backend: str = "auto") -> Path:
    """Learned profiles of the RouterBench train split (embeddings cached after the first run)."""
    env = {**os.environ, "SWITCHBOARD_CACHE_DIR": str(CACHE), "HF_HUB_OFFLINE": "1",
           "SWITCHBOARD_EMBEDDING_BACKEND": backend}  # fmt: skip
    data = SHARED / "routerbench_train.jsonl"
    subprocess.run([sys.executable, "-m", "app.cli", "profiles", "build", "--data", str(data),
                    "--out", str(out)], check=True, env=env, stdout=subprocess.DEVNULL)  # fmt: skip
    return out


@contextlib.contextmanager
def routed_service(
    upstream: str,
    tmp: Path,
    env: dict[str, str] | None = None,
    workers: int = 1,
    backend: str = "auto",
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``switchboard serve --workers N`` over the bench catalog, every worker up; yields its
    URL and process. More than one worker needs ``SWITCHBOARD_REDIS_URL`` in ``env``;
    ``backend`` is the embedding backend profiles are built with (the service follows them)."""
    settings = {
        "SWITCHBOARD_CATALOG": str(write_catalog(upstream, tmp / "catalog.yaml")),
        "SWITCHBOARD_PROFILES": str(build_profiles(tmp / "profiles", backend)),
        "SWITCHBOARD_TRANSCRIPTION": "off",
        "SWITCHBOARD_LOG_LEVEL": "INFO",  # says when each worker is up
        "SWITCHBOARD_ACCESS_LOG": "false",
        **(env or {}),
    }
    log = tmp / "switchboard.log"
    args = ["--workers", str(workers)] if workers != 1 else []  # versions before it lack the flag
    with switchboard_process(settings, log, args) as running:
        deadline = time.monotonic() + 300
        while workers > 1 and log.read_text().count("Application startup complete") < workers:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{workers} workers not up: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield running

"""Running ``switchboard profiles bootstrap`` as a user does (a real process), and reading its output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.processes import CACHE

REPO = Path(__file__).resolve().parents[2]
CALIBRATION = Path(
    os.environ.get("SWITCHBOARD_CALIBRATION") or REPO / ".." / "shared" / "data" / "calibration"
)
"""The shared calibration files, read in place beside the repository (SWITCHBOARD_CALIBRATION
points elsewhere, e.g. from a worktree)."""


def env() -> dict[str, str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SWITCHBOARD_") and not k.endswith("_API_KEY")
    }
    clean.update({"SWITCHBOARD_CACHE_DIR": str(CACHE), "HF_HUB_OFFLINE": "1",
                  "SWITCHBOARD_BACKOFF_BASE_S": "0.01"})  # fmt: skip
    return clean


def command(out: Path, catalog: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", "profiles", "bootstrap", "--out", str(out),
            "--catalog", str(catalog), *args]  # fmt: skip


def bootstrap(
    out: Path, catalog: Path, *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(out, catalog, *args), capture_output=True, text=True,
                          timeout=timeout, env=env(), stdin=subprocess.DEVNULL, cwd=REPO,
                          check=False)  # fmt: skip


def write_catalog(path: Path, rows: list[dict[str, object]]) -> Path:
    """A catalog of OpenAI-compatible rows: each needs id, base_url and price (in, out)."""
    models = []
    for row in rows:
        price_in, price_out = row.get("price", (0.0, 0.0))  # type: ignore[misc]
        models.append({"id": row["id"], "adapter": "openai_compat", "base_url": row["base_url"],
                       "price": {"input_per_mtok": price_in, "output_per_mtok": price_out},
                       "context_window": 16000, "timeout_s": 20})  # fmt: skip
    path.write_text(yaml.safe_dump({"models": models}))
    return path


def labelled(out: Path) -> list[dict[str, object]]:
    lines = (out / "labelled.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def stored(out: Path) -> list[dict[str, object]]:
    path = out / "answers.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

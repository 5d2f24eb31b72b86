"""Hostile requests are fast 4xx answers under a memory limit, and the process survives them.

``tests/bounded_app.py`` runs the real app in a subprocess whose address space is capped at what
it uses after start-up plus ``HEADROOM_MB``, and sends a 20 MB single message and 600k messages
(to ``/v1/route`` and ``/v1/chat/completions``), a WAV declaring a prime sample rate and a
40-megapixel PNG (to ``/noa``). Each must be refused with the status and field a client can act
on; before the bounds, the message alone took 36 s of CPU and gigabytes of memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HEADROOM_MB = 600
EXPECTED = {
    "20 MB message, /v1/route": (413, "messages"),
    "20 MB message, chat": (413, "messages"),
    "600k messages, /v1/route": (400, "messages"),
    "600k messages, chat": (400, "messages"),
    "prime-rate WAV, /noa": (400, "audio"),
    "40-megapixel PNG, /noa": (400, "image"),
}


def test_hostile_requests_get_4xx_within_the_memory_limit(tmp_path: Path) -> None:
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "HF_HUB_OFFLINE": "1"}
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "tests.bounded_app", str(tmp_path), str(HEADROOM_MB)],
        cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr[-3000:])
    results = {r["name"]: (r["status"], r["param"]) for r in lines if "name" in r}
    assert results == EXPECTED
    summary = lines[-1]
    print(f"\npeak RSS {summary['peak_rss_mb']} MB under an address-space limit of "
          f"{summary['limit_mb']} MB")  # fmt: skip

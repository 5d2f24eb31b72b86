"""Anchor prompts per kind of request, where declared per-kind scores are placed.

A declared profile may give a model's quality per kind of request (``DeclaredProfile.kinds``:
knowledge, maths, reasoning, reading, code, translation, assistant), taken from published
results. Those scores need places in embedding space: the prompts of the bundled default suite
(``app/data/suite/default.jsonl``, the same prompts ``switchboard profiles bootstrap`` grades),
grouped by their ``kind``. Their embeddings are computed once per encoder and cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from app.embedding.encoder import Encoder, Vectors

log = logging.getLogger(__name__)

DEFAULT_SUITE = Path(__file__).resolve().parent.parent / "data" / "suite" / "default.jsonl"


def suite_prompts(path: Path = DEFAULT_SUITE) -> dict[str, list[str]]:
    """kind -> prompts of that kind in a suite file (empty when there is none)."""
    kinds: dict[str, list[str]] = {}
    if not path.is_file():
        return kinds
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        item = json.loads(line)
        kind, prompt = item.get("kind"), item.get("prompt")
        if isinstance(kind, str) and isinstance(prompt, str):
            kinds.setdefault(kind, []).append(prompt)
    return kinds


def load_anchors(
    encoder: Encoder, cache_dir: Path, path: Path = DEFAULT_SUITE
) -> dict[str, Vectors]:
    """kind -> (n, dim) embeddings of its anchor prompts, from the cache when it has them."""
    kinds = suite_prompts(path)
    if not kinds:
        return {}
    digest = hashlib.sha256(
        json.dumps([encoder.model_id, kinds], sort_keys=True).encode()
    ).hexdigest()[:16]
    cached = cache_dir / "anchors" / f"{digest}.npz"
    if cached.is_file():
        with np.load(cached) as stored:
            return {kind: np.asarray(stored[kind], dtype=np.float32) for kind in kinds}
    anchors = {kind: encoder.encode(prompts) for kind, prompts in kinds.items()}
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cached, **anchors)  # type: ignore[arg-type]
    except OSError as exc:  # a read-only cache only costs the next start-up the embedding
        log.warning("anchor embeddings not cached: %s", exc)
    return anchors

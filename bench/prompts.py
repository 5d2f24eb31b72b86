"""Distinct prompts of a given length, cut from the shared routing data, for the speed benchmarks.

A benchmark that sends one prompt again and again measures the embedding cache, not the
router. ``PromptPool`` hands out every text at most once per run: windows of exactly
``length`` characters of the labelled prompts (``../shared/data/routing/*.jsonl`` by default),
each starting at the beginning of a prompt (then of one of its lines), with the following
prompts appended when one is too short. No two texts of a run begin alike, whatever the
length, so neither the embedding cache nor a shared beginning makes a request cheaper.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

SHARED = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "routing"
)  # beside the repository
DISTINCT_PREFIX = 40
DEFAULT_FILES = (SHARED / "routerbench_train.jsonl", SHARED / "routerdc7_train.jsonl")


def read_prompts(files: tuple[Path, ...] = DEFAULT_FILES) -> list[str]:
    prompts: list[str] = []
    for path in files:
        with path.open(encoding="utf-8") as lines:
            prompts += [json.loads(line)["prompt"] for line in lines if line.strip()]
    return prompts


def windows(prompts: list[str], length: int) -> Iterator[str]:
    """Texts of exactly ``length`` characters: from each prompt's start first, then from each
    line's; none begins like another (their first ``DISTINCT_PREFIX`` characters differ)."""
    corpus = "\n\n".join(prompts)
    starts, at = [], 0
    for prompt in prompts:
        starts.append(at)
        at += len(prompt) + 2
    starts += [m.end() for m in re.finditer(r"\n+", corpus)]
    seen: set[str] = set()
    for start in starts:
        text = corpus[start : start + length]
        key = text[:DISTINCT_PREFIX]
        if len(text) < length or not text[:1].strip() or key in seen:
            continue
        seen.add(key)
        yield text


class PromptPool:
    """Each text once: ``take(length)`` never returns the same text twice in a run."""

    def __init__(self, files: tuple[Path, ...] = DEFAULT_FILES) -> None:
        self._prompts = read_prompts(files)
        self._iters: dict[int, Iterator[str]] = {}
        self.given = 0

    def take(self, length: int) -> str:
        source = self._iters.setdefault(length, windows(self._prompts, length))
        try:
            text = next(source)
        except StopIteration:
            raise RuntimeError(f"ran out of distinct {length}-character prompts") from None
        self.given += 1
        return text

"""Labelled routing data in the shared JSON Lines format, as matrices.

One line per prompt: ``{"id", "prompt", "scores": {model: 0..1}, "cost": {model: usd|null}}``
(``task`` and other fields are ignored: real traffic has no task label). Several files combine
into one table over the union of their models, NaN where a model has no score or cost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from app.errors import ConfigError


@dataclass
class Labelled:
    ids: list[str]
    prompts: list[str]
    models: list[str]
    scores: NDArray[np.float64]  # (n, M), NaN = not labelled
    costs: NDArray[np.float64]  # (n, M), NaN = unknown
    tasks: list[str]  # for reports only, never a routing feature

    def subset(self, rows: NDArray[np.int64]) -> Labelled:
        return Labelled(
            [self.ids[i] for i in rows],
            [self.prompts[i] for i in rows],
            self.models,
            self.scores[rows],
            self.costs[rows],
            [self.tasks[i] for i in rows],
        )

    @property
    def has_costs(self) -> bool:
        return bool(np.isfinite(self.costs).any())


def _number(value: object) -> float:
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else np.nan
    )


def read_labelled(paths: list[Path]) -> Labelled:
    """Read one or more labelled files; bad lines raise ``ConfigError`` naming file and line."""
    records: list[dict[str, object]] = []
    models: dict[str, None] = {}
    for path in paths:
        try:
            # split on "\n" only: JSON strings may hold U+2028 and other characters that
            # str.splitlines() would treat as line breaks
            lines = path.read_text(encoding="utf-8").split("\n")
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                assert isinstance(record, dict) and isinstance(record["prompt"], str)
                assert isinstance(record.get("scores"), dict)
            except (ValueError, KeyError, AssertionError) as exc:
                raise ConfigError(
                    f"{path}:{number}: not a labelled record (needs prompt, scores)"
                ) from exc
            models.update(dict.fromkeys(record["scores"]))
            records.append(record)
    names = list(models)
    scores = np.full((len(records), len(names)), np.nan)
    costs = np.full((len(records), len(names)), np.nan)
    column = {m: j for j, m in enumerate(names)}
    for i, record in enumerate(records):
        for model, value in dict(record["scores"]).items():  # type: ignore[call-overload]
            scores[i, column[model]] = _number(value)
        for model, value in dict(record.get("cost") or {}).items():  # type: ignore[call-overload]
            if model in column:
                costs[i, column[model]] = _number(value)
    return Labelled(
        ids=[str(r.get("id", i)) for i, r in enumerate(records)],
        prompts=[str(r["prompt"]) for r in records],
        models=names,
        scores=scores,
        costs=costs,
        tasks=[str(r.get("task", "")) for r in records],
    )

"""Batch prediction: ``switchboard predict`` over a JSON Lines file of prompts.

Prompts are embedded in chunks of ``CHUNK``, one prompt per encoder run with the runs side by
side, one per core: on 2 cores MiniLM is fastest that way (no padding, activations stay in
cache; ``bench/embedding_speed.py``, ``bench/predict_speed.py``). The choice is
``app.selection.utility.choose_batch`` under the default preset, the same rule the service applies.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from app.catalog import ModelEntry, load_catalog
from app.embedding.encoder import Encoder, count_tokens
from app.errors import ConfigError
from app.offline.progress import progress
from app.selection.estimator import Estimator, Prediction
from app.selection.profiles import LearnedProfiles
from app.selection.utility import DEFAULT_PRESET, PRESETS, choose_batch

CHUNK = 1024
OUTPUT_TOKENS = 300
"""Assumed answer length when pricing a model without cost data from catalog prices."""


def read_prompts(path: Path) -> tuple[list[object], list[str]]:
    ids: list[object] = []
    prompts: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            prompts.append(str(record["prompt"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}:{number}: needs a JSON object with a prompt") from exc
        ids.append(record.get("id", number))
    return ids, prompts


def catalog_prices(models: list[str]) -> dict[str, ModelEntry]:
    """Bundled-catalog entries for ``models``, matched by catalog id or by profile id."""
    entries: dict[str, ModelEntry] = {}
    for entry in load_catalog().models:
        entries[entry.id] = entry
        entries.setdefault(entry.data_name, entry)
    return {m: entries[m] for m in models if m in entries}


def priced_costs(
    prediction: Prediction, tokens: NDArray[np.float64], prices: dict[str, ModelEntry]
) -> NDArray[np.float64]:
    """Unknown costs filled from catalog prices x tokens (``OUTPUT_TOKENS`` out), else 0."""
    cost = prediction.cost.copy()
    for j, model in enumerate(prediction.models):
        missing = ~np.isfinite(cost[:, j])
        entry = prices.get(model)
        if entry is None:
            cost[missing, j] = 0.0
        else:
            cost[missing, j] = [entry.cost_usd(float(t), OUTPUT_TOKENS) for t in tokens[missing]]
    return cost


def predict_batches(
    profiles: LearnedProfiles, encoder: Encoder, prompts: list[str]
) -> Iterator[tuple[int, Prediction, NDArray[np.float64]]]:
    """Predictions (with every cost filled in) for consecutive chunks of ``prompts``."""
    estimator = Estimator(profiles, {}, {m: m for m in profiles.models}, encoder)
    prices = catalog_prices(estimator.models)
    with progress(len(prompts), "predicting", "prompt") as bar:
        for start in range(0, len(prompts), CHUNK):
            chunk = prompts[start : start + CHUNK]
            tokens = np.array([count_tokens(p) for p in chunk], dtype=np.float64)
            prediction = estimator.predict(encoder.encode(chunk), tokens)
            bar.update(len(chunk))
            yield start, prediction, priced_costs(prediction, tokens, prices)


def predict_file(profiles: LearnedProfiles, encoder: Encoder, source: Path, target: Path) -> int:
    """Write one prediction line per input line, in order; returns the count."""
    ids, prompts = read_prompts(source)
    weight = PRESETS[DEFAULT_PRESET]
    with target.open("w", encoding="utf-8") as out:
        for start, prediction, cost in predict_batches(profiles, encoder, prompts):
            eligible = np.ones_like(prediction.quality, dtype=bool)
            picks = choose_batch(prediction.quality, cost, weight, eligible)
            for row, pick in enumerate(picks):
                candidates = {
                    model: {"quality": round(float(prediction.quality[row, j]), 6),
                            "cost": float(cost[row, j])}
                    for j, model in enumerate(prediction.models)
                }  # fmt: skip
                line = {
                    "id": ids[start + row],
                    "choice": prediction.models[pick],
                    "candidates": candidates,
                }
                out.write(json.dumps(line) + "\n")
    return len(prompts)

"""Batch prediction: ``switchboard predict`` over a JSON Lines file of prompts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from app.catalog import ModelEntry, load_catalog
from app.choice import DEFAULT_PRESET, PRESETS, choose_batch
from app.embedding import Encoder, count_tokens
from app.errors import ConfigError
from app.estimator import Estimator, Prediction
from app.profiles import LearnedProfiles

BATCH = 512
OUTPUT_TOKENS = 300


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


def priced_costs(prediction: Prediction, tokens: np.ndarray) -> np.ndarray:
    """Fill unknown costs from the bundled catalog's prices (by id or profile id), else 0."""
    cost = prediction.cost.copy()
    entries: dict[str, ModelEntry] = {}
    for entry in load_catalog().models:
        entries[entry.id] = entry
        entries.setdefault(entry.data_name, entry)
    for j, model in enumerate(prediction.models):
        missing = ~np.isfinite(cost[:, j])
        priced = entries.get(model)
        if priced is None:
            cost[missing, j] = 0.0
        else:
            cost[missing, j] = [priced.cost_usd(t, OUTPUT_TOKENS) for t in tokens[missing]]
    return cost


def predict_batches(
    profiles: LearnedProfiles, encoder: Encoder, prompts: list[str]
) -> Iterator[tuple[int, Prediction, np.ndarray]]:
    estimator = Estimator(profiles, {}, {m: m for m in profiles.models}, None)
    for start in tqdm(range(0, len(prompts), BATCH), desc="predicting", unit="batch"):
        chunk = prompts[start : start + BATCH]
        tokens = np.array([count_tokens(p) for p in chunk], dtype=np.float64)
        prediction = estimator.predict(encoder.encode(chunk, batch_size=64), tokens)
        yield start, prediction, priced_costs(prediction, tokens)


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

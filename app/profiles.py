"""Capability profiles: learned ones (built from labelled prompts) and declared ones.

A learned profile directory holds ``manifest.json`` (format version, embedding model id, model
names, per-model priors) and ``.npy`` arrays: prompt embeddings, per-model scores and costs
(NaN where a model has no label / no cost), prompt token counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from app.errors import ConfigError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARRAYS = ("embeddings", "scores", "costs", "tokens")


class DeclaredProfile(BaseModel):
    """A hand-written profile for a model with no labelled data yet."""

    model_config = ConfigDict(extra="forbid")

    prior_quality: float = Field(ge=0, le=1)
    description: str | None = None
    good_at: list[str] = Field(default_factory=list)
    bad_at: list[str] = Field(default_factory=list)


@dataclass
class LearnedProfiles:
    models: list[str]
    embedding_model: str
    embeddings: NDArray[np.float32]
    scores: NDArray[np.float32]
    costs: NDArray[np.float32]
    tokens: NDArray[np.float32]

    @property
    def priors(self) -> NDArray[np.float64]:
        return shrunk_means(np.asarray(self.scores))


PRIOR_STRENGTH = 10.0
"""Pseudo-count pulling a model's overall level toward the all-model mean: a model with a handful
of labels must not get an overall level of 1.0 from two lucky answers."""


def shrunk_means(
    values: NDArray[np.float32], strength: float = PRIOR_STRENGTH
) -> NDArray[np.float64]:
    """Per-column means of ``values`` (NaN = missing), shrunk toward the overall mean."""
    data = values.astype(np.float64)
    known = np.isfinite(data)
    if not known.any():
        return np.full(data.shape[1], np.nan)
    overall = float(data[known].mean())
    total = np.where(known, data, 0.0).sum(axis=0)
    means: NDArray[np.float64] = (total + strength * overall) / (known.sum(axis=0) + strength)
    return means


def save_profiles(profiles: LearnedProfiles, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in ARRAYS:
        np.save(out / f"{name}.npy", getattr(profiles, name))
    manifest = {
        "format_version": FORMAT_VERSION,
        "embedding_model": profiles.embedding_model,
        "models": profiles.models,
        "prompts": int(profiles.embeddings.shape[0]),
        "priors": dict(zip(profiles.models, map(float, profiles.priors), strict=True)),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))


def load_profiles(path: Path) -> LearnedProfiles:
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        raise ConfigError(f"{path} is not a profiles directory (no {MANIFEST})")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ConfigError(
            f"profiles at {path} have format {manifest.get('format_version')}, "
            f"this Switchboard reads {FORMAT_VERSION}: rebuild with `switchboard profiles build`"
        )
    arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
    return LearnedProfiles(
        models=list(manifest["models"]), embedding_model=manifest["embedding_model"], **arrays
    )

"""Capability profiles: learned ones (built from labelled prompts) and declared ones.

A learned profile directory (written by ``switchboard profiles build``) holds ``manifest.json``
(``format_version``, embedding model id and dimension, model names, per-model priors, prompt
count) and ``.npy`` arrays, loaded memory-mapped so start-up stays well under a second:

- ``embeddings`` (n, dim) float32, L2-normalised prompt embeddings
- ``scores`` (n, M) float32 in [0, 1], NaN where a model has no label for the prompt
- ``costs`` (n, M) float32 USD per call, NaN where absent
- ``tokens`` (n,) float32 approximate prompt token counts
- ``ivf_*`` the neighbour index's lists, only for sets too large for exact search

Several labelled files combine over the union of their models (NaN where a file lacks a model);
rows with the same prompt text merge into one (mean of the known labels). Declared profiles come
from the catalog, for models without labelled data yet.

Public API: ``build_profiles``, ``save_profiles``, ``load_profiles``, ``LearnedProfiles``,
``DeclaredProfile``, ``shrunk_means``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from app.errors import ConfigError
from app.selection.labelled import Labelled
from app.selection.neighbours import NeighbourIndex

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARRAYS = ("embeddings", "scores", "costs", "tokens")
IVF_ARRAYS = {"centroids": "ivf_centroids", "offsets": "ivf_offsets"}  # index part -> file stem
PRIOR_STRENGTH = 10.0
"""Pseudo-count pulling a model's overall level toward the all-model mean: a model with a handful
of labels must not get an overall level of 1.0 from two lucky answers."""


class DeclaredProfile(BaseModel):
    """A hand-written profile for a catalog model with no labelled data yet."""

    model_config = ConfigDict(extra="forbid")

    prior_quality: float = Field(ge=0, le=1)
    description: str | None = None
    good_at: list[str] = Field(default_factory=list)
    bad_at: list[str] = Field(default_factory=list)
    kinds: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=dict,
        description="quality per kind of prompt (knowledge, maths, reasoning, reading, code, "
        "translation, assistant), from published per-task results",
    )


@dataclass
class LearnedProfiles:
    """Labelled prompts as arrays; ``index`` is the stored neighbour index, if any."""

    models: list[str]
    embedding_model: str
    embeddings: NDArray[np.float32]
    scores: NDArray[np.float32]
    costs: NDArray[np.float32]
    tokens: NDArray[np.float32]
    index: NeighbourIndex | None = field(default=None, repr=False)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    @property
    def priors(self) -> NDArray[np.float64]:
        return shrunk_means(np.asarray(self.scores))

    def indexed(self) -> LearnedProfiles:
        """These profiles with a neighbour index; for IVF, rows re-sorted into list order."""
        if self.index is not None and self.index.order is None:
            return self
        index = NeighbourIndex.build(np.asarray(self.embeddings))
        if index.order is None:
            return LearnedProfiles(self.models, self.embedding_model, self.embeddings,
                                   self.scores, self.costs, self.tokens, index)  # fmt: skip
        order, index.order = index.order, None
        return LearnedProfiles(
            self.models,
            self.embedding_model,
            index.vectors,
            np.asarray(self.scores)[order],
            np.asarray(self.costs)[order],
            np.asarray(self.tokens)[order],
            index,
        )


def shrunk_means(
    values: NDArray[np.floating], strength: float = PRIOR_STRENGTH
) -> NDArray[np.float64]:
    """Per-column means of ``values`` (NaN = missing), shrunk toward the overall mean."""
    data = np.asarray(values, dtype=np.float64)
    known = np.isfinite(data)
    if not known.any():
        return np.full(data.shape[1], np.nan)
    overall = float(data[known].mean())
    total = np.where(known, data, 0.0).sum(axis=0)
    means: NDArray[np.float64] = (total + strength * overall) / (known.sum(axis=0) + strength)
    return means


def _merge_duplicates(
    prompts: list[str], matrices: list[NDArray[np.float64]]
) -> tuple[NDArray[np.int64], list[NDArray[np.float64]]]:
    """First row of each distinct prompt, and each matrix with duplicates' known values averaged."""
    first: dict[str, int] = {}
    group = np.array([first.setdefault(p, len(first)) for p in prompts], dtype=np.int64)
    keep = np.unique(group, return_index=True)[1].astype(np.int64)
    if len(keep) == len(prompts):
        return keep, matrices
    merged = []
    for matrix in matrices:
        known = np.isfinite(matrix)
        sums = np.zeros((len(keep), matrix.shape[1]))
        counts = np.zeros_like(sums)
        np.add.at(sums, group, np.where(known, matrix, 0.0))
        np.add.at(counts, group, known)
        with np.errstate(invalid="ignore", divide="ignore"):
            merged.append(np.where(counts > 0, sums / counts, np.nan))
    return keep, merged


def build_profiles(
    data: Labelled, embeddings: NDArray[np.float32], model_id: str, tokens: NDArray[np.float32]
) -> LearnedProfiles:
    """Profiles from labelled rows and their embeddings (rows with equal prompts merged)."""
    keep, (scores, costs) = _merge_duplicates(data.prompts, [data.scores, data.costs])
    return LearnedProfiles(
        models=list(data.models),
        embedding_model=model_id,
        embeddings=np.ascontiguousarray(embeddings[keep], dtype=np.float32),
        scores=np.clip(scores, 0.0, 1.0).astype(np.float32),
        costs=costs.astype(np.float32),
        tokens=np.asarray(tokens, dtype=np.float32)[keep],
    ).indexed()


def save_profiles(profiles: LearnedProfiles, out: Path) -> None:
    """Write ``profiles`` to the directory ``out`` (created if needed)."""
    out.mkdir(parents=True, exist_ok=True)
    profiles = profiles.indexed()
    for name in ARRAYS:
        np.save(out / f"{name}.npy", np.asarray(getattr(profiles, name)))
    index = profiles.index
    assert index is not None
    for stale in IVF_ARRAYS.values():
        (out / f"{stale}.npy").unlink(missing_ok=True)
    for part, array in index.lists().items():
        np.save(out / f"{IVF_ARRAYS[part]}.npy", array)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a model without labels: prior NaN
        priors = [None if np.isnan(p) else round(float(p), 6) for p in profiles.priors]
    manifest = {
        "format_version": FORMAT_VERSION,
        "embedding_model": profiles.embedding_model,
        "dim": profiles.dim,
        "models": profiles.models,
        "prompts": int(profiles.embeddings.shape[0]),
        "priors": dict(zip(profiles.models, priors, strict=True)),
        "ivf": index.centroids is not None,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _array(path: Path, name: str) -> NDArray[np.float32]:
    try:
        array: NDArray[np.float32] = np.load(path / f"{name}.npy", mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"profiles at {path}: cannot read {name}.npy ({exc})") from exc
    return array


def load_profiles(path: Path) -> LearnedProfiles:
    """Load a profiles directory (memory-mapped); ``ConfigError`` says what is wrong with it."""
    manifest_path = path / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path} is not a profiles directory (no {MANIFEST}); "
            "build one with `switchboard profiles build`"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {manifest_path}: {exc}") from exc
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if version != FORMAT_VERSION:
        raise ConfigError(
            f"profiles at {path} have format_version {version!r}, this Switchboard reads "
            f"{FORMAT_VERSION}: rebuild them with `switchboard profiles build`"
        )
    arrays = {name: _array(path, name) for name in ARRAYS}
    models = [str(m) for m in manifest.get("models", [])]
    n, dim = arrays["embeddings"].shape
    shapes_ok = (
        arrays["scores"].shape == (n, len(models)) == arrays["costs"].shape
        and arrays["tokens"].shape == (n,)
        and dim == manifest.get("dim", dim)
    )
    if not shapes_ok:
        raise ConfigError(f"profiles at {path} are inconsistent (array shapes do not match)")
    index = None
    if manifest.get("ivf"):
        lists = {part: _array(path, stem) for part, stem in IVF_ARRAYS.items()}
        index = NeighbourIndex.from_lists(arrays["embeddings"], lists)
    return LearnedProfiles(
        models=models,
        embedding_model=str(manifest.get("embedding_model", "")),
        index=index,
        **arrays,
    )

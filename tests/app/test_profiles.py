"""Learned profiles: building from several files, the versioned format, fast loading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import app.selection.neighbours
from app.errors import ConfigError
from app.selection.estimator import Estimator
from app.selection.labelled import read_labelled
from app.selection.profiles import (
    FORMAT_VERSION,
    MANIFEST,
    build_profiles,
    load_profiles,
    save_profiles,
)


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def _unit(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_files_with_different_models_combine_and_equal_prompts_merge(tmp_path: Path) -> None:
    first = _write(tmp_path / "a.jsonl", [
        {"id": 1, "prompt": "p", "scores": {"a": 1.0, "b": 0.0}, "cost": {"a": 0.002, "b": None}},
        {"id": 2, "prompt": "q", "scores": {"a": 0.0, "b": 1.0}, "cost": {"a": 0.004}},
    ])  # fmt: skip
    second = _write(tmp_path / "b.jsonl", [
        {"id": 3, "prompt": "p", "scores": {"a": 0.0, "c": 1.0}},
    ])  # fmt: skip
    data = read_labelled([first, second])
    vectors = _unit(2)[[0, 1, 0]]  # equal prompts embed equally
    profiles = build_profiles(data, vectors, "enc", np.array([5, 6, 5], dtype=np.float32))
    assert profiles.models == ["a", "b", "c"]
    assert profiles.embeddings.shape == (2, 8)
    p, q = profiles.scores
    assert p.tolist() == [0.5, 0.0, 1.0]  # "a" labelled twice on "p": the mean
    assert q[0] == 0.0 and q[1] == 1.0 and np.isnan(q[2])  # "c" never saw "q"
    assert profiles.costs[0, 0] == pytest.approx(0.002) and np.isnan(profiles.costs[0, 1])


def test_round_trip_is_versioned_and_loads_fast(tmp_path: Path) -> None:
    data_rows = [{"id": i, "prompt": f"prompt {i}", "scores": {"a": float(i % 2), "b": 1.0}}
                 for i in range(50)]  # fmt: skip
    data = read_labelled([_write(tmp_path / "d.jsonl", data_rows)])
    profiles = build_profiles(data, _unit(50), "enc@1", np.ones(50, dtype=np.float32))
    save_profiles(profiles, tmp_path / "p")
    manifest = json.loads((tmp_path / "p" / MANIFEST).read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["embedding_model"] == "enc@1" and manifest["dim"] == 8
    assert manifest["models"] == ["a", "b"] and manifest["prompts"] == 50
    assert manifest["priors"]["b"] > manifest["priors"]["a"]
    loaded = load_profiles(tmp_path / "p")
    assert np.array_equal(loaded.embeddings, profiles.embeddings)
    assert np.array_equal(loaded.scores, profiles.scores, equal_nan=True)


def test_large_profiles_store_their_index_and_predict_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.selection.neighbours, "EXACT_MAX", 500)
    n = 3000
    rows = [{"id": i, "prompt": f"p{i}", "scores": {"a": float(i % 3 == 0)}} for i in range(n)]
    data = read_labelled([_write(tmp_path / "big.jsonl", rows)])
    vectors = _unit(n, dim=16)
    profiles = build_profiles(data, vectors, "enc", np.ones(n, dtype=np.float32))
    save_profiles(profiles, tmp_path / "p")
    assert json.loads((tmp_path / "p" / MANIFEST).read_text())["ivf"] is True
    loaded = load_profiles(tmp_path / "p")
    assert loaded.index is not None and loaded.index.centroids is not None
    queries = vectors[:5]
    fresh = Estimator(profiles, {}, {"a": "a"}, None).predict(queries, np.ones(5)).quality
    again = Estimator(loaded, {}, {"a": "a"}, None).predict(queries, np.ones(5)).quality
    assert np.allclose(fresh, again)


def test_unreadable_or_old_profiles_give_a_readable_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a profiles directory"):
        load_profiles(tmp_path)
    (tmp_path / MANIFEST).write_text(json.dumps({"format_version": 0, "models": []}))
    with pytest.raises(ConfigError, match="rebuild"):
        load_profiles(tmp_path)

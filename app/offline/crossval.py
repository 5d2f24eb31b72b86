"""K-fold cross-validation of the estimator against a plain kNN, on labelled data."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from app.embedding.encoder import Encoder, Vectors, count_tokens, load_encoder
from app.offline.evaluation import plain_knn
from app.offline.report import Report, build_report
from app.selection.estimator import Estimator, Matrix
from app.selection.labelled import Labelled
from app.selection.profiles import LearnedProfiles, build_profiles


def embed_cached(encoder: Encoder, prompts: list[str], cache_dir: Path | None = None) -> Vectors:
    """Embeddings of ``prompts``, cached on disk by model and content (reruns are instant)."""
    digest = hashlib.sha256(encoder.model_id.encode())
    for prompt in prompts:
        digest.update(prompt.encode() + b"\0")
    cache = (cache_dir or Path.home() / ".cache" / "switchboard") / "embeddings"
    path = cache / f"{digest.hexdigest()[:24]}.npy"
    if path.exists():
        cached: Vectors = np.load(path)
        return cached
    from app.offline.progress import each

    batches = [prompts[i : i + 256] for i in range(0, len(prompts), 256)]
    vectors = np.vstack([encoder.encode(b) for b in each(batches, "embedding", "batch")])
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def profiles_from(data: Labelled, embeddings: Vectors, model_id: str) -> LearnedProfiles:
    """Learned profiles of ``data`` whose prompts embed to ``embeddings``."""
    tokens = np.array([count_tokens(p) for p in data.prompts], dtype=np.float32)
    return build_profiles(data, embeddings, model_id, tokens)


def oof_predictions(
    data: Labelled, encoder: Encoder, folds: int = 5, seed: int = 0
) -> tuple[Matrix, Matrix]:
    """Out-of-fold (quality, cost) predictions of the estimator for every prompt of ``data``."""
    return _cross(data, encoder, folds, seed)[0]


def cross_validate(
    data: Labelled, folds: int = 5, seed: int = 0, encoder: Encoder | None = None
) -> Report:
    router, knn = _cross(data, encoder or load_encoder(), folds, seed)
    return build_report(data, router, knn)


def _cross(
    data: Labelled, encoder: Encoder, folds: int, seed: int
) -> tuple[tuple[Matrix, Matrix], tuple[Matrix, Matrix]]:
    embeddings = embed_cached(encoder, data.prompts)
    n, m = data.scores.shape
    router_q, router_c = np.zeros((n, m)), np.zeros((n, m))
    knn_q, knn_c = np.zeros((n, m)), np.zeros((n, m))
    fold_of = np.random.default_rng(seed).permutation(n) % folds
    for fold in range(folds):
        test = np.flatnonzero(fold_of == fold)
        train = np.flatnonzero(fold_of != fold)
        profiles = profiles_from(data.subset(train), embeddings[train], encoder.model_id)
        estimator = Estimator(profiles, {}, {name: name for name in profiles.models}, None)
        tokens = np.array([count_tokens(data.prompts[i]) for i in test], dtype=np.float64)
        prediction = estimator.predict(embeddings[test], tokens)
        router_q[test], router_c[test] = prediction.quality, prediction.cost
        knn_q[test], knn_c[test] = plain_knn(profiles, embeddings[test])
    if not data.has_costs:
        router_c[:] = knn_c[:] = 0.0
    return (router_q, router_c), (knn_q, knn_c)

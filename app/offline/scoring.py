"""Offline scoring of learned profiles on labelled data (``eval`` and ``calibrate``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.embedding.encoder import Encoder, count_tokens
from app.errors import ConfigError
from app.offline.crossval import embed_cached, oof_predictions
from app.offline.evaluation import plain_knn
from app.offline.predict import catalog_prices, priced_costs
from app.offline.report import Report, build_report
from app.selection.estimator import Estimator, Matrix, Prediction
from app.selection.labelled import Labelled, read_labelled
from app.selection.profiles import LearnedProfiles


def _aligned(data: Labelled, profiles: LearnedProfiles) -> Labelled:
    """The test data restricted to models the profiles know (same column order)."""
    shared = [m for m in profiles.models if m in data.models]
    if not shared:
        raise ConfigError("the data and the profiles have no model in common")
    cols = [data.models.index(m) for m in shared]
    return Labelled(
        data.ids, data.prompts, shared, data.scores[:, cols], data.costs[:, cols], data.tasks
    )


def _predict(
    profiles: LearnedProfiles, data: Labelled, embeddings: np.ndarray, encoder: Encoder
) -> tuple[Matrix, Matrix]:
    estimator = Estimator(profiles, {}, {m: m for m in data.models}, encoder)
    tokens = np.array([count_tokens(p) for p in data.prompts], dtype=np.float64)
    prediction = estimator.predict(embeddings, tokens)
    order = [prediction.models.index(m) for m in data.models]
    return prediction.quality[:, order], prediction.cost[:, order]


def evaluate(profiles: LearnedProfiles, data_path: Path, encoder: Encoder) -> Report:
    data = _aligned(read_labelled([data_path]), profiles)
    embeddings = embed_cached(encoder, data.prompts)
    quality, cost = _predict(profiles, data, embeddings, encoder)
    knn_q, knn_c = plain_knn(profiles, embeddings)
    cols = [profiles.models.index(m) for m in data.models]
    knn_q, knn_c = knn_q[:, cols], knn_c[:, cols]
    if not data.has_costs:
        cost, knn_c = np.zeros_like(quality), np.zeros_like(quality)
    return build_report(
        data, (np.nan_to_num(quality), np.nan_to_num(cost)), (knn_q, np.nan_to_num(knn_c))
    )


def sample_predictions(
    data_path: Path, profiles: LearnedProfiles | None, encoder: Encoder
) -> tuple[Labelled, Matrix, Matrix]:
    """Predictions for a traffic sample: from profiles, or out-of-fold from the sample itself."""
    data = read_labelled([data_path])
    if profiles is None:
        quality, cost = oof_predictions(data, encoder)
    else:
        data = _aligned(data, profiles)
        quality, cost = _predict(profiles, data, embed_cached(encoder, data.prompts), encoder)
    if not data.has_costs:  # price the calls from the catalog, as the service would
        tokens = np.array([count_tokens(p) for p in data.prompts], dtype=np.float64)
        prediction = Prediction(data.models, quality, cost, np.zeros_like(quality))
        cost = priced_costs(prediction, tokens, catalog_prices(data.models))
    return data, quality, np.nan_to_num(cost)

"""Predicting each model's quality and cost for a query.

Learned models: similarity-weighted neighbours with shrinkage. For a query we take its ``K``
most similar labelled prompts, weight them by ``exp((sim - max_sim) / TEMPERATURE)``, and
predict a model's quality as

    (sum_i w_i * score_i + SHRINK * prior) / (sum_i w_i + SHRINK)

where ``prior`` is the model's mean score over all its labelled prompts. The pseudo-count
``SHRINK`` is what keeps predictions calibrated where data is thin: a model seen on few similar
prompts (small total weight) stays near its overall level instead of swinging on one or two
neighbours; with plenty of close evidence the neighbours dominate. Costs are predicted the same
way from neighbours' costs (NaN when the data has none: the selector then prices tokens).

Declared models (no data): the catalog's prior quality, nudged up or down by similarity to their
"good at" / "bad at" example prompts.

Why this shape, and the constants: see ``bench/routing_quality.py`` (5-fold CV numbers in the
README). Softmax weighting beats raw-cosine weighting because MiniLM similarities are compressed
(most prompts sit at 0.1-0.5 cosine from each other), and the shrinkage term is what lets the
router beat plain kNN on AIQ: kNN's noisy per-query estimates pick expensive models on thin
evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.embedding import Encoder
from app.neighbours import NeighbourIndex
from app.profiles import DeclaredProfile, LearnedProfiles, shrunk_means

Matrix = NDArray[np.float64]

K = 256
TEMPERATURE = 0.2
SHRINK = 4.0
EXAMPLE_WEIGHT = 0.3
PLAIN_KNN_K = 10


@dataclass
class Prediction:
    models: list[str]
    quality: Matrix  # (n, M) in [0, 1]
    cost: Matrix  # (n, M) USD per call, NaN = unknown
    support: Matrix  # (n, M) total neighbour weight behind each estimate


def _shrunk(
    weights: Matrix, values: NDArray[np.float32], prior: NDArray[np.float64], strength: float
) -> tuple[Matrix, Matrix]:
    """Weighted mean of neighbours' ``values`` (n, k, M) pulled toward ``prior`` (M,)."""
    known = np.isfinite(values)
    w = weights[:, :, None] * known
    total = w.sum(axis=1)
    summed = (w * np.where(known, values, 0.0)).sum(axis=1)
    prior = np.nan_to_num(prior, nan=0.0)
    return (summed + strength * prior) / np.maximum(total + strength, 1e-12), total


class LearnedPredictor:
    """Neighbour-based quality and cost for the models of one learned profile set."""

    def __init__(self, profiles: LearnedProfiles, columns: list[int]) -> None:
        self.scores = np.asarray(profiles.scores)[:, columns]
        self.costs = np.asarray(profiles.costs)[:, columns]
        self.index = NeighbourIndex.build(np.asarray(profiles.embeddings))
        self.prior = shrunk_means(self.scores)
        with np.errstate(all="ignore"):
            self.cost_prior = np.nanmean(self.costs.astype(np.float64), axis=0)
        self.has_costs = np.isfinite(self.costs).any(axis=0)

    def predict(self, embeddings: NDArray[np.float32]) -> tuple[Matrix, Matrix, Matrix]:
        rows, sims = self.index.search(embeddings, K)
        weights = np.exp((sims - sims.max(axis=1, keepdims=True)) / TEMPERATURE)
        quality, support = _shrunk(weights, self.scores[rows], self.prior, SHRINK)
        cost, _ = _shrunk(weights, self.costs[rows], self.cost_prior, SHRINK)
        cost[:, ~self.has_costs] = np.nan
        return np.clip(quality, 0.0, 1.0), cost, support


class Estimator:
    """Quality and cost predictions for every catalog model that has a profile."""

    def __init__(
        self,
        learned: LearnedProfiles | None,
        declared: Mapping[str, DeclaredProfile],
        aliases: Mapping[str, str],
        encoder: Encoder | None,
    ) -> None:
        columns: dict[str, int] = {}
        if learned is not None:
            position = {name: i for i, name in enumerate(learned.models)}
            columns = {m: position[a] for m, a in aliases.items() if a in position}
        self._learned = (
            LearnedPredictor(learned, list(columns.values())) if learned and columns else None
        )
        self.declared = {m: p for m, p in declared.items() if m not in columns}
        if self.declared and encoder is None:
            raise ValueError("declared profiles need an encoder for their example prompts")
        self._examples = {
            m: (
                encoder.encode(p.good_at) if encoder is not None and p.good_at else None,
                encoder.encode(p.bad_at) if encoder is not None and p.bad_at else None,
            )
            for m, p in self.declared.items()
        }
        self.learned_models = list(columns)
        self.models = self.learned_models + list(self.declared)

    def predict(self, embeddings: NDArray[np.float32], prompt_tokens: Matrix) -> Prediction:
        """Predictions for ``embeddings`` (n, d); ``prompt_tokens`` (n,) is kept for cost models."""
        n, learned = embeddings.shape[0], len(self.learned_models)
        quality = np.zeros((n, len(self.models)))
        cost = np.full((n, len(self.models)), np.nan)
        support = np.zeros((n, len(self.models)))
        if self._learned is not None:
            q, c, s = self._learned.predict(embeddings)
            quality[:, :learned], cost[:, :learned], support[:, :learned] = q, c, s
        for j, model in enumerate(self.declared, start=learned):
            quality[:, j] = self._declared(model, embeddings)
        return Prediction(self.models, quality, cost, support)

    def _declared(self, model: str, embeddings: NDArray[np.float32]) -> NDArray[np.float64]:
        nudge = np.zeros(embeddings.shape[0])
        good, bad = self._examples[model]
        if good is not None:
            nudge += np.clip((embeddings @ good.T).max(axis=1), 0.0, 1.0)
        if bad is not None:
            nudge -= np.clip((embeddings @ bad.T).max(axis=1), 0.0, 1.0)
        return np.clip(self.declared[model].prior_quality + EXAMPLE_WEIGHT * nudge, 0.0, 1.0)


def plain_knn(profiles: LearnedProfiles, embeddings: NDArray[np.float32]) -> tuple[Matrix, Matrix]:
    """The baseline: mean of the ``PLAIN_KNN_K`` nearest prompts' labels, weighted by cosine."""
    index = NeighbourIndex.build(np.asarray(profiles.embeddings), exact=True)
    rows, sims = index.search(embeddings, PLAIN_KNN_K)
    weights = np.clip(sims, 1e-6, None)
    quality, _ = _shrunk(
        weights, np.asarray(profiles.scores)[rows], np.zeros(len(profiles.models)), 0.0
    )
    cost, _ = _shrunk(
        weights, np.asarray(profiles.costs)[rows], np.zeros(len(profiles.models)), 0.0
    )
    return quality, cost

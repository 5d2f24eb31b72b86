"""Predicting each model's quality and cost for a query.

Learned models: similarity-weighted neighbours, shrunk toward the model's overall level by a
pseudo-count, so a model seen on few similar prompts stays near its prior. Declared models: the
prior, nudged by similarity to their good/bad example prompts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.embedding import Encoder
from app.profiles import DeclaredProfile, LearnedProfiles

K = 64
TEMPERATURE = 0.05
SHRINK = 2.0
EXAMPLE_WEIGHT = 0.3


@dataclass
class Prediction:
    models: list[str]
    quality: NDArray[np.float64]
    cost: NDArray[np.float64]
    support: NDArray[np.float64]


class Estimator:
    def __init__(
        self,
        learned: LearnedProfiles | None,
        declared: Mapping[str, DeclaredProfile],
        aliases: Mapping[str, str],
        encoder: Encoder,
    ) -> None:
        self.learned = learned
        self._learned_cols: dict[str, int] = {}
        if learned is not None:
            column = {name: i for i, name in enumerate(learned.models)}
            self._learned_cols = {
                model: column[alias] for model, alias in aliases.items() if alias in column
            }
        self.declared = {m: p for m, p in declared.items() if m not in self._learned_cols}
        self._examples = {
            m: (
                encoder.encode(p.good_at) if p.good_at else None,
                encoder.encode(p.bad_at) if p.bad_at else None,
            )
            for m, p in self.declared.items()
        }
        self.models = list(self._learned_cols) + list(self.declared)

    def predict(self, embeddings: NDArray[np.float32], prompt_tokens: NDArray[np.float64]) -> Prediction:
        n = embeddings.shape[0]
        quality = np.zeros((n, len(self.models)))
        cost = np.full((n, len(self.models)), np.nan)
        support = np.zeros((n, len(self.models)))
        if self._learned_cols and self.learned is not None:
            cols = list(self._learned_cols.values())
            q, c, s = self._neighbours(embeddings, cols)
            k = len(cols)
            quality[:, :k], cost[:, :k], support[:, :k] = q, c, s
        for j, model in enumerate(self.declared, start=len(self._learned_cols)):
            quality[:, j] = self._declared(model, embeddings)
        return Prediction(self.models, quality, cost, support)

    def _neighbours(
        self, embeddings: NDArray[np.float32], cols: list[int]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        assert self.learned is not None
        sims = embeddings @ np.asarray(self.learned.embeddings).T
        k = min(K, sims.shape[1])
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top_sims = np.take_along_axis(sims, top, axis=1)
        weights = np.exp((top_sims - top_sims.max(axis=1, keepdims=True)) / TEMPERATURE)
        scores = np.asarray(self.learned.scores)[:, cols][top]
        costs = np.asarray(self.learned.costs)[:, cols][top]
        priors = np.nanmean(np.asarray(self.learned.scores)[:, cols], axis=0)
        cost_priors = np.nanmean(np.asarray(self.learned.costs)[:, cols], axis=0) if np.isfinite(
            np.asarray(self.learned.costs)[:, cols]
        ).any() else np.full(len(cols), np.nan)
        w = weights[:, :, None] * np.isfinite(scores)
        support = w.sum(axis=1)
        quality = (np.nansum(w * np.nan_to_num(scores), axis=1) + SHRINK * priors) / (support + SHRINK)
        wc = weights[:, :, None] * np.isfinite(costs)
        cost = (np.nansum(wc * np.nan_to_num(costs), axis=1) + SHRINK * cost_priors) / (
            wc.sum(axis=1) + SHRINK
        )
        return quality, cost, support

    def _declared(self, model: str, embeddings: NDArray[np.float32]) -> NDArray[np.float64]:
        prior = self.declared[model].prior_quality
        good, bad = self._examples[model]
        nudge = np.zeros(embeddings.shape[0])
        if good is not None:
            nudge += np.clip((embeddings @ good.T).max(axis=1), 0, 1)
        if bad is not None:
            nudge -= np.clip((embeddings @ bad.T).max(axis=1), 0, 1)
        return np.clip(prior + EXAMPLE_WEIGHT * nudge, 0, 1)

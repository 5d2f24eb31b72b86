"""Predicting, for a query, each model's quality in [0, 1] and its cost in USD.

Public API (used by ``app.selection.selector.Selector`` and batch ``predict``):

    est = Estimator(learned, declared, aliases, encoder)   # once, at start-up, for the catalog
    est.models                                             # catalog ids that have a profile
    p = est.predict(embeddings (n, d), prompt_tokens (n,)) # -> Prediction(models, quality,
                                                           #    cost (NaN = unknown), support)
    est.add_observations(embeddings, models, scores)       # online feedback seam (bounded)
    est.reset_observations(model=None)

**Quality: kernel-weighted neighbours, shrunk toward the model's overall level.** For a query,
the ``K`` most similar labelled prompts (cosine ``s``) each get the weight
``exp((s - 1) / TEMPERATURE)``: 1 for an identical prompt, 0.13 at ``s = 0.5``. A model's
prediction is ``(sum_i w_i y_i + SHRINK * prior) / (sum_i w_i + SHRINK)``, summing only over
prompts where that model has a label; ``prior`` is its overall mean score (itself shrunk toward
the all-model mean). ``support = sum_i w_i`` is the effective evidence. So a model seen on few
similar prompts (support << SHRINK) stays at its overall level rather than swinging on one or
two neighbours, and queries unlike anything labelled fall back to the priors by themselves.

Why this shape, by 5-fold CV on the shared train files (out-of-fold predictions, same folds,
seed 0; other seeds move the numbers by about 0.003). RB = routerbench_train (AIQ of the
cost-weight sweep; the single-model hull is 0.818), DC = routerdc7_train (no costs: task-averaged
accuracy of the most-likely-correct pick; the best single model is 0.563), Brier = squared error
of the predicted scores. ``python bench/routing_quality.py --data FILE`` prints the full table.

| estimator                                             | RB AIQ | DC acc | Brier RB / DC |
|-------------------------------------------------------|--------|--------|---------------|
| each model's overall level (no query information)     | 0.822  | 0.539  | 0.210 / 0.235 |
| plain kNN: 10 neighbours, cosine-weighted (baseline)  | 0.786  | 0.580  |       -       |
| **this: K 256, T 0.25, shrink 2**                     | 0.845  | 0.597  | 0.196 / 0.223 |
| kernel relative to the best match, T 0.2, shrink 4    | 0.845  | 0.597  | 0.195 / 0.222 |
| sharper kernel, T 0.1, shrink 1                       | 0.841  | 0.576  | 0.202 / 0.226 |
| logistic regression per model on the embedding, C 0.3 | 0.843  | 0.582  |       -       |
| mean of that logistic regression and this kernel      | 0.846  | 0.592  |       -       |

Around it (seeds 0 and 1): with K 256, any T in 0.2-0.3 and shrink in 1-4 lands within 0.005 of
the chosen setting on both files; K 64 loses about 0.003 (RB) and 0.008 (DC); K 512 gains
0.0005 on RB but loses about 0.006 on DC, where distant neighbours dilute the local picture.

Shrinkage is what beats plain kNN, whose noisy per-query estimates buy expensive models on thin
evidence. Per-model logistic regression adds nothing on top. The absolute kernel ties the
relative one in-distribution and is preferred because its support means something: with queries
from a benchmark the profiles never saw (leave-one-task-out CV) it stays closer to the priors'
calibration (Brier RB 0.236 vs 0.237 relative, 0.234 priors; DC 0.251 vs 0.253, 0.243 priors)
while still ranking better than the priors (DC accuracy 0.494 vs 0.470). MiniLM prompts of one
benchmark sit at cosine 0.5-0.8 from each other, so ``TEMPERATURE`` 0.25 averages a
neighbourhood rather than copying the nearest prompt.

What the data allows: within a benchmark, these embeddings barely predict which prompts a model
gets right (mean within-task AUC 0.55 on ARC, 0.50 on WinoGrande). A router told each prompt's
benchmark, mixing models optimally per benchmark, reaches AIQ 0.847 on routerbench; this one
reaches 0.845 without the label, and neither can match GPT-4's 0.879 below GPT-4's own cost.

**Cost** (when the data has costs): per model, a least-squares line in prompt tokens (calls cost
input tokens x price + output), plus the kernel-weighted mean of the neighbours' residuals (output
length follows the kind of prompt), shrunk to 0. Relative error 8.7% vs 9.6% for neighbour means
alone on routerbench. Models without cost data get NaN: the caller prices tokens from the catalog.

**Declared profiles** (catalog models with no labelled data): their ``good_at`` / ``bad_at``
examples are pseudo-labelled neighbours (score 1 / 0) in the same formula around
``prior_quality``. Each weighs ``EXAMPLE_WEIGHT`` labelled prompts, since its author picked it to
stand for a kind of prompt, and the result is bounded to ``prior +- MAX_DECLARED_SHIFT``.

**Feedback**: ``add_observations`` adds labelled points (embedding, model, score) to the same
sums, each with weight at most ``FEEDBACK_WEIGHT`` (no more than a labelled prompt), and
``reset_observations`` drops them; storage belongs to the caller. What the estimator holds is
bounded (``FeedbackBounds``): each point names its source (the caller's key), a source keeps its
newest ``per_source`` points and all sources together their newest ``total``, and one source's
points weigh ``source_weight`` together at most (each is scaled down once they would weigh
more), so no single caller steers routing alone, however much feedback it sends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.embedding.encoder import Encoder
from app.errors import ConfigError
from app.selection.profiles import DeclaredProfile, LearnedProfiles, shrunk_means

Matrix = NDArray[np.float64]
Vectors = NDArray[np.float32]

K = 256
TEMPERATURE = 0.25
SHRINK = 2.0
EXAMPLE_WEIGHT = 4.0
MAX_DECLARED_SHIFT = 0.3
FEEDBACK_WEIGHT = 1.0


KIND_WEIGHT = 0.25
"""Weight of each anchor prompt of a declared per-kind score (``DeclaredProfile.kinds``): a kind
has dozens of anchors, so near them the declared score dominates, far from all of them the
model's overall prior does."""

Source = str  # "learned" | "declared" | "neutral"


@dataclass
class Prediction:
    models: list[str]
    quality: Matrix  # (n, M) in [0, 1]
    cost: Matrix  # (n, M) USD per call, NaN = unknown (price it from the catalog)
    support: Matrix  # (n, M) effective number of labelled prompts behind each estimate
    feedback: Matrix | None = None  # (n, M) the part of ``support`` that came from feedback


def kernel(sims: NDArray[np.floating]) -> Matrix:
    """Weight of a labelled prompt at cosine ``sims`` from the query: 1 when identical."""
    sims = np.asarray(sims, dtype=np.float64)
    return np.where(sims > -1.0, np.exp((sims - 1.0) / TEMPERATURE), 0.0)


@dataclass(frozen=True)
class FeedbackBounds:
    per_source: int = 1000
    total: int = 50_000
    source_weight: float = 10.0
    """Summed weight of one source's points: ten labelled prompts' worth."""


class Points:
    """Loose labelled points (declared examples, feedback) added to the neighbour sums.

    Storage grows by doubling, so feedback arriving one point at a time stays cheap.
    """

    def __init__(self, columns: int) -> None:
        self.columns = columns
        self.count = 0
        self.vectors = np.zeros((0, 0), dtype=np.float32)
        self.column = np.zeros(0, dtype=np.int64)
        self.scores = np.zeros(0)
        self.weights = np.zeros(0)
        self._onehot: Matrix | None = None

    def add(
        self, vectors: Vectors, column: NDArray[np.int64], scores: Matrix, weights: Matrix
    ) -> None:
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        end = self.count + len(vectors)
        if end > len(self.column):
            size = max(end, 2 * len(self.column), 16)
            grown = np.zeros((size, vectors.shape[1]), dtype=np.float32)
            grown[: self.count] = self.vectors[: self.count] if self.count else 0.0
            self.vectors = grown
            self.column = np.resize(self.column, size).astype(np.int64)
            self.scores = np.resize(self.scores, size).astype(np.float64)
            self.weights = np.resize(self.weights, size).astype(np.float64)
        self.vectors[self.count : end] = vectors
        self.column[self.count : end] = column
        self.scores[self.count : end] = scores
        self.weights[self.count : end] = weights
        self.count, self._onehot = end, None

    def keep(self, mask: NDArray[np.bool_]) -> None:
        """Keep only the points where ``mask`` (over the ``count`` stored points) is true."""
        kept = np.flatnonzero(mask[: self.count])
        self.vectors[: len(kept)] = self.vectors[kept]
        for array in (self.column, self.scores, self.weights):
            array[: len(kept)] = array[kept]
        self.count, self._onehot = len(kept), None

    def add_to(self, embeddings: Vectors, weighted: Matrix, weight: Matrix) -> None:
        if not self.count:
            return
        n = self.count
        if self._onehot is None:
            self._onehot = np.zeros((n, self.columns))
            self._onehot[np.arange(n), self.column[:n]] = 1.0
        w = kernel(embeddings @ self.vectors[:n].T) * self.weights[:n]  # (queries, points)
        weight += w @ self._onehot
        weighted += (w * self.scores[:n]) @ self._onehot


class SourcedPoints(Points):
    """Feedback points that remember their source, held within ``FeedbackBounds``.

    A point past a bound is dropped by zeroing its weight; the arrays are compacted only once a
    quarter of them is dropped, so a caller at its cap does not cost a copy of every vector per
    feedback.
    """

    def __init__(self, columns: int, bounds: FeedbackBounds) -> None:
        super().__init__(columns)
        self.bounds = bounds
        self.source = np.zeros(0, dtype=np.int64)
        self.base = np.zeros(0)
        self.alive = np.zeros(0, dtype=bool)
        self._ids: dict[str | None, int] = {}

    @property
    def live(self) -> int:
        """Points that count (the others wait for the next compaction)."""
        return int(self.alive.sum())

    def add_sourced(
        self,
        vectors: Vectors,
        column: NDArray[np.int64],
        scores: Matrix,
        weights: Matrix,
        sources: Sequence[str | None],
    ) -> None:
        ids = np.array([self._ids.setdefault(s, len(self._ids)) for s in sources], np.int64)
        self.source = np.concatenate([self.source, ids])
        self.base = np.concatenate([self.base, weights])
        self.alive = np.concatenate([self.alive, np.ones(len(ids), dtype=bool)])
        self.add(vectors, column, scores, weights)
        self._bound(np.unique(ids))

    def keep(self, mask: NDArray[np.bool_]) -> None:
        kept = mask[: self.count]
        self.source, self.base, self.alive = self.source[kept], self.base[kept], self.alive[kept]
        super().keep(mask)
        self._reweigh()

    def _bound(self, added: NDArray[np.int64]) -> None:
        """Drop the oldest points of sources past ``per_source``, then past ``total``."""
        per_source = np.bincount(self.source[self.alive], minlength=len(self._ids))
        for source in added[per_source[added] > self.bounds.per_source]:
            mine = np.flatnonzero((self.source == source) & self.alive)
            self.alive[mine[: len(mine) - self.bounds.per_source]] = False
        extra = self.live - self.bounds.total
        if extra > 0:
            self.alive[np.flatnonzero(self.alive)[:extra]] = False
        if self.count - self.live > max(64, self.count // 4):
            self.keep(self.alive.copy())
        else:
            self._reweigh()

    def _reweigh(self) -> None:
        n = self.count
        if not n:
            return
        live_base = self.base * self.alive
        summed = np.bincount(self.source, weights=live_base, minlength=len(self._ids))
        scale = np.minimum(1.0, self.bounds.source_weight / np.maximum(summed, 1e-12))
        self.weights[:n] = live_base * scale[self.source]


@dataclass(frozen=True)
class CostLines:
    """Per model: cost = intercept + slope * prompt tokens, never below the cheapest call seen."""

    intercept: Matrix
    slope: Matrix
    floor: Matrix
    known: NDArray[np.bool_]

    @classmethod
    def fit(cls, costs: Matrix, tokens: Matrix) -> CostLines:
        known = np.isfinite(costs)
        intercept, slope, floor = (np.zeros(costs.shape[1]) for _ in range(3))
        for j in np.flatnonzero(known.any(axis=0)):
            x, y = tokens[known[:, j]], costs[known[:, j], j]
            spread = float(np.var(x))
            fitted = float(np.mean((x - x.mean()) * (y - y.mean())) / spread) if spread else 0.0
            slope[j] = max(fitted, 0.0)
            intercept[j] = float(y.mean() - slope[j] * x.mean())
            floor[j] = float(y.min())
        has_costs: NDArray[np.bool_] = np.asarray(known.any(axis=0), dtype=bool)
        return cls(intercept, slope, floor, has_costs)

    def at(self, tokens: NDArray[np.floating]) -> Matrix:
        line: Matrix = self.intercept + self.slope * np.asarray(tokens, dtype=np.float64)[:, None]
        return line


class LearnedPredictor:
    """Neighbour sums and costs for the (catalog-selected) columns of learned profiles."""

    def __init__(self, profiles: LearnedProfiles, columns: list[int]) -> None:
        profiles = profiles.indexed()
        assert profiles.index is not None
        self.index = profiles.index
        scores = np.asarray(profiles.scores, dtype=np.float64)[:, columns]
        costs = np.asarray(profiles.costs, dtype=np.float64)[:, columns]
        tokens = np.asarray(profiles.tokens, dtype=np.float64)
        self.prior = shrunk_means(scores)
        self.lines = CostLines.fit(costs, tokens)
        self.width = len(columns)
        # one table, so that a query gathers its neighbours' rows once:
        # [has score | score | has cost | cost minus its line], NaN as 0
        parts = [np.isfinite(scores), np.nan_to_num(scores), np.isfinite(costs),
                 np.nan_to_num(costs - self.lines.at(tokens))]  # fmt: skip
        self.table = np.hstack(parts).astype(np.float32)

    def add_to(
        self, embeddings: Vectors, tokens: NDArray[np.floating], weighted: Matrix, weight: Matrix
    ) -> Matrix:
        """Add the neighbours' evidence to ``weighted``/``weight``; return predicted costs."""
        rows, sims = self.index.search(embeddings, K)
        sums: Matrix = np.einsum("nk,nkc->nc", kernel(sims), self.table[rows])
        m = self.width
        weight += sums[:, :m]
        weighted += sums[:, m : 2 * m]
        shift = sums[:, 3 * m :] / (sums[:, 2 * m : 3 * m] + SHRINK)
        cost: Matrix = np.maximum(self.lines.at(tokens) + shift, self.lines.floor)
        cost[:, ~self.lines.known] = np.nan
        return cost


class Estimator:
    """Quality and cost predictions for every catalog model.

    Args:
        learned: labelled-data profiles, or None.
        declared: catalog id -> declared profile (used only for models without learned data).
        aliases: catalog id -> the model's name in the learned profiles (``profile_id``).
        encoder: embeds declared examples, and must match the profiles' embedding model.
        neutral: catalog ids with neither labelled data nor a declared profile. Each gets the
            neutral profile: the mean overall level of the profiled models (0.5 when there are
            none), the same for every query until feedback moves it, so it is routable but
            never preferred on evidence it does not have.
        anchors: kind -> embeddings of prompts of that kind (the default suite's), where the
            per-kind scores of declared profiles (``DeclaredProfile.kinds``) are placed.
    """

    def __init__(
        self,
        learned: LearnedProfiles | None,
        declared: Mapping[str, DeclaredProfile],
        aliases: Mapping[str, str],
        encoder: Encoder | None,
        neutral: Sequence[str] = (),
        anchors: Mapping[str, Vectors] | None = None,
        feedback_bounds: FeedbackBounds | None = None,
    ) -> None:
        columns: dict[str, int] = {}
        if learned is not None:
            _check_encoder(learned, encoder)
            position = {name: i for i, name in enumerate(learned.models)}
            columns = {m: position[a] for m, a in aliases.items() if a in position}
        self._learned = (
            LearnedPredictor(learned, list(columns.values())) if learned and columns else None
        )
        self.declared = {m: p for m, p in declared.items() if m not in columns}
        self.learned_models = list(columns)
        self.neutral = [m for m in dict.fromkeys(neutral) if m not in columns and m not in declared]
        self.models = self.learned_models + list(self.declared) + self.neutral
        learned_prior = self._learned.prior if self._learned else np.zeros(0)
        declared_prior = [p.prior_quality for p in self.declared.values()]
        profiled = np.concatenate([learned_prior, declared_prior]).astype(np.float64)
        profiled = profiled[np.isfinite(profiled)]
        self.neutral_level = float(profiled.mean()) if len(profiled) else 0.5
        self._prior = np.concatenate(
            [learned_prior, declared_prior, np.full(len(self.neutral), self.neutral_level)]
        ).astype(np.float64)
        self._declared_column = np.arange(len(self.models)) >= len(self.learned_models)
        self._column = {m: j for j, m in enumerate(self.models)}
        self.sources: dict[str, Source] = {m: "learned" for m in self.learned_models}
        self.sources |= {m: "declared" for m in self.declared}
        self.sources |= {m: "neutral" for m in self.neutral}
        self._examples = Points(len(self.models))
        self.feedback_bounds = feedback_bounds or FeedbackBounds()
        self._feedback = SourcedPoints(len(self.models), self.feedback_bounds)
        for model, profile in self.declared.items():
            self._add_examples(model, profile, encoder)
            self._add_kinds(model, profile, anchors or {})

    def has_profile(self, model: str) -> bool:
        """Whether ``model`` (a catalog id) can be predicted: learned data or a declared profile."""
        return model in self._column

    def predict(
        self, embeddings: NDArray[np.float32], prompt_tokens: NDArray[np.floating]
    ) -> Prediction:
        """Predictions for ``embeddings`` (n, d); ``prompt_tokens`` (n,) scales the costs."""
        embeddings = np.atleast_2d(np.asarray(embeddings, dtype=np.float32))
        n, m = embeddings.shape[0], len(self.models)
        weighted, weight = np.zeros((n, m)), np.zeros((n, m))
        cost = np.full((n, m), np.nan)
        tokens = np.asarray(prompt_tokens, dtype=np.float64).reshape(-1)
        tokens = tokens if len(tokens) == n else np.full(n, float(tokens[0]))
        if self._learned is not None:
            learned = len(self.learned_models)
            cost[:, :learned] = self._learned.add_to(
                embeddings, tokens, weighted[:, :learned], weight[:, :learned]
            )
        self._examples.add_to(embeddings, weighted, weight)
        feedback = np.zeros((n, m))
        self._feedback.add_to(embeddings, weighted, feedback)
        weight += feedback
        quality = (weighted + SHRINK * self._prior) / (weight + SHRINK)
        shift = np.clip(quality - self._prior, -MAX_DECLARED_SHIFT, MAX_DECLARED_SHIFT)
        quality = np.where(self._declared_column, self._prior + shift, quality)
        return Prediction(list(self.models), np.clip(quality, 0.0, 1.0), cost, weight, feedback)

    def add_observations(
        self,
        embeddings: NDArray[np.float32],
        models: Sequence[str],
        scores: Sequence[float] | NDArray[np.floating],
        weight: float = FEEDBACK_WEIGHT,
        sources: Sequence[str | None] | None = None,
    ) -> None:
        """Add feedback: model ``models[i]`` scored ``scores[i]`` on the prompt ``embeddings[i]``.

        Each point counts like one labelled prompt at most (``weight`` is clipped to
        ``FEEDBACK_WEIGHT``), and within ``FeedbackBounds`` for its source ``sources[i]`` (one
        source for all when None); models without a profile are ignored.
        """
        known = [i for i, model in enumerate(models) if model in self._column]
        if not known:
            return
        column = np.array([self._column[models[i]] for i in known], dtype=np.int64)
        values = np.clip(np.asarray(scores, dtype=np.float64)[known], 0.0, 1.0)
        bounded = float(np.clip(weight, 0.0, FEEDBACK_WEIGHT))
        vectors = np.atleast_2d(np.asarray(embeddings, dtype=np.float32))[known]
        origin = [sources[i] if sources is not None else None for i in known]
        self._feedback.add_sourced(vectors, column, values, np.full(len(known), bounded), origin)

    def reset_observations(self, model: str | None = None) -> None:
        """Forget feedback: for one model, or (``None``) for all."""
        if model is None:
            self._feedback = SourcedPoints(len(self.models), self.feedback_bounds)
        elif model in self._column:
            self._feedback.keep(
                self._feedback.column[: self._feedback.count] != self._column[model]
            )

    def _add_examples(self, model: str, profile: DeclaredProfile, encoder: Encoder | None) -> None:
        examples = [*profile.good_at, *profile.bad_at]
        if not examples:
            return
        if encoder is None:
            raise ValueError(f"declared profile of {model!r} has examples but no encoder")
        scores = np.r_[np.ones(len(profile.good_at)), np.zeros(len(profile.bad_at))]
        column = np.full(len(examples), self._column[model], dtype=np.int64)
        weights = np.full(len(examples), EXAMPLE_WEIGHT)
        self._examples.add(encoder.encode(examples), column, scores, weights)

    def _add_kinds(
        self, model: str, profile: DeclaredProfile, anchors: Mapping[str, Vectors]
    ) -> None:
        """Place the profile's per-kind scores on the anchor prompts of each kind."""
        for kind, score in profile.kinds.items():
            vectors = anchors.get(kind)
            if vectors is None or not len(vectors):
                continue
            column = np.full(len(vectors), self._column[model], dtype=np.int64)
            self._examples.add(
                vectors, column, np.full(len(vectors), score), np.full(len(vectors), KIND_WEIGHT)
            )


def _check_encoder(learned: LearnedProfiles, encoder: Encoder | None) -> None:
    if encoder is None:
        return
    if encoder.dim != learned.dim or encoder.model_id != learned.embedding_model:
        raise ConfigError(
            f"the profiles were built with embedding model {learned.embedding_model!r} "
            f"({learned.dim} dims) but the service embeds with {encoder.model_id!r} "
            f"({encoder.dim} dims): set SWITCHBOARD_EMBEDDING_BACKEND=auto (it follows the "
            "profiles) or rebuild them with `switchboard profiles build`"
        )

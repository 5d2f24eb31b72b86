"""Routing quality on labelled data: cost-quality curves, AIQ, APGR and CPT, and baselines.

Definitions follow PRODUCT.md ("How routing quality is measured"):

- A router, swept over cost weights, gives points (mean cost, mean quality) of its picks.
- AIQ (RouterBench): the area under the non-decreasing convex hull of those points over the cost
  range of the single models, divided by that range. Outside the points the hull is extended
  flat (a router can always spend less by mixing in its cheapest pick, and never needs to spend
  more than its best point).
- APGR / CPT(x%) (RouteLLM, two models): performance gap recovered between the weak and strong
  model as a function of the share of calls sent to the strong model.
- Baselines: each single model, random mixes of them (their hull), the per-prompt oracle, and
  ``plain_knn``: a similarity-weighted kNN on the same embeddings, without shrinkage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.selection.neighbours import NeighbourIndex
from app.selection.profiles import LearnedProfiles
from app.selection.utility import choose_batch

Matrix = NDArray[np.float64]
PLAIN_KNN_K = 10


@dataclass(frozen=True)
class Point:
    cost: float
    quality: float
    label: str = ""


def sweep_weights(costs: Matrix) -> NDArray[np.float64]:
    """Cost weights from 0 to 'always the cheapest', log-spaced on the data's cost scale."""
    finite = costs[np.isfinite(costs)]
    spread = float(np.median(finite)) if finite.size and np.median(finite) > 0 else 1e-3
    return np.concatenate([[0.0], np.geomspace(1e-3 / spread, 1e3 / spread, 60)])


def curve(
    quality_pred: Matrix,
    cost_pred: Matrix,
    scores: Matrix,
    costs: Matrix,
    weights: NDArray[np.float64],
) -> list[Point]:
    """The router's (true mean cost, true mean quality) for each cost weight."""
    eligible = np.isfinite(scores)
    rows = np.arange(scores.shape[0])
    points = []
    for w in weights:
        pick = choose_batch(quality_pred, cost_pred, float(w), eligible)
        points.append(
            Point(
                float(np.nanmean(costs[rows, pick])), float(np.mean(scores[rows, pick])), f"{w:g}"
            )
        )
    return points


def hull(points: list[Point]) -> list[Point]:
    """The non-decreasing upper convex hull of ``points``, ordered by cost."""
    ordered = sorted(points, key=lambda p: (p.cost, -p.quality))
    upper: list[Point] = []
    for p in ordered:
        if upper and p.quality <= upper[-1].quality:
            continue  # costs more, gains nothing: never on a non-decreasing hull
        while len(upper) >= 2:
            a, b = upper[-2], upper[-1]
            cross = (b.cost - a.cost) * (p.quality - a.quality) - (b.quality - a.quality) * (
                p.cost - a.cost
            )
            if cross >= 0:
                upper.pop()
            else:
                break
        upper.append(p)
    return upper


def aiq(points: list[Point], low: float, high: float) -> float:
    """Area under the non-decreasing convex hull over [low, high], divided by its width."""
    top = hull(points)
    if not top or high <= low:
        return top[-1].quality if top else 0.0
    xs = np.array([p.cost for p in top])
    ys = np.array([p.quality for p in top])
    grid = np.linspace(low, high, 2001)
    values = np.interp(grid, xs, ys)  # flat beyond the ends
    return float(np.trapezoid(values, grid) / (high - low))


def quality_at_cost(points: list[Point], budget: float) -> float:
    top = hull(points)
    return float(np.interp(budget, [p.cost for p in top], [p.quality for p in top]))


def cost_at_quality(points: list[Point], target: float) -> float | None:
    """The least cost at which the hull reaches ``target`` quality (None if it never does)."""
    top = hull(points)
    if not top or top[-1].quality < target:
        return None
    if top[0].quality >= target:
        return top[0].cost
    return float(np.interp(target, [p.quality for p in top], [p.cost for p in top]))


def singles(scores: Matrix, costs: Matrix, models: list[str]) -> list[Point]:
    return [
        Point(float(np.nanmean(costs[:, j])), float(np.nanmean(scores[:, j])), m)
        for j, m in enumerate(models)
    ]


def oracle(scores: Matrix, costs: Matrix) -> Point:
    """Best model per prompt, cheapest among ties."""
    best = np.nanmax(scores, axis=1, keepdims=True)
    masked = np.where(scores >= best - 1e-9, np.nan_to_num(costs, nan=0.0), np.inf)
    pick = np.argmin(masked, axis=1)
    rows = np.arange(scores.shape[0])
    return Point(float(np.nanmean(costs[rows, pick])), float(np.mean(scores[rows, pick])), "oracle")


def task_mix_curve(
    scores: Matrix, costs: Matrix, tasks: list[str], weights: NDArray[np.float64]
) -> list[Point]:
    """A bound, not a router: for each cost weight, every prompt of a task goes to the model
    with the best mean utility on that task, chosen in-sample with the true labels.

    It shows what knowing only which benchmark a prompt came from can buy: where the router's
    curve nears it, what is left needs signal from inside a task (which prompts are hard).
    """
    labels = np.asarray(tasks)
    groups = [np.flatnonzero(labels == t) for t in sorted(set(tasks))]
    points = []
    for w in weights:
        quality = cost = 0.0
        for rows in groups:
            utility = np.nanmean(scores[rows], axis=0) - w * np.nanmean(costs[rows], axis=0)
            j = int(np.nanargmax(utility))
            quality += float(np.nansum(scores[rows, j]))
            cost += float(np.nansum(costs[rows, j]))
        points.append(Point(cost / len(labels), quality / len(labels), f"{w:g}"))
    return points


def within_task_auc(predicted: Matrix, scores: Matrix, tasks: list[str]) -> float | None:
    """Mean AUC of predicted quality at telling a model's right answers from its wrong ones,
    within each task (0/1 scores only), over every model and task with both outcomes.

    0.5 is no knowledge of which prompts of a benchmark are hard; the benchmark itself is not
    counted, since a router that only recognises it scores 0.5 here.
    """
    labels = np.asarray(tasks)
    aucs = []
    for task in sorted(set(tasks)):
        rows = labels == task
        for j in range(scores.shape[1]):
            y, p = scores[rows, j], predicted[rows, j]
            known = np.isfinite(y) & np.isfinite(p)
            y, p = y[known], p[known]
            if not np.isin(y, (0.0, 1.0)).all() or y.min() == y.max():
                continue
            right, wrong = p[y == 1.0], p[y == 0.0]
            wins = (right[:, None] > wrong[None, :]).mean() + 0.5 * (
                right[:, None] == wrong[None, :]
            ).mean()
            aucs.append(float(wins))
    return float(np.mean(aucs)) if aucs else None


def apgr(
    strong_share: NDArray[np.float64], quality: NDArray[np.float64], weak: float, strong: float
) -> float:
    """Average performance gap recovered over strong-call shares from 0 to 1."""
    gap = (quality - weak) / (strong - weak) if strong != weak else np.zeros_like(quality)
    order = np.argsort(strong_share)
    xs = np.concatenate([[0.0], strong_share[order], [1.0]])
    ys = np.concatenate([[0.0], np.maximum.accumulate(gap[order]), [1.0]])
    return float(np.trapezoid(ys, xs))


def cpt(
    strong_share: NDArray[np.float64],
    quality: NDArray[np.float64],
    weak: float,
    strong: float,
    x: float,
) -> float | None:
    """The least share of strong calls that recovers ``x`` of the weak-strong gap.

    Between two router settings a mix of both is possible, so the curve is interpolated.
    """
    gap = (quality - weak) / (strong - weak) if strong != weak else np.ones_like(quality)
    order = np.argsort(strong_share)
    shares, gaps = strong_share[order], np.maximum.accumulate(gap[order])
    if gaps.size == 0 or gaps[-1] < x - 1e-9:
        return None
    i = int(np.argmax(gaps >= x - 1e-9))
    if i == 0 or gaps[i] == gaps[i - 1]:
        return float(shares[i])
    t = (x - gaps[i - 1]) / (gaps[i] - gaps[i - 1])
    return float(shares[i - 1] + t * (shares[i] - shares[i - 1]))


def plain_knn(profiles: LearnedProfiles, embeddings: NDArray[np.float32]) -> tuple[Matrix, Matrix]:
    """The kNN baseline: per model, the cosine-weighted mean label (and cost) of the
    ``PLAIN_KNN_K`` most similar labelled prompts; a model unlabelled there gets its mean."""
    index = NeighbourIndex.build(np.asarray(profiles.embeddings), exact=True)
    rows, sims = index.search(embeddings, PLAIN_KNN_K)
    weights = np.clip(sims, 1e-6, None)[:, :, None]
    out = []
    for table in (np.asarray(profiles.scores), np.asarray(profiles.costs)):
        values = table[rows].astype(np.float64)
        known = np.isfinite(values)
        total = (weights * known).sum(axis=1)
        summed = (weights * np.where(known, values, 0.0)).sum(axis=1)
        column_known = np.isfinite(table)
        fallback = np.where(column_known, table, 0.0).sum(axis=0) / np.maximum(
            column_known.sum(axis=0), 1
        )
        out.append(np.where(total > 0, summed / np.maximum(total, 1e-12), fallback))
    return out[0], out[1]

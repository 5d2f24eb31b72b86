"""``switchboard calibrate``: the cost weight that meets a budget on a sample of your traffic.

Given labelled traffic (the shared JSONL format), predictions come either from existing
profiles or, without them, from 5-fold cross-validation on the sample itself. The cost weight is
then the smallest one whose picks meet the target: mean cost per query at most
``target_cost_usd``, or at most ``strong_share`` of calls to the strongest model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.choice import choose_batch
from app.evaluation import Matrix, sweep_weights
from app.labelled import Labelled


@dataclass(frozen=True)
class Calibration:
    cost_weight: float
    mean_cost_usd: float
    mean_quality: float
    strong_share: float
    strong_model: str
    met: bool


def _outcome(
    data: Labelled, quality: Matrix, cost: Matrix, weight: float
) -> tuple[float, float, np.ndarray]:
    eligible = np.isfinite(data.scores)
    pick = choose_batch(quality, cost, weight, eligible)
    rows = np.arange(len(pick))
    true_cost = np.nan_to_num(data.costs[rows, pick]) if data.has_costs else cost[rows, pick]
    return float(np.mean(true_cost)), float(np.mean(data.scores[rows, pick])), pick


def calibrate(
    data: Labelled,
    quality: Matrix,
    cost: Matrix,
    *,
    target_cost_usd: float | None = None,
    strong_share: float | None = None,
) -> Calibration:
    if (target_cost_usd is None) == (strong_share is None):
        raise ValueError("give exactly one of target_cost_usd and strong_share")
    strong = int(np.nanargmax(np.nanmean(data.scores, axis=0)))
    weights = np.sort(
        np.concatenate([sweep_weights(np.nan_to_num(cost)), np.geomspace(1e-2, 1e6, 200)])
    )
    chosen = None
    for weight in weights:  # increasing: quality falls, cost falls; take the first that fits
        mean_cost, mean_quality, pick = _outcome(data, quality, cost, float(weight))
        share = float(np.mean(pick == strong))
        fits = (
            mean_cost <= target_cost_usd
            if target_cost_usd is not None
            else share <= (strong_share or 0)
        )
        if fits:
            chosen = Calibration(
                float(weight), mean_cost, mean_quality, share, data.models[strong], True
            )
            break
    if chosen is None:  # even the cheapest setting misses: say so, with the cheapest setting
        weight = float(weights[-1])
        mean_cost, mean_quality, pick = _outcome(data, quality, cost, weight)
        chosen = Calibration(weight, mean_cost, mean_quality, float(np.mean(pick == strong)),
                             data.models[strong], False)  # fmt: skip
    return chosen

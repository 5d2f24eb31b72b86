"""``switchboard calibrate``: the cost weight that meets a budget on a sample of your traffic.

Given labelled traffic (the shared JSONL format), predictions come either from existing
profiles or, without them, from 5-fold cross-validation on the sample itself. The cost weight is
then the smallest one whose picks meet the target: mean cost per query at most
``target_cost_usd``, or at most ``strong_share`` of calls to the strongest model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.offline.evaluation import Matrix, sweep_weights
from app.selection.labelled import Labelled
from app.selection.utility import choose_batch

BISECTIONS = 24


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
    """The smallest cost weight whose picks meet the target, refined by bisection.

    Mean cost and strong share fall, in steps, as the weight grows; the smallest weight that
    fits keeps the most quality within the budget.
    """
    if (target_cost_usd is None) == (strong_share is None):
        raise ValueError("give exactly one of target_cost_usd and strong_share")
    strong = int(np.nanargmax(np.nanmean(data.scores, axis=0)))

    def result(weight: float) -> Calibration:
        mean_cost, mean_quality, pick = _outcome(data, quality, cost, weight)
        share = float(np.mean(pick == strong))
        fits = (
            mean_cost <= target_cost_usd + 1e-12
            if target_cost_usd is not None
            else share <= (strong_share or 0.0) + 1e-12
        )
        return Calibration(weight, mean_cost, mean_quality, share, data.models[strong], fits)

    weights = np.sort(
        np.concatenate([sweep_weights(np.nan_to_num(cost)), np.geomspace(1e-2, 1e6, 200)])
    )
    below = None
    for weight in weights:  # increasing: cost falls; the first that fits keeps most quality
        found = result(float(weight))
        if found.met:
            break
        below = float(weight)
    else:  # even the cheapest setting misses: say so, with the cheapest setting
        return found
    if below is None:
        return found
    above = found.cost_weight
    for _ in range(BISECTIONS):
        middle = float(np.sqrt(max(below, 1e-9) * above))
        probe = result(middle)
        if probe.met:
            above, found = middle, probe
        else:
            below = middle
    return found

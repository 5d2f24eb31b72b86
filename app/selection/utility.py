"""Choosing among models: presets, utility, and the ranking both the service and batch use.

``utility = quality - cost_weight * cost`` (quality in [0, 1], cost in USD per call); the
eligible model with the highest utility wins and near-ties (within ``TIE``) go to the cheaper
model. An unknown (NaN) cost counts as 0: callers price calls from the catalog before choosing.

Presets are cost weights, i.e. how many USD per call one whole unit of quality is worth to you
(``1 / cost_weight``). Reading them as "one percentage point of expected quality is worth ...":

- ``quality`` = 0: the best predicted model, whatever it costs; cost only breaks ties.
- ``balanced`` = 20: a point is worth $0.0005 per call ($0.50 per thousand calls), about what
  late-2023 list prices charge for going from a 7B-class model to GPT-4 on a short prompt,
  divided by the quality gap. In 5-fold CV on routerbench_train it keeps 97% of GPT-4's score
  (0.851 vs 0.879) at 39% of its cost; weights of 10-30 trace the knee of the curve.
- ``cheap`` = 200: a point is worth $0.00005 per call: 0.803 at $0.00034 per call in the same
  CV, better than every single model but GPT-4 at 1/15 of GPT-4's cost. Beyond ~300 the router
  drifts to the very cheapest models and quality falls off a cliff.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

PRESETS: dict[str, float] = {"quality": 0.0, "balanced": 20.0, "cheap": 200.0}
DEFAULT_PRESET = "balanced"
TIE = 1e-9

Floats = NDArray[np.float64]


def utility(quality: Floats, cost: Floats, cost_weight: float) -> Floats:
    """``quality - cost_weight * cost``, with unknown costs counted as 0."""
    result: Floats = np.asarray(quality, dtype=np.float64) - cost_weight * np.nan_to_num(
        np.asarray(cost, dtype=np.float64)
    )
    return result


def rank(quality: Floats, cost: Floats, cost_weight: float) -> list[int]:
    """Indices of the models, best utility first; near-ties broken toward lower cost."""
    value = np.round(utility(quality, cost, cost_weight) / TIE)
    order = np.lexsort((np.nan_to_num(np.asarray(cost, dtype=np.float64)), -value))
    return [int(i) for i in order]


def choose(quality: Floats, cost: Floats, cost_weight: float, eligible: NDArray[np.bool_]) -> int:
    """The index of the best eligible model for one query (-1 when none is eligible)."""
    picks = choose_batch(
        np.atleast_2d(quality), np.atleast_2d(cost), cost_weight, np.atleast_2d(eligible)
    )
    return int(picks[0])


def choose_batch(
    quality: Floats, cost: Floats, cost_weight: float, eligible: NDArray[np.bool_]
) -> NDArray[np.int64]:
    """``choose`` for many queries at once, (n, M) -> (n,) indices (-1 where none is eligible)."""
    value = np.where(eligible, utility(quality, cost, cost_weight), -np.inf)
    best = value.max(axis=1, keepdims=True)
    ties = eligible & (value >= best - TIE)
    picks = np.argmin(np.where(ties, np.nan_to_num(np.asarray(cost, dtype=np.float64)), np.inf), 1)
    return np.where(eligible.any(axis=1), picks, -1).astype(np.int64)

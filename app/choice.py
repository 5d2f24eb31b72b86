"""Choosing among models: presets, utility, and the ranking both the service and batch use.

utility = quality - cost_weight * cost (cost in USD per call). Ties go to the cheaper model.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

PRESETS: dict[str, float] = {"quality": 0.0, "balanced": 20.0, "cheap": 200.0}
DEFAULT_PRESET = "balanced"
_TIE = 1e-9


def rank(quality: NDArray[np.float64], cost: NDArray[np.float64], cost_weight: float) -> list[int]:
    """Indices of the models, best utility first; near-ties broken toward lower cost."""
    utility = quality - cost_weight * cost
    order = np.lexsort((cost, -np.round(utility / _TIE) * _TIE))
    return [int(i) for i in order]


def choose(
    quality: NDArray[np.float64],
    cost: NDArray[np.float64],
    cost_weight: float,
    eligible: NDArray[np.bool_],
) -> int:
    """The index of the best eligible model (-1 when none is eligible)."""
    if not eligible.any():
        return -1
    utility = np.where(eligible, quality - cost_weight * cost, -np.inf)
    best = utility.max()
    ties = np.flatnonzero(eligible & (utility >= best - _TIE))
    return int(ties[np.argmin(cost[ties])])


def choose_batch(
    quality: NDArray[np.float64],
    cost: NDArray[np.float64],
    cost_weight: float,
    eligible: NDArray[np.bool_],
) -> NDArray[np.int64]:
    """``choose`` for many queries at once: one index per row (-1 where none is eligible)."""
    utility = np.where(eligible, quality - cost_weight * np.nan_to_num(cost), -np.inf)
    best = utility.max(axis=1, keepdims=True)
    ties = eligible & (utility >= best - _TIE)
    picks = np.argmin(np.where(ties, np.nan_to_num(cost), np.inf), axis=1)
    return np.where(eligible.any(axis=1), picks, -1).astype(np.int64)

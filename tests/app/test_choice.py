"""Choosing a model: the utility trade-off, ties, eligibility, and presets."""

from __future__ import annotations

import numpy as np

from app.selection.utility import DEFAULT_PRESET, PRESETS, choose, choose_batch, rank

QUALITY = np.array([0.8, 0.8, 0.9])
COST = np.array([0.01, 0.001, 0.5])


def test_ties_go_to_the_cheaper_model_and_ineligible_models_never_win() -> None:
    assert choose(QUALITY, COST, 0.0, np.array([True, True, False])) == 1
    assert choose(QUALITY, COST, 0.0, np.array([True, True, True])) == 2
    assert choose(QUALITY, COST, 0.0, np.zeros(3, dtype=bool)) == -1
    assert rank(QUALITY, COST, 0.0) == [2, 1, 0]


def test_presets_trade_quality_for_cost_in_order() -> None:
    assert DEFAULT_PRESET == "balanced" and PRESETS["quality"] == 0.0
    assert PRESETS["quality"] < PRESETS["balanced"] < PRESETS["cheap"]
    quality = np.array([0.88, 0.85, 0.74])  # a GPT-4-like, a mid model, a small one
    cost = np.array([0.005, 0.0015, 0.0003])
    everyone = np.ones(3, dtype=bool)
    picks = [choose(quality, cost, PRESETS[name], everyone) for name in PRESETS]
    assert picks == [0, 1, 2]


def test_batch_choice_equals_one_by_one_choice() -> None:
    rng = np.random.default_rng(0)
    quality, cost = rng.random((200, 5)), rng.random((200, 5)) * 0.01
    eligible = rng.random((200, 5)) < 0.7
    batch = choose_batch(quality, cost, 20.0, eligible)
    single = [choose(q, c, 20.0, e) for q, c, e in zip(quality, cost, eligible, strict=True)]
    assert batch.tolist() == single
    assert all(p == -1 for p, e in zip(batch, eligible, strict=True) if not e.any())


def test_unknown_cost_counts_as_free_instead_of_breaking_the_choice() -> None:
    assert choose(np.array([0.5, 0.6]), np.array([np.nan, 0.001]), 20.0, np.ones(2, bool)) == 1


def test_the_service_ranking_and_the_batch_choice_agree() -> None:
    """The service ranks (its first is the pick, the rest fallbacks); batch predict chooses."""
    rng = np.random.default_rng(1)
    for _ in range(200):
        quality = np.round(rng.random(6), 2)  # rounded: ties happen
        cost = rng.choice([0.0001, 0.001, 0.005], 6)
        weight = float(rng.choice(list(PRESETS.values())))
        assert rank(quality, cost, weight)[0] == choose(quality, cost, weight, np.ones(6, bool))

"""Evaluation maths: hull, AIQ, oracle, APGR and CPT on cases whose answers are known."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from app.offline import evaluation as ev


def test_hull_is_non_decreasing_and_convex() -> None:
    points = [
        ev.Point(1, 0.5),
        ev.Point(2, 0.9),
        ev.Point(3, 0.7),
        ev.Point(1.5, 0.6),
        ev.Point(2.5, 0.95),
    ]
    top = ev.hull(points)
    assert [p.cost for p in top] == [1, 2, 2.5]
    assert all(a.quality < b.quality for a, b in itertools.pairwise(top))


def test_aiq_of_a_flat_line_is_its_height_and_mixing_is_linear() -> None:
    assert abs(ev.aiq([ev.Point(1, 0.7), ev.Point(3, 0.7)], 1, 3) - 0.7) < 1e-9
    # two models at (1, 0.5) and (3, 0.9): random mixes give the straight line, area 0.7
    assert abs(ev.aiq([ev.Point(1, 0.5), ev.Point(3, 0.9)], 1, 3) - 0.7) < 1e-6
    # a router reaching 0.9 already at cost 1 dominates: AIQ 0.9
    assert abs(ev.aiq([ev.Point(1, 0.9)], 1, 3) - 0.9) < 1e-9


def test_cost_and_quality_lookups_on_the_hull() -> None:
    points = [ev.Point(1, 0.5), ev.Point(3, 0.9)]
    assert abs(ev.quality_at_cost(points, 2) - 0.7) < 1e-9
    assert abs((ev.cost_at_quality(points, 0.7) or 0) - 2) < 1e-9
    assert ev.cost_at_quality(points, 0.95) is None


def test_oracle_picks_the_cheapest_correct_model() -> None:
    scores = np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
    costs = np.array([[1.0, 5.0], [1.0, 5.0], [1.0, 5.0]])
    oracle = ev.oracle(scores, costs)
    assert abs(oracle.quality - 2 / 3) < 1e-9
    assert abs(oracle.cost - (1 + 5 + 1) / 3) < 1e-9


def test_random_routing_has_apgr_one_half_and_cpt50_one_half() -> None:
    share = np.linspace(0, 1, 11)
    quality = 0.5 + 0.4 * share  # weak 0.5, strong 0.9, linear in the share: random mixing
    assert abs(ev.apgr(share, quality, 0.5, 0.9) - 0.5) < 0.01
    assert abs((ev.cpt(share, quality, 0.5, 0.9, 0.5) or 0) - 0.5) < 1e-9
    better = np.minimum(0.9, 0.5 + 0.8 * share)
    assert ev.apgr(share, better, 0.5, 0.9) > 0.7


def test_plain_knn_averages_the_nearest_labels_by_similarity() -> None:
    from app.selection.profiles import LearnedProfiles

    vectors = np.eye(4, dtype=np.float32)
    scores = np.array([[1, 0], [1, 0], [0, 1], [0, np.nan]], dtype=np.float32)
    costs = np.full_like(scores, 0.002)
    profiles = LearnedProfiles(["a", "b"], "enc", vectors, scores, costs, np.ones(4, np.float32))
    query = np.array([[0.9, 0.1, 0.0, 0.0]], dtype=np.float32)
    quality, cost = ev.plain_knn(profiles, query / np.linalg.norm(query))
    assert quality[0, 0] > quality[0, 1]
    assert np.allclose(cost, 0.002)


def test_report_orders_oracle_router_and_random_as_a_user_would_expect() -> None:
    from app.offline.report import build_report
    from app.selection.labelled import Labelled

    rng = np.random.default_rng(0)
    n = 400
    kind = rng.integers(0, 2, n)  # the weak model is right on kind 0 only
    scores = np.stack([np.ones(n), (kind == 0).astype(float)], axis=1)
    costs = np.tile([0.01, 0.001], (n, 1))
    data = Labelled([str(i) for i in range(n)], ["p"] * n, ["strong", "weak"], scores, costs,
                    ["x"] * n)  # fmt: skip
    informed = (scores * 0.8 + 0.1, costs)  # knows which prompts the weak model gets right
    clueless = (np.tile([0.9, 0.5], (n, 1)), costs)
    report = build_report(data, informed, clueless)
    m = report.metrics
    assert report.oracle.quality >= max(p.quality for p in report.router) - 1e-9
    assert m["AIQ router"] > m["AIQ single-model hull (random mixes)"] - 1e-9
    assert m["AIQ plain kNN"] == pytest.approx(m["AIQ single-model hull (random mixes)"], abs=0.01)
    assert m["APGR"] > 0.7 and (m["CPT(50%)"] or 1) < 0.3  # random: 0.5 and 50%
    needed = 0.01 * kind.mean() + 0.001 * (1 - kind.mean())  # strong only where weak fails
    assert m["router cost at best single's quality (USD)"] == pytest.approx(needed)


def test_task_mix_bound_sends_each_task_to_its_best_model_for_the_weight() -> None:
    # Model 0 is right on task "a" only, model 1 on "b" only; model 0 costs 10x more.
    scores = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    costs = np.array([[0.01, 0.001]] * 4)
    tasks = ["a", "a", "b", "b"]
    free, expensive = ev.task_mix_curve(scores, costs, tasks, np.array([0.0, 1000.0]))
    assert (free.quality, free.cost) == (1.0, pytest.approx(0.0055))  # each task to its model
    assert (expensive.quality, expensive.cost) == (0.5, pytest.approx(0.001))  # all to model 1


def test_within_task_auc_ignores_which_task_a_prompt_is_from() -> None:
    scores = np.array([[1.0], [0.0], [1.0], [0.0]])
    tasks = ["a", "a", "b", "b"]
    knows_hardness = np.array([[0.9], [0.8], [0.3], [0.2]])  # right ones higher in each task
    knows_only_task = np.array([[0.9], [0.9], [0.2], [0.2]])
    assert ev.within_task_auc(knows_hardness, scores, tasks) == 1.0
    assert ev.within_task_auc(knows_only_task, scores, tasks) == 0.5

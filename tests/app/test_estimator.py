"""The estimator routes by topic, stays calibrated where data is thin, and takes new models."""

from __future__ import annotations

import numpy as np
import pytest

from app.embedding.encoder import Encoder, load_encoder
from app.errors import ConfigError
from app.selection.estimator import Estimator
from app.selection.neighbours import NeighbourIndex
from app.selection.profiles import DeclaredProfile, LearnedProfiles
from app.selection.utility import PRESETS, choose
from tests.processes import CACHE

CODE = [
    "Write a Python function that reverses a linked list.",
    "Implement binary search in Python and return the index.",
    "Write a function to merge two sorted lists in Python.",
    "Write Python code that parses a CSV file and sums a column.",
    "Implement a Python class for a stack with push and pop.",
    "Write a recursive Python function for the Fibonacci numbers.",
]
COOKING = [
    "How long should I boil an egg for a runny yolk?",
    "What can I use instead of buttermilk in pancakes?",
    "How do I keep basil fresh for longer?",
    "What temperature should I roast a chicken at?",
    "How do I make a simple tomato sauce for pasta?",
    "Why does my bread not rise?",
]
NEW_CODE = "Write a Python function that checks if a string is a palindrome."
NEW_COOKING = "How do I stop pasta from sticking together?"


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return load_encoder(cache_dir=CACHE)


@pytest.fixture(scope="module")
def profiles(encoder: Encoder) -> LearnedProfiles:
    """'coder' is right on code and wrong on cooking; 'chef' the opposite; both cost the same."""
    prompts = CODE + COOKING
    scores = np.array([[1.0, 0.0]] * len(CODE) + [[0.0, 1.0]] * len(COOKING), dtype=np.float32)
    return LearnedProfiles(
        models=["coder", "chef"],
        embedding_model=encoder.model_id,
        embeddings=encoder.encode(prompts),
        scores=scores,
        costs=np.full_like(scores, 0.001),
        tokens=np.full(len(prompts), 20, dtype=np.float32),
    )


def _estimator(
    profiles: LearnedProfiles, encoder: Encoder, **declared: DeclaredProfile
) -> Estimator:
    return Estimator(profiles, declared, {"coder": "coder", "chef": "chef"}, encoder)


def test_new_queries_go_to_the_model_good_at_their_topic(
    profiles: LearnedProfiles, encoder: Encoder
) -> None:
    estimator = _estimator(profiles, encoder)
    prediction = estimator.predict(encoder.encode([NEW_CODE, NEW_COOKING]), np.array([20.0, 20.0]))
    assert prediction.models == ["coder", "chef"]
    everyone = np.ones(2, dtype=bool)
    weight = PRESETS["balanced"]
    assert choose(prediction.quality[0], prediction.cost[0], weight, everyone) == 0
    assert choose(prediction.quality[1], prediction.cost[1], weight, everyone) == 1
    assert np.all((prediction.quality >= 0) & (prediction.quality <= 1))
    assert np.allclose(prediction.cost, 0.001, rtol=1e-3)


def test_thin_evidence_stays_near_the_prior(encoder: Encoder) -> None:
    """One lucky label must not make a model look perfect, nor one unlucky label useless."""
    prompts = CODE + COOKING
    scores = np.full((len(prompts), 3), 0.5, dtype=np.float32)
    scores[:, 1:] = np.nan
    scores[0, 1] = 1.0  # "lucky" was labelled once, and was right
    scores[0, 2] = 0.0  # "unlucky" was labelled once, and was wrong
    profiles = LearnedProfiles(["steady", "lucky", "unlucky"], encoder.model_id,
                               encoder.encode(prompts), scores, np.full_like(scores, np.nan),
                               np.ones(len(prompts), dtype=np.float32))  # fmt: skip
    estimator = Estimator(profiles, {}, {m: m for m in profiles.models}, encoder)
    prediction = estimator.predict(encoder.encode([CODE[0] + " Add tests."]), np.array([10.0]))
    support, quality = prediction.support[0], prediction.quality[0]
    assert support[1] < 1.0 < support[0]  # one (near) match against a dozen
    assert 0.5 < quality[1] < 0.85 and 0.15 < quality[2] < 0.5  # moved, but shrunk
    assert np.isnan(prediction.cost).all()  # no cost data: the selector prices tokens


def test_unfamiliar_queries_fall_back_to_each_models_overall_level(
    profiles: LearnedProfiles, encoder: Encoder
) -> None:
    skewed = LearnedProfiles(profiles.models, profiles.embedding_model, profiles.embeddings,
                             profiles.scores.copy(), profiles.costs, profiles.tokens)  # fmt: skip
    skewed.scores[: len(CODE) // 2, 1] = 1.0  # chef is right on some code too: better overall
    estimator = Estimator(skewed, {}, {"coder": "coder", "chef": "chef"}, encoder)
    quality = estimator.predict(encoder.encode(["Qui a gagné la Coupe du monde 1998 ?"]), [9.0])
    priors = skewed.priors
    assert np.allclose(quality.quality[0], priors, atol=0.1)
    assert quality.quality[0, 1] > quality.quality[0, 0]


def test_cost_follows_prompt_length(encoder: Encoder) -> None:
    prompts = CODE + COOKING
    tokens = np.arange(1, len(prompts) + 1, dtype=np.float32) * 100
    costs = (1e-5 * tokens)[:, None].astype(np.float32)  # $10 per million input tokens
    profiles = LearnedProfiles(["m"], encoder.model_id, encoder.encode(prompts),
                               np.ones_like(costs), costs, tokens)  # fmt: skip
    estimator = Estimator(profiles, {}, {"m": "m"}, encoder)
    short, long = estimator.predict(encoder.encode([NEW_CODE] * 2), np.array([200.0, 1000.0])).cost
    assert short[0] == pytest.approx(0.002, rel=0.1) and long[0] == pytest.approx(0.01, rel=0.1)


def test_declared_profile_follows_its_examples_within_bounds(
    profiles: LearnedProfiles, encoder: Encoder
) -> None:
    newcomer = DeclaredProfile(prior_quality=0.5, good_at=["Translate this sentence into French."],
                               bad_at=["Write a Python function to sort a list."])  # fmt: skip
    estimator = _estimator(profiles, encoder, newcomer=newcomer)
    assert estimator.models == ["coder", "chef", "newcomer"]
    assert estimator.has_profile("newcomer") and not estimator.has_profile("nobody")
    queries = ["How do I say good morning in French?", "Write Python code to sort a dictionary.",
               "What temperature should I roast a chicken at?"]  # fmt: skip
    prediction = estimator.predict(encoder.encode(queries), np.zeros(3))
    french, sorting, chicken = prediction.quality[:, 2]
    assert french > 0.55 and sorting < 0.45 and abs(chicken - 0.5) < 0.05
    assert np.all(np.abs(prediction.quality[:, 2] - 0.5) <= 0.3 + 1e-9)
    assert np.isnan(prediction.cost[:, 2]).all()  # priced from the catalog by the caller


def test_models_join_by_alias_without_rebuilding(
    profiles: LearnedProfiles, encoder: Encoder
) -> None:
    estimator = Estimator(profiles, {}, {"coder-v2": "coder", "missing": "nobody"}, encoder)
    assert estimator.models == ["coder-v2"]
    declared_only = Estimator(None, {"fresh": DeclaredProfile(prior_quality=0.7)}, {}, encoder)
    assert declared_only.predict(encoder.encode([NEW_CODE]), [5.0]).quality[0, 0] == 0.7


def test_profiles_from_another_embedding_model_are_refused(profiles: LearnedProfiles) -> None:
    other = LearnedProfiles(profiles.models, "some-other-model", profiles.embeddings,
                            profiles.scores, profiles.costs, profiles.tokens)  # fmt: skip
    with pytest.raises(ConfigError, match="rebuild"):
        Estimator(other, {}, {"coder": "coder"}, load_encoder(cache_dir=CACHE))


def test_feedback_moves_predictions_boundedly_and_resets(
    profiles: LearnedProfiles, encoder: Encoder
) -> None:
    estimator = _estimator(profiles, encoder)
    query = encoder.encode([NEW_CODE])
    before = estimator.predict(query, [20.0]).quality[0, 0]
    estimator.add_observations(np.repeat(query, 3, axis=0), ["coder"] * 3, [0.0] * 3, weight=50)
    after = estimator.predict(query, [20.0]).quality[0, 0]
    assert after < before - 0.1  # three failures on this very prompt count
    assert after > 0.2  # but no more than three labelled prompts would
    estimator.reset_observations("coder")
    assert estimator.predict(query, [20.0]).quality[0, 0] == pytest.approx(before)


def test_ivf_index_finds_the_same_neighbours_as_exact_search() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(50, 32))
    vectors = centres[rng.integers(0, 50, 30_000)] + 0.3 * rng.normal(size=(30_000, 32))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    ivf, exact = NeighbourIndex.build(vectors), NeighbourIndex.build(vectors, exact=True)
    assert ivf.centroids is not None and exact.centroids is None
    queries = vectors[:20] + 0.01
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    found, _ = ivf.search(queries, 10)
    truth, _ = exact.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)])
    assert recall > 0.9


def test_feedback_arriving_point_by_point_moves_the_prediction_and_resets_per_model(
    profiles: LearnedProfiles, encoder: Encoder
) -> None:
    estimator = _estimator(profiles, encoder)
    query = encoder.encode([NEW_COOKING])
    before = estimator.predict(query, [20.0]).quality[0]
    estimator.add_observations(query, ["coder"], [1.0], sources=["another key"])
    for _ in range(2000):
        estimator.add_observations(query, ["chef"], [0.0], weight=0.3)
    moved = estimator.predict(query, [20.0]).quality[0]
    assert moved[1] < before[1] - 0.3 and moved[0] > before[0]
    estimator.reset_observations("chef")
    kept = estimator.predict(query, [20.0]).quality[0]
    assert kept[1] == pytest.approx(before[1]) and kept[0] == pytest.approx(moved[0])


def test_profiles_built_with_fp32_are_refused_by_an_int8_encoder(
    profiles: LearnedProfiles,
) -> None:
    fp32 = load_encoder(backend="onnx", cache_dir=CACHE)
    built = LearnedProfiles(profiles.models, fp32.model_id, fp32.encode(CODE + COOKING),
                            profiles.scores, profiles.costs, profiles.tokens)  # fmt: skip
    Estimator(built, {}, {"coder": "coder"}, fp32)  # the same embeddings: accepted
    with pytest.raises(ConfigError, match="rebuild"):
        Estimator(built, {}, {"coder": "coder"}, load_encoder(backend="onnx-int8", cache_dir=CACHE))

"""The estimator routes by topic, stays calibrated where data is thin, and scales."""

from __future__ import annotations

import numpy as np
import pytest

from app.choice import PRESETS, choose, choose_batch, rank
from app.embedding import Encoder, load_encoder
from app.estimator import Estimator, plain_knn
from app.neighbours import NeighbourIndex
from app.profiles import DeclaredProfile, LearnedProfiles, load_profiles, save_profiles
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


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return load_encoder(cache_dir=CACHE)


@pytest.fixture(scope="module")
def profiles(encoder: Encoder) -> LearnedProfiles:
    """Model 'coder' is right on code and wrong on cooking; 'chef' the opposite."""
    prompts = CODE + COOKING
    scores = np.array([[1.0, 0.0]] * len(CODE) + [[0.0, 1.0]] * len(COOKING), dtype=np.float32)
    costs = np.full_like(scores, 0.001)
    return LearnedProfiles(
        models=["coder", "chef"],
        embedding_model=encoder.model_id,
        embeddings=encoder.encode(prompts),
        scores=scores,
        costs=costs,
        tokens=np.full(len(prompts), 20, dtype=np.float32),
    )


def _estimator(
    profiles: LearnedProfiles, encoder: Encoder, **declared: DeclaredProfile
) -> Estimator:
    aliases = {"coder": "coder", "chef": "chef"}
    return Estimator(profiles, declared, aliases, encoder)


def test_new_queries_go_to_the_model_good_at_their_topic(
    profiles: LearnedProfiles, encoder: Encoder
) -> None:
    estimator = _estimator(profiles, encoder)
    queries = ["Write a Python function that checks if a string is a palindrome.",
               "How do I stop pasta from sticking together?"]  # fmt: skip
    prediction = estimator.predict(encoder.encode(queries), np.array([20.0, 20.0]))
    assert prediction.models == ["coder", "chef"]
    assert prediction.quality[0, 0] > prediction.quality[0, 1]
    assert prediction.quality[1, 1] > prediction.quality[1, 0]
    assert np.all((prediction.quality >= 0) & (prediction.quality <= 1))
    assert np.allclose(prediction.cost, 0.001)


def test_thin_evidence_stays_near_the_prior(encoder: Encoder) -> None:
    """One lucky label must not make a model look perfect."""
    prompts = CODE + COOKING
    scores = np.full((len(prompts), 2), 0.5, dtype=np.float32)
    scores[:, 1] = np.nan
    scores[0, 1] = 1.0  # "lucky" saw one prompt, right once
    profiles = LearnedProfiles(["steady", "lucky"], encoder.model_id, encoder.encode(prompts),
                               scores, np.full_like(scores, np.nan), np.ones(len(prompts), dtype=np.float32))  # fmt: skip
    estimator = Estimator(profiles, {}, {"steady": "steady", "lucky": "lucky"}, encoder)
    prediction = estimator.predict(encoder.encode([CODE[0]]), np.array([10.0]))
    assert prediction.support[0, 1] < prediction.support[0, 0]
    assert prediction.quality[0, 1] < 0.95  # shrunk, not 1.0
    assert np.isnan(prediction.cost).all()  # no cost data: the selector prices tokens


def test_declared_profile_follows_its_examples(profiles: LearnedProfiles, encoder: Encoder) -> None:
    newcomer = DeclaredProfile(prior_quality=0.5, good_at=["Translate this sentence into French."],
                               bad_at=["Write a Python function to sort a list."])  # fmt: skip
    estimator = Estimator(
        profiles, {"newcomer": newcomer}, {"coder": "coder", "chef": "chef"}, encoder
    )
    assert estimator.models == ["coder", "chef", "newcomer"]
    queries = ["How do I say good morning in French?", "Write Python code to sort a dictionary."]
    quality = estimator.predict(encoder.encode(queries), np.zeros(2)).quality[:, 2]
    assert quality[0] > 0.5 > quality[1]


def test_models_join_without_rebuilding_and_unknown_aliases_are_ignored(
    profiles: LearnedProfiles, encoder: Encoder
) -> None:
    estimator = Estimator(profiles, {}, {"coder-v2": "coder", "missing": "nobody"}, encoder)
    assert estimator.models == ["coder-v2"]


def test_profiles_round_trip(tmp_path, profiles: LearnedProfiles) -> None:  # type: ignore[no-untyped-def]
    save_profiles(profiles, tmp_path / "p")
    loaded = load_profiles(tmp_path / "p")
    assert loaded.models == profiles.models
    assert np.array_equal(loaded.embeddings, profiles.embeddings)
    assert np.allclose(loaded.priors, [0.5, 0.5])


def test_choice_prefers_cheaper_on_ties_and_respects_eligibility() -> None:
    quality = np.array([0.8, 0.8, 0.9])
    cost = np.array([0.01, 0.001, 0.5])
    assert choose(quality, cost, 0.0, np.array([True, True, False])) == 1
    assert choose(quality, cost, 0.0, np.array([True, True, True])) == 2
    assert choose(quality, cost, PRESETS["cheap"], np.array([True, True, True])) == 1
    assert choose(quality, cost, 0.0, np.zeros(3, dtype=bool)) == -1
    assert rank(quality, cost, 0.0)[:2] == [2, 1]
    batch = choose_batch(np.vstack([quality, quality]), np.vstack([cost, cost]), 0.0,
                         np.array([[True, True, False], [False, False, False]]))  # fmt: skip
    assert batch.tolist() == [1, -1]


def test_ivf_index_finds_the_same_neighbours_as_exact_search() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(50, 32))
    vectors = centres[rng.integers(0, 50, 60_000)] + 0.3 * rng.normal(size=(60_000, 32))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    ivf, exact = NeighbourIndex.build(vectors), NeighbourIndex.build(vectors, exact=True)
    assert ivf.centroids is not None and exact.centroids is None
    queries = vectors[:20] + 0.01
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    found, _ = ivf.search(queries, 10)
    truth, _ = exact.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)])
    assert recall > 0.9


def test_plain_knn_baseline_is_a_weighted_mean(profiles: LearnedProfiles, encoder: Encoder) -> None:
    quality, cost = plain_knn(profiles, encoder.encode([CODE[0]]))
    assert 0.0 <= quality[0, 1] < quality[0, 0] <= 1.0
    assert np.allclose(cost, 0.001)

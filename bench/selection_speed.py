"""Selection time for one query after the embedding, as the labelled set grows.

Synthetic profiles (unit vectors in 384 dimensions, clustered like real prompt embeddings; 11
models with costs) of 10k, 100k and 1M prompts. For each: the index (exact search up to ``EXACT_MAX`` prompts, IVF above), the
one-off index build time (done by ``profiles build`` and stored), the estimator's start-up time,
the median and p99 time of ``Estimator.predict`` + ``choice.rank`` for one query, and the
recall: the share of the exact ``K`` neighbours' kernel weight (what the estimate is made of)
that the index finds. BLAS runs on one thread, as in the service
(``app.services``): per-query work is too small to gain from threads, and loses to them when
the cores are busy.

    .venv/bin/python bench/selection_speed.py [--sizes 10000 100000 1000000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.selection.estimator import Estimator, K, kernel
from app.selection.neighbours import NeighbourIndex
from app.selection.profiles import LearnedProfiles
from app.selection.utility import PRESETS, rank

MODELS = 11
DIM = 384
BLOCK = 100_000


def synthetic(n: int, rng: np.random.Generator) -> LearnedProfiles:
    """Topics > subtopics > prompts, scaled so that neighbourhoods look like real MiniLM ones
    (on routerdc7_train: nearest other prompt at cosine ~0.54, 256th nearest ~0.22)."""
    topics = rng.normal(size=(20, DIM)).astype(np.float32)
    subtopics = topics[rng.integers(0, len(topics), max(1, n // 10))]
    subtopics += rng.normal(size=subtopics.shape).astype(np.float32)
    vectors = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, BLOCK):
        size = min(n, start + BLOCK) - start
        noise = 1.3 * rng.normal(size=(size, DIM)).astype(np.float32)
        block = subtopics[rng.integers(0, len(subtopics), size)] + noise
        vectors[start : start + size] = block / np.linalg.norm(block, axis=1, keepdims=True)
    scores = (rng.random((n, MODELS)) < rng.random(MODELS)).astype(np.float32)
    prices = np.geomspace(1e-4, 5e-3, MODELS, dtype=np.float32)
    costs = (prices * rng.uniform(0.5, 1.5, (n, 1))).astype(np.float32)
    tokens = rng.integers(20, 400, n).astype(np.float32)
    models = [f"m{i}" for i in range(MODELS)]
    return LearnedProfiles(models, "synthetic", vectors, scores, costs, tokens)


def recall(index: NeighbourIndex, vectors: np.ndarray, queries: np.ndarray) -> float:
    """Share of the exact top-``K`` neighbours' kernel weight that the index finds."""
    if index.centroids is None:
        return 1.0
    _, found = index.search(queries, K)
    _, truth = NeighbourIndex(vectors).search(queries, K)
    return float(kernel(found).sum() / kernel(truth).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    threadpool_limits(limits=1, user_api="blas")
    rng = np.random.default_rng(0)
    print(
        "| labelled prompts | index | index build s | start-up s | p50 ms | p99 ms | weight recall |"
    )
    print("|---|---|---|---|---|---|---|")
    for n in args.sizes:
        raw = synthetic(n, rng)
        started = time.perf_counter()
        profiles = raw.indexed()  # what `profiles build` stores
        build = time.perf_counter() - started
        started = time.perf_counter()
        estimator = Estimator(profiles, {}, {m: m for m in profiles.models}, None)
        startup = time.perf_counter() - started
        queries = profiles.embeddings[rng.integers(0, n, args.queries)]
        queries = queries + 0.05 * rng.normal(size=queries.shape).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        tokens = np.array([100.0])
        timings = []
        for query in queries:
            t0 = time.perf_counter()
            prediction = estimator.predict(query[None, :], tokens)
            rank(prediction.quality[0], prediction.cost[0], PRESETS["balanced"])
            timings.append(time.perf_counter() - t0)
        assert profiles.index is not None
        kind = "exact" if profiles.index.centroids is None else "IVF"
        found = recall(profiles.index, np.asarray(profiles.embeddings), queries[:50])
        ms = np.array(timings) * 1000
        print(
            f"| {n:,} | {kind} | {build:.1f} | {startup:.2f} | {np.median(ms):.3f} "
            f"| {np.percentile(ms, 99):.3f} | {found:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

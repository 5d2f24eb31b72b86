"""Selection time for one query after the embedding, as the labelled set grows.

Synthetic profiles (clustered unit vectors in 384 dimensions, 11 models) of 10k, 100k and 1M
prompts; for each, the median and p99 time of ``Estimator.predict`` + ranking for one query,
the index used, and the build time. Exact search below 50k prompts, IVF above.

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
from app.choice import rank
from app.estimator import Estimator
from app.profiles import LearnedProfiles

MODELS = 11
DIM = 384


def synthetic(n: int, rng: np.random.Generator) -> LearnedProfiles:
    centres = rng.normal(size=(200, DIM)).astype(np.float32)
    vectors = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        block = centres[rng.integers(0, 200, stop - start)] + rng.normal(
            size=(stop - start, DIM)
        ).astype(np.float32)
        vectors[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    scores = (rng.random((n, MODELS)) < rng.random(MODELS)).astype(np.float32)
    costs = np.broadcast_to(np.geomspace(1e-4, 5e-3, MODELS, dtype=np.float32), (n, MODELS)).copy()
    tokens = np.full(n, 100, dtype=np.float32)
    return LearnedProfiles(
        [f"m{i}" for i in range(MODELS)], "synthetic", vectors, scores, costs, tokens
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    threadpool_limits(limits=1, user_api="blas")  # as the service runs (app/services.py)
    print("| labelled prompts | index | build s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for n in args.sizes:
        profiles = synthetic(n, rng)
        started = time.perf_counter()
        estimator = Estimator(profiles, {}, {m: m for m in profiles.models}, None)
        build = time.perf_counter() - started
        queries = profiles.embeddings[rng.integers(0, n, args.queries)] + 0.05
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        timings = []
        for query in queries:
            t0 = time.perf_counter()
            prediction = estimator.predict(query[None, :], np.array([100.0]))
            rank(prediction.quality[0], prediction.cost[0], 20.0)
            timings.append(time.perf_counter() - t0)
        learned = estimator._learned
        kind = "IVF" if learned is not None and learned.index.centroids is not None else "exact"
        ms = np.array(timings) * 1000
        print(
            f"| {n:,} | {kind} | {build:.1f} | {np.median(ms):.3f} | {np.percentile(ms, 99):.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

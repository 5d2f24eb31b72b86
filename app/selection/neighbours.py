"""Nearest labelled prompts by cosine similarity: exact search below a size, IVF above it.

Exact search is one matrix-vector product, 0.2-0.4 ms for 10,000 x 384 floats (it reads 15 MB),
and grows linearly. Past ``EXACT_MAX`` prompts an inverted-file (IVF) index keeps a query
sub-linear: up to ``sqrt(n)`` spherical k-means centroids (trained on a sample), every prompt
filed under its nearest centroid, and a query scores only the prompts in the lists of its
``PROBES`` nearest centroids (lists hold at least ``MIN_CANDIDATES / PROBES`` prompts), so
``max(PROBES * sqrt(n), MIN_CANDIDATES)`` dot products plus one per centroid.
Probing fewer candidates than that cost routing accuracy in CV on routerdc7_train.

Rows are kept sorted by list, so each list is a contiguous slice and a probe is one matrix-vector
product without copying. ``build_profiles`` stores profiles in that order, which is why a saved
index needs only its centroids and list offsets (``lists()``), and loads instantly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

EXACT_MAX = 8_192
PROBES = 10
MIN_CANDIDATES = 4_096
TRAIN_SAMPLE = 50_000
KMEANS_ITERATIONS = 8
CHUNK = 65_536

Floats = NDArray[np.float32]
Rows = NDArray[np.int64]


def top_k(sims: Floats, k: int) -> tuple[Rows, NDArray[np.float64]]:
    """Column indices and values of the ``k`` largest entries of each row (unordered)."""
    k = min(k, sims.shape[1])
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    return top.astype(np.int64), np.take_along_axis(sims, top, axis=1).astype(np.float64)


def _top_k_1d(sims: Floats, k: int) -> tuple[Rows, NDArray[np.float64]]:
    k = min(k, len(sims))
    top = np.argpartition(sims, len(sims) - k)[len(sims) - k :]
    return top[None, :].astype(np.int64), sims[top][None, :].astype(np.float64)


def kmeans(vectors: Floats, clusters: int, seed: int = 0) -> Floats:
    """Spherical k-means (cosine), a few Lloyd iterations: enough for coarse quantisation."""
    rng = np.random.default_rng(seed)
    centroids = vectors[rng.choice(len(vectors), clusters, replace=False)].copy()
    for _ in range(KMEANS_ITERATIONS):
        assign = _nearest(vectors, centroids)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assign, vectors)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        empty = norms[:, 0] == 0
        sums[empty] = vectors[rng.choice(len(vectors), int(empty.sum()), replace=False)]
        norms[empty] = 1.0
        centroids = (sums / norms).astype(np.float32)
    return centroids


def list_count(n: int) -> int:
    """About ``sqrt(n)`` lists, but lists of at least ``MIN_CANDIDATES / PROBES`` prompts, so
    that probing ``PROBES`` lists scores about ``MIN_CANDIDATES`` prompts."""
    return max(1, min(int(np.sqrt(n)), n * PROBES // MIN_CANDIDATES))


def _nearest(vectors: Floats, centroids: Floats) -> Rows:
    return np.concatenate(
        [
            np.argmax(vectors[i : i + CHUNK] @ centroids.T, axis=1)
            for i in range(0, len(vectors), CHUNK)
        ]
    ).astype(np.int64)


@dataclass
class NeighbourIndex:
    """Cosine search over ``vectors``; with ``centroids`` the rows are sorted by IVF list.

    ``order`` maps a position in ``vectors`` back to the caller's row (None: the same row).
    """

    vectors: Floats
    centroids: Floats | None = None
    offsets: Rows | None = None  # list j holds rows offsets[j]:offsets[j + 1]
    order: Rows | None = None

    @classmethod
    def build(cls, vectors: Floats, exact: bool = False) -> NeighbourIndex:
        """Exact search for small sets (or when asked), else an IVF index over a sorted copy."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n = len(vectors)
        if exact or n <= EXACT_MAX:
            return cls(vectors)
        rng = np.random.default_rng(0)
        sample = vectors[rng.choice(n, min(n, TRAIN_SAMPLE), replace=False)]
        centroids = kmeans(sample, list_count(n))
        assign = _nearest(vectors, centroids)
        order = np.argsort(assign, kind="stable").astype(np.int64)
        offsets = np.searchsorted(assign[order], np.arange(len(centroids) + 1)).astype(np.int64)
        return cls(np.ascontiguousarray(vectors[order]), centroids, offsets, order)

    @classmethod
    def from_lists(
        cls, vectors: Floats, lists: Mapping[str, NDArray[np.generic]]
    ) -> NeighbourIndex:
        """An IVF index over ``vectors`` already sorted by list (as ``profiles`` stores them)."""
        return cls(
            vectors,
            np.asarray(lists["centroids"], dtype=np.float32),
            np.asarray(lists["offsets"], dtype=np.int64),
        )

    def lists(self) -> dict[str, NDArray[np.generic]]:
        """The arrays to store next to the (sorted) vectors; empty for exact search."""
        if self.centroids is None or self.offsets is None:
            return {}
        return {"centroids": self.centroids, "offsets": self.offsets}

    def search(self, queries: Floats, k: int) -> tuple[Rows, NDArray[np.float64]]:
        """Rows and cosine similarities of (up to) the ``k`` most similar prompts, per query.

        Rows whose list had too few prompts are padded with row 0 at similarity -1 (weight ~0).
        """
        queries = np.atleast_2d(queries).astype(np.float32, copy=False)
        if self.centroids is None or self.offsets is None:
            if len(queries) == 1:  # the service's case: one matrix-vector product, 1-D top k
                rows, sims = _top_k_1d(self.vectors @ queries[0], k)
            else:
                rows, sims = top_k(queries @ self.vectors.T, k)
        else:
            rows, sims = self._probe(queries, k, self.offsets)
        return (rows if self.order is None else self.order[rows]), sims

    def _probe(self, queries: Floats, k: int, offsets: Rows) -> tuple[Rows, NDArray[np.float64]]:
        assert self.centroids is not None
        rows = np.zeros((len(queries), k), dtype=np.int64)
        sims = np.full((len(queries), k), -1.0)
        probes = max(PROBES, int(MIN_CANDIDATES * len(self.centroids) / len(self.vectors)))
        nearest, _ = top_k(queries @ self.centroids.T, probes)
        for q, lists in enumerate(nearest):
            starts, stops = offsets[lists], offsets[lists + 1]
            scored = np.concatenate(
                [
                    self.vectors[a:b] @ queries[q]
                    for a, b in zip(starts.tolist(), stops.tolist(), strict=True)
                ]
            )
            if not scored.size:
                continue
            top, top_sims = _top_k_1d(scored, k)
            # candidate j lies in the list whose cumulative end first exceeds j
            lengths = stops - starts
            ends = np.cumsum(lengths)
            which = np.searchsorted(ends, top[0], side="right")
            found = top.shape[1]
            rows[q, :found] = starts[which] + top[0] - (ends[which] - lengths[which])
            sims[q, :found] = top_sims[0]
        return rows, sims

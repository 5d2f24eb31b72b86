"""Feedback at scale: syncing reads only what is new, and one key cannot steer routing alone.

A real ``MemoryStore`` and ``Estimator`` (two declared models at the same prior) behind the
``FeedbackLoop`` the service uses. The store is counted, not replaced: how many records each
sync reads is what shows whether the whole log is replayed per submission.
"""

from __future__ import annotations

import numpy as np

from app.selection.estimator import SHRINK, Estimator, FeedbackBounds
from app.selection.feedback import FeedbackLoop, Verdict, _encode
from app.selection.profiles import DeclaredProfile
from app.state import FeedbackPage
from app.state.memory import MemoryStore

DIM = 8
QUERY = np.eye(DIM, dtype=np.float32)[0]
ELSEWHERE = np.eye(DIM, dtype=np.float32)[5]


class CountingStore(MemoryStore):
    """The in-memory store, counting the feedback records it hands out."""

    def __init__(self, **kwargs: int) -> None:
        super().__init__(**kwargs)
        self.records_read = 0

    async def read_feedback(self, after: int, limit: int) -> FeedbackPage:
        page = await super().read_feedback(after, limit)
        self.records_read += len(page.records)
        return page


def _estimator(bounds: FeedbackBounds | None = None) -> Estimator:
    declared = {m: DeclaredProfile(prior_quality=0.5) for m in ("a", "b")}
    return Estimator(None, declared, {"a": "a", "b": "b"}, None, feedback_bounds=bounds)


def _quality(estimator: Estimator, model: str, where: np.ndarray = QUERY) -> float:
    prediction = estimator.predict(where[None, :], np.array([10]))
    return float(prediction.quality[0, prediction.models.index(model)])


async def _give(loop: FeedbackLoop, n: int, key: str | None, score: float, first: int = 0) -> None:
    for i in range(first, first + n):
        decision_id = f"{key}-{i}"
        payload = {"model": "a", "key": key, "embedding": _encode(QUERY)}
        await loop.store.put_decision(decision_id, payload, 3600)
        assert await loop.submit(decision_id, [Verdict("a", score)], key)


async def test_a_submission_reads_the_new_record_not_the_log() -> None:
    store = CountingStore()
    loop = FeedbackLoop(store, _estimator())
    await _give(loop, 300, "k1", 1.0)
    assert store.records_read == 300  # each submission read its own record once
    before = store.records_read
    await _give(loop, 1, "k2", 1.0, first=300)
    assert store.records_read - before == 1
    await loop.sync(force=True)  # nothing new: nothing read
    assert store.records_read - before == 1


async def test_another_worker_catches_up_incrementally_and_follows_a_reset() -> None:
    store = CountingStore()
    writer, reader = FeedbackLoop(store, _estimator()), FeedbackLoop(store, _estimator())
    await _give(writer, 2500, "k", 0.0)  # more than one page
    await reader.sync(force=True)
    assert reader.applied == 2500
    assert _quality(reader.estimator, "a") < 0.5
    await _give(writer, 10, "k", 0.0, first=2500)
    await reader.sync(force=True)
    assert reader.applied == 2510
    await store.clear_feedback()
    await reader.sync(force=True)
    assert _quality(reader.estimator, "a") == 0.5  # back to the built profiles


async def test_one_key_cannot_steer_routing_alone() -> None:
    bounds = FeedbackBounds(per_source=100, total=1000, source_weight=3.0)
    loop = FeedbackLoop(MemoryStore(), _estimator(bounds))
    await _give(loop, 500, "spammer", 0.0)  # 500 thumbs-down for model a on one query
    # unbounded, 500 points of weight 0.3 would pull a to 1/(150 + 2) = 0.007 here;
    # bounded, the key weighs 3 labelled prompts at most: (0 + 2 * 0.5) / (3 + 2) = 0.2
    floor = SHRINK * 0.5 / (bounds.source_weight + SHRINK)
    assert _quality(loop.estimator, "a") >= floor - 1e-9
    assert _quality(loop.estimator, "a", ELSEWHERE) > 0.48  # unrelated queries keep their route
    # other callers still count in full: three agreeing thumbs-up from three keys move it back
    for i, key in enumerate(["k1", "k2", "k3"]):
        await _give(loop, 1, key, 1.0, first=1000 + i)
    assert _quality(loop.estimator, "a") > floor + 0.05


async def test_feedback_points_are_bounded_per_key_and_in_total() -> None:
    bounds = FeedbackBounds(per_source=50, total=120, source_weight=100.0)
    estimator = _estimator(bounds)
    vectors = np.tile(QUERY, (400, 1))
    for key in ("k1", "k2", "k3", "k4"):
        estimator.add_observations(vectors[:100], ["a"] * 100, [1.0] * 100, sources=[key] * 100)
    feedback = estimator._feedback
    assert feedback.live == 120  # the newest 120 of 200 kept points (50 per key)
    kept_keys = np.bincount(feedback.source[feedback.alive])
    assert kept_keys.max() <= 50 and kept_keys[0] == 0  # the oldest key's points went first
    assert feedback.count <= 2 * 120  # and what was dropped is compacted away

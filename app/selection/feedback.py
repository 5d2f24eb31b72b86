"""Feedback that improves routing: decisions remembered, feedback persisted, every worker learns.

Each routed decision is kept (embedding, chosen model, caller) for ``DECISION_TTL_S``. Feedback
on a decision is accepted once (idempotent per decision id), only from the caller that got the
decision, persisted in the store before the 2xx, then applied to the estimator as one labelled
point of bounded weight (``estimator.FEEDBACK_WEIGHT``): enough agreeing feedback moves
similar queries, unrelated queries keep their route, and no single caller can swing routing
with one decision, nor with many: the estimator holds a bounded number of points per caller
(key) and bounds their summed weight (``app.selection.estimator.FeedbackBounds``).

Syncing is incremental: each worker remembers the last position of the store's log it applied
and reads only what came after it (in pages of ``SYNC_PAGE``), so a submission costs the new
record, not a replay of the log. An admin reset starts a new epoch: seeing one (or a log that
went back, as after a Redis restart without persistence) rebuilds once from what the store
holds. Other workers pick new records up within ``SYNC_INTERVAL_S``.
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass

import numpy as np

from app.errors import NotFound, PermissionDenied, RequestError
from app.selection.estimator import Estimator
from app.selection.selector import Decision
from app.state import JsonDict, StateStore, StateUnavailable

log = logging.getLogger(__name__)
DECISION_TTL_S = 24 * 3600.0
SYNC_INTERVAL_S = 1.0
SYNC_PAGE = 1000
POINT_WEIGHT = 0.3
"""One feedback counts as 0.3 of a labelled prompt: a single thumbs-down next to a query cannot
flip a route between models 0.1 apart, three agreeing ones can."""


@dataclass(frozen=True)
class Verdict:
    model: str
    score: float


def _encode(vector: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vector, dtype=np.float32).tobytes()).decode()


def _decode(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.float32)


class FeedbackLoop:
    def __init__(self, store: StateStore, estimator: Estimator) -> None:
        self.store = store
        self.estimator = estimator
        self._epoch: int | None = None
        self._position = 0
        self._synced_at = 0.0
        self.applied = 0
        """Records applied since start-up (a rebuild applies the log again)."""

    async def remember(self, decision: Decision, embedding: np.ndarray, key_id: str | None) -> None:
        """Keep what feedback on this decision will need; a store outage only costs that."""
        if decision.model is None:
            return
        payload: JsonDict = {
            "model": decision.model,
            "key": key_id,
            "embedding": _encode(embedding),
        }
        try:
            await self.store.put_decision(decision.decision_id, payload, DECISION_TTL_S)
        except StateUnavailable:
            log.warning("state store down: decision %s not kept for feedback", decision.decision_id)

    async def _decision(self, decision_id: str) -> JsonDict:
        decision = await self.store.get_decision(decision_id)
        if decision is None:
            raise NotFound(f"no decision {decision_id!r} (unknown or older than a day)",
                           param="decision_id", code="decision_not_found")  # fmt: skip
        return decision

    async def chosen_model(self, decision_id: str) -> str:
        return str((await self._decision(decision_id))["model"])

    async def submit(self, decision_id: str, verdicts: list[Verdict], key_id: str | None) -> bool:
        """Persist and apply feedback; False when this decision already had feedback."""
        decision = await self._decision(decision_id)
        if decision["key"] != key_id:
            raise PermissionDenied(
                "feedback is accepted only from the caller that got the decision"
            )
        unknown = [v.model for v in verdicts if v.model not in self.estimator.models]
        if unknown:
            raise RequestError(f"no profile for model {unknown[0]!r}", param="model")
        record: JsonDict = {"decision_id": decision_id, "key": key_id,
                            "embedding": decision["embedding"],
                            "verdicts": [[v.model, v.score] for v in verdicts]}  # fmt: skip
        if not await self.store.append_feedback(record):
            return False
        await self.sync(force=True)
        return True

    async def sync(self, force: bool = False) -> None:
        """Apply feedback recorded by any worker since the last sync (at most once a second).

        One cheap read when nothing changed; otherwise only the records after the last one
        applied, or, after a reset, everything the store holds, once.
        """
        now = time.monotonic()
        if not force and now - self._synced_at < SYNC_INTERVAL_S:
            return
        self._synced_at = now
        try:
            page = await self.store.read_feedback(self._position, SYNC_PAGE)
            if page.epoch != self._epoch or page.end < self._position:
                self.estimator.reset_observations()
                self._epoch = page.epoch
                if self._position:
                    self._position = 0
                    page = await self.store.read_feedback(0, SYNC_PAGE)
            while True:
                self._apply(page.records)
                self._position = page.start + len(page.records)
                if not page.records or self._position >= page.end:
                    return
                page = await self.store.read_feedback(self._position, SYNC_PAGE)
        except StateUnavailable:
            return

    def _apply(self, records: list[JsonDict]) -> None:
        """Add the records' verdicts to the estimator, in one call (bounds apply once)."""
        vectors, models, scores, sources = [], [], [], []
        for record in records:
            vector = _decode(str(record["embedding"]))
            verdicts = record["verdicts"]
            assert isinstance(verdicts, list), "feedback records are written by submit()"
            key = record.get("key")
            for verdict in verdicts:
                if isinstance(verdict, list):
                    vectors.append(vector)
                    models.append(str(verdict[0]))
                    scores.append(float(str(verdict[1])))
                    sources.append(key if isinstance(key, str) else None)
        self.applied += len(records)
        if models:
            self.estimator.add_observations(
                np.vstack(vectors), models, scores, weight=POINT_WEIGHT, sources=sources
            )

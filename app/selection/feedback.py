"""Feedback that improves routing: decisions remembered, feedback persisted, every worker learns.

Each routed decision is kept (embedding, chosen model, caller) for ``DECISION_TTL_S``. Feedback
on a decision is accepted once (idempotent per decision id), only from the caller that got the
decision, persisted in the store before the 2xx, then applied to the estimator as one labelled
point of bounded weight (``estimator.FEEDBACK_WEIGHT``): enough agreeing feedback moves
similar queries, unrelated queries keep their route, and no single caller can swing routing
with one decision. Other workers pick new records up within ``SYNC_INTERVAL_S``; an admin reset
starts a new epoch that every worker follows back to the built profiles.
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
        self._version: int | None = None
        self._synced_at = 0.0

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
        record: JsonDict = {"decision_id": decision_id, "embedding": decision["embedding"],
                            "verdicts": [[v.model, v.score] for v in verdicts]}  # fmt: skip
        if not await self.store.append_feedback(record):
            return False
        await self.sync(force=True)
        return True

    async def sync(self, force: bool = False) -> None:
        """Apply feedback recorded by any worker since the last sync (at most once a second).

        One cheap read (the log's version) when nothing changed. When it did, the estimator's
        feedback is rebuilt from the whole log: that also follows an admin reset, and applying
        a few thousand points takes milliseconds.
        """
        now = time.monotonic()
        if not force and now - self._synced_at < SYNC_INTERVAL_S:
            return
        self._synced_at = now
        try:
            version = await self.store.feedback_version()
            if version == self._version:
                return
            records = await self.store.load_feedback()
        except StateUnavailable:
            return
        self.estimator.reset_observations()
        self._apply(records)
        self._version = version

    def _apply(self, records: list[JsonDict]) -> None:
        for record in records:
            vector = _decode(str(record["embedding"]))
            verdicts = record["verdicts"]
            assert isinstance(verdicts, list), "feedback records are written by submit()"
            models = [str(v[0]) for v in verdicts if isinstance(v, list)]
            scores = [float(str(v[1])) for v in verdicts if isinstance(v, list)]
            self.estimator.add_observations(
                np.tile(vector, (len(models), 1)), models, scores, weight=POINT_WEIGHT
            )

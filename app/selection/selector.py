"""The Selector: which model answers this request, and why every other one does not.

For one request it (1) works out what the request needs (``app.selection.capabilities``):
required capabilities and fields, and the capabilities the turn classifier inferred; (2) asks
the estimator for each catalog model's predicted quality and cost on the query embedding (every
model has a profile: learned, declared, or the neutral one); (3) applies the constraints
(``app.selection.constraints``); and (4) ranks the eligible models by

    utility = quality - cost_weight * cost + CAPABILITY_BONUS * (confidence in each inferred
                                                                 capability it has)

with ``app.selection.utility`` -- the same ranking batch ``predict`` uses. The ranked list is
the fallback order. An inferred capability never excludes a model: a photo question still gets
an answer when no model can see, and ``unmet_capabilities`` says so.

A follow-up keeps the model that answered the turn it follows when that model is still
eligible and its utility is within ``FOLLOWUP_MARGIN`` of the best: switching models mid-thread
changes the voice of the answers, so it takes a clear gain in quality or cost to switch.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from app.catalog import Catalog, ModelEntry
from app.embedding.encoder import Vectors, count_tokens
from app.errors import RequestError
from app.gateway.latency import LatencyTracker
from app.schemas import ChatRequest
from app.selection.capabilities import Needs, TurnAnalysis, needs, prompt_tokens
from app.selection.constraints import NAMED, Query, exclusion
from app.selection.estimator import Estimator
from app.selection.utility import PRESETS, rank

FOLLOWUP_MARGIN = 0.05
"""Utility a follow-up's previous model may trail the best by and still be kept."""
CAPABILITY_BONUS = 0.5
"""Utility a model gains for each capability the turn was judged to need that it has, times the
classifier's confidence (0.5-1): up to half the whole quality scale, so a model that can see
wins a photo question unless one that cannot is far better and cheaper (at the ``balanced``
cost weight, 0.5 is $0.025 a call)."""
FEEDBACK_MOVED = 0.05
"""Feedback support (in labelled prompts) above which a candidate says feedback moved it."""

Availability = Callable[[ModelEntry], str | None]
"""Returns why a model cannot be called now (missing key, open breaker), or None."""


@dataclass
class Candidate:
    model: str
    quality: float | None
    cost_usd: float
    utility: float | None
    eligible: bool
    reason: str
    source: str = "neutral"
    """Where its quality comes from: ``learned`` (labelled data), ``declared`` (the catalog) or
    ``neutral`` (neither: the profiled models' mean level)."""
    feedback: bool = False
    """Whether feedback near this query moved its quality."""
    bonus: float = 0.0
    """Utility added for inferred capabilities it has (``helped_by``)."""
    helped_by: list[str] = field(default_factory=list)


@dataclass
class Decision:
    decision_id: str
    model: str | None
    capabilities: list[str]
    cost_weight: float
    prompt_tokens: int
    candidates: list[Candidate]
    order: list[str] = field(default_factory=list)
    """Eligible models, best first: the chosen one, then the fallbacks."""
    followup: bool = False
    topic_changed: bool = False
    deadline_s: float | None = None
    unmet_capabilities: list[str] = field(default_factory=list)
    """Inferred needs the chosen model lacks; the turn is answered without them."""

    def candidate(self, model: str) -> Candidate | None:
        return next((c for c in self.candidates if c.model == model), None)


def new_decision_id() -> str:
    return "dec_" + uuid.uuid4().hex


class Selector:
    def __init__(
        self,
        catalog: Catalog,
        estimator: Estimator,
        availability: Availability,
        *,
        default_preset: str = "balanced",
        default_output_tokens: int = 300,
        latency: LatencyTracker | None = None,
    ) -> None:
        self.catalog = catalog
        self.estimator = estimator
        self.availability = availability
        self.latency = latency or LatencyTracker()
        self.default_preset = default_preset
        self.default_output_tokens = default_output_tokens
        self._column = {m: i for i, m in enumerate(estimator.models)}

    def cost_weight(self, request: ChatRequest) -> float:
        prefs = request.switchboard
        if prefs is not None and prefs.cost_weight is not None:
            return prefs.cost_weight
        preset = (prefs.preset if prefs else None) or self.default_preset
        return PRESETS[preset]

    def deadline_s(self, request: ChatRequest, default: float | None = None) -> float | None:
        prefs = request.switchboard
        if prefs is not None and prefs.max_latency_ms is not None:
            seconds = prefs.max_latency_ms / 1000
            return seconds if default is None else min(seconds, default)
        return default

    def check_named(self, entry: ModelEntry, request: ChatRequest) -> None:
        """A request naming ``entry`` is called as asked, or refused with what is missing."""
        need = needs(request, None)
        tokens = prompt_tokens(request, count_tokens)
        query = self._query(request, Needs(need.required, need.fields), tokens, {}, None)
        reason = exclusion(entry, query, NAMED)
        if reason:
            missing = sorted((query.needs.required - set(entry.capabilities))
                             | (query.needs.fields - entry.features))  # fmt: skip
            raise RequestError(
                f"model {entry.id!r} cannot serve this request: {reason}",
                param=missing[0] if missing else "model",
                code="unsupported_field" if missing else "invalid_request",
            )

    def _query(
        self,
        request: ChatRequest,
        need: Needs,
        tokens: int,
        costs: dict[str, float],
        deadline: float | None,
    ) -> Query:
        return Query(request, need, tokens, costs, deadline, self.availability,
                     self.latency.expected_s)  # fmt: skip

    def decide(
        self,
        request: ChatRequest,
        embedding: Vectors,
        turn: TurnAnalysis | None = None,
        *,
        deadline_s: float | None = None,
    ) -> Decision:
        """Rank the catalog for ``request``; ``deadline_s`` is the time the caller can wait."""
        need = needs(request, turn)
        deadline = self.deadline_s(request, deadline_s)
        tokens = prompt_tokens(request, count_tokens)
        prediction = self.estimator.predict(
            embedding[None, :], np.array([tokens], dtype=np.float64)
        )
        weight = self.cost_weight(request)
        output_tokens = min(
            request.output_limit() or self.default_output_tokens, self.default_output_tokens
        )
        entries = self.catalog.models
        costs: dict[str, float] = {}
        qualities: dict[str, float | None] = {}
        for entry in entries:
            col = self._column.get(entry.id)
            qualities[entry.id] = None if col is None else float(prediction.quality[0, col])
            data_cost = np.nan if col is None else float(prediction.cost[0, col])
            costs[entry.id] = (
                data_cost if np.isfinite(data_cost) else entry.cost_usd(tokens, output_tokens)
            )
        query = self._query(request, need, tokens, costs, deadline)
        candidates = []
        for entry in entries:
            quality, col = qualities[entry.id], self._column.get(entry.id)
            reason = exclusion(entry, query) or ("" if quality is not None else "no profile")
            helped: list[str] = [c for c in need.inferred if c in entry.capabilities]
            bonus = round(CAPABILITY_BONUS * sum(need.inferred[c] for c in helped), 6)
            utility = None if quality is None else quality - weight * costs[entry.id] + bonus
            moved = (
                prediction.feedback is not None
                and col is not None
                and float(prediction.feedback[0, col]) > FEEDBACK_MOVED
            )
            candidates.append(Candidate(
                entry.id, quality, costs[entry.id], utility, not reason, reason,
                source=self.estimator.sources.get(entry.id, "neutral"), feedback=moved,
                bonus=bonus, helped_by=helped,
            ))  # fmt: skip
        order = self._rank(candidates)
        kept = self._keep(order, candidates, turn)
        if kept:
            order.remove(kept)
            order.insert(0, kept)
        self._explain(candidates, order, kept)
        chosen = self.catalog.get(order[0]) if order else None
        unmet = [c for c in need.inferred if chosen is not None and c not in chosen.capabilities]
        return Decision(
            decision_id=new_decision_id(),
            model=order[0] if order else None,
            capabilities=sorted(need.required | set(need.inferred)),
            cost_weight=weight,
            prompt_tokens=tokens,
            candidates=sorted(
                candidates,
                key=lambda c: (not c.eligible, -(c.utility if c.utility is not None else -1e9)),
            ),
            order=order,
            followup=turn.followup if turn else False,
            topic_changed=turn.topic_changed if turn else False,
            deadline_s=deadline,
            unmet_capabilities=sorted(unmet),
        )

    @staticmethod
    def _explain(candidates: list[Candidate], order: list[str], kept: str | None) -> None:
        for c in candidates:
            if not c.eligible:
                continue
            if c.model == kept:
                c.reason = "chosen: kept for the follow-up, as on the turn it follows"
            else:
                c.reason = "chosen" if order and c.model == order[0] else "lower utility"
            if c.bonus:
                c.reason += f" (+{c.bonus:g} for inferred {', '.join(sorted(c.helped_by))})"

    @staticmethod
    def _keep(
        order: list[str], candidates: list[Candidate], turn: TurnAnalysis | None
    ) -> str | None:
        """The previous turn's model, if this is its follow-up and it is nearly as good."""
        if turn is None or not turn.followup or not turn.previous_model or not order:
            return None
        if turn.previous_model == order[0] or turn.previous_model not in order:
            return None
        utility = {c.model: c.utility for c in candidates if c.utility is not None}
        best, previous = utility.get(order[0]), utility.get(turn.previous_model)
        if best is None or previous is None or best - previous > FOLLOWUP_MARGIN:
            return None
        return turn.previous_model

    @staticmethod
    def _rank(candidates: list[Candidate]) -> list[str]:
        eligible = [c for c in candidates if c.eligible and c.utility is not None]
        if not eligible:
            return []
        # the bonus and cost are already in the utility: rank by it, ties to the cheaper
        value = np.array([c.utility for c in eligible], dtype=np.float64)
        cost = np.array([c.cost_usd for c in eligible], dtype=np.float64)
        return [eligible[i].model for i in rank(value, cost, 0.0)]

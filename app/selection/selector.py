"""The Selector: which model answers this request, and why every other one does not.

For one request it (1) finds the capabilities the request needs (what it carries, what the
caller asked for, and what the turn classifier says the turn is about), (2) asks the estimator
for each profiled model's predicted quality and cost on the query embedding, (3) applies the
constraints (allow-list, availability, open breaker, capabilities, context window,
``max_cost_usd``, observed latency against the request's deadline, having a profile at all),
and (4) ranks the eligible models by ``quality - cost_weight * cost`` with ``utility``, --
the same function batch ``predict`` uses. The ranked list is the fallback order.

A follow-up keeps the model that answered the turn it follows when that model is still
eligible and its utility is within ``FOLLOWUP_MARGIN`` of the best: switching models mid-thread
changes the voice of the answers, so it takes a clear gain in quality or cost to switch.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from app.catalog import Catalog, ModelEntry
from app.embedding.encoder import Vectors, count_tokens
from app.gateway.latency import LatencyTracker
from app.pipeline.conversation import Turn
from app.schemas import ChatRequest
from app.selection.capabilities import prompt_tokens, required_capabilities
from app.selection.estimator import Estimator
from app.selection.utility import PRESETS, rank

FOLLOWUP_MARGIN = 0.05
"""Utility a follow-up's previous model may trail the best by and still be kept."""

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
    """Inferred needs no eligible model has; the turn is answered without them."""

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
            return prefs.max_latency_ms / 1000
        return default

    def decide(
        self,
        request: ChatRequest,
        embedding: Vectors,
        turn: Turn | None = None,
        *,
        deadline_s: float | None = None,
        may_answer_blind: bool = False,
    ) -> Decision:
        """Rank the catalog for ``request``; ``deadline_s`` is the time the caller can wait.

        ``may_answer_blind``: when no available model has any of the inferred capabilities, let
        a model without them answer (the glasses prefer "I can't see it" to an error) instead
        of leaving the decision empty.
        """
        needed = required_capabilities(request, turn.capabilities if turn else None)
        deadline = self.deadline_s(request, deadline_s)
        tokens = prompt_tokens(request, count_tokens)
        prediction = self.estimator.predict(
            embedding[None, :], np.array([tokens], dtype=np.float64)
        )
        weight = self.cost_weight(request)
        output_tokens = min(
            request.output_limit() or self.default_output_tokens, self.default_output_tokens
        )

        def evaluate(capabilities: list[str]) -> tuple[list[Candidate], list[str]]:
            candidates = []
            for entry in self.catalog.models:
                col = self._column.get(entry.id)
                quality = None if col is None else float(prediction.quality[0, col])
                data_cost = np.nan if col is None else float(prediction.cost[0, col])
                cost = (
                    data_cost if np.isfinite(data_cost) else entry.cost_usd(tokens, output_tokens)
                )
                reason = self._exclusion(
                    entry, request, capabilities, tokens, cost, quality, deadline
                )
                utility = None if quality is None else quality - weight * cost
                candidates.append(Candidate(entry.id, quality, cost, utility, not reason, reason))
            return candidates, self._rank(candidates, weight)

        candidates, order = evaluate(needed)
        unmet: list[str] = []
        if not order and turn is not None:
            for relaxed in self._relaxations(request, needed, turn, may_answer_blind):
                trial = evaluate(relaxed)
                if trial[1]:
                    candidates, order = trial
                    unmet = [c for c in needed if c not in relaxed]
                    needed = relaxed
                    break
        kept = self._keep(order, candidates, turn)
        if kept:
            order.remove(kept)
            order.insert(0, kept)
        for c in candidates:
            if c.eligible and not c.reason:
                if c.model == kept:
                    c.reason = "chosen: kept for the follow-up, as on the turn it follows"
                else:
                    c.reason = "chosen" if order and c.model == order[0] else "lower utility"
        candidates.sort(
            key=lambda c: (not c.eligible, -(c.utility if c.utility is not None else -1e9))
        )
        return Decision(
            decision_id=new_decision_id(),
            model=order[0] if order else None,
            capabilities=needed,
            cost_weight=weight,
            prompt_tokens=tokens,
            candidates=candidates,
            order=order,
            followup=turn.followup if turn else False,
            topic_changed=turn.topic_changed if turn else False,
            deadline_s=deadline,
            unmet_capabilities=unmet,
        )

    @staticmethod
    def _relaxations(
        request: ChatRequest, needed: list[str], turn: Turn, blind: bool
    ) -> list[list[str]]:
        """Smaller capability sets to try when no model has all that the turn was judged to need.

        Only what the turn classifier inferred is given up (what the caller asked for, tools,
        JSON and audio never are), the least certain first: a turn that seems to need both
        vision and fresh facts is better answered by a model that can see, or one that can
        search, than refused. The model then answers without the photo or without a search.
        All of it is given up only when ``blind``: an API caller who sent a photo to ask about
        it gets a clear refusal rather than a model that cannot see it.
        """
        hard = set(required_capabilities(request, ()))
        soft = [c for c in needed if c not in hard]
        if not soft:
            return []
        scores = turn.scores or {}
        soft.sort(key=lambda c: -scores.get(c, 0.0))  # most certain first: kept longest
        relaxed = []
        for size in range(len(soft) - 1, -1 if blind else 0, -1):
            for keep in itertools.combinations(soft, size):
                relaxed.append(sorted(hard | set(keep)))
        return relaxed

    @staticmethod
    def _keep(order: list[str], candidates: list[Candidate], turn: Turn | None) -> str | None:
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

    def _rank(self, candidates: list[Candidate], weight: float) -> list[str]:
        eligible = [c for c in candidates if c.eligible and c.quality is not None]
        if not eligible:
            return []
        quality = np.array([c.quality for c in eligible], dtype=np.float64)
        cost = np.array([c.cost_usd for c in eligible], dtype=np.float64)
        return [eligible[i].model for i in rank(quality, cost, weight)]

    def _exclusion(
        self,
        entry: ModelEntry,
        request: ChatRequest,
        needed: list[str],
        tokens: int,
        cost: float,
        quality: float | None,
        deadline_s: float | None,
    ) -> str:
        """Why ``entry`` may not answer this request; empty when it may."""
        prefs = request.switchboard
        if prefs is not None and prefs.models is not None and entry.id not in prefs.models:
            return "not in the request's allow-list"
        unavailable = self.availability(entry)
        if unavailable:
            return unavailable
        missing = [c for c in needed if c not in entry.capabilities]
        if missing:
            return "lacks capability " + ", ".join(missing)
        if tokens > entry.context_window:
            return f"prompt of ~{tokens} tokens exceeds context window {entry.context_window}"
        if prefs is not None and prefs.max_cost_usd is not None and cost > prefs.max_cost_usd:
            return f"estimated cost ${cost:.6f} exceeds max_cost_usd ${prefs.max_cost_usd:g}"
        expected = self.latency.expected_s(entry.id) if deadline_s is not None else None
        if expected is not None and deadline_s is not None and expected > deadline_s:
            return f"observed median latency {expected:.1f} s exceeds the {deadline_s:g} s deadline"
        if quality is None:
            return "no capability profile (routed only when requested by id)"
        return ""

"""Turning a request into a decision: which models to try, in which order, and why.

``model: "auto"`` asks the selector (after embedding the query and reading the conversation);
a catalog id is that model alone (no silent substitution); anything else is a 404. Every
decision, auto or not, gets a decision id that feedback and the decision log refer to.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from app.catalog import Catalog
from app.embedding.batcher import EmbeddingService
from app.embedding.encoder import count_tokens
from app.errors import ModelNotFound, NoEligibleModel, UpstreamUnavailable
from app.gateway.availability import Availability
from app.metrics import Metrics
from app.pipeline.access import Caller
from app.pipeline.conversation import Conversations
from app.schemas import ChatRequest
from app.selection.capabilities import prompt_tokens
from app.selection.feedback import FeedbackLoop
from app.selection.selector import Decision, Selector, new_decision_id

AUTO_MODELS = frozenset({"auto", "switchboard/auto"})
RETRY_AFTER_S = 5.0
"""What a 503 for a model that is only down for now (restarting, breaker open) tells clients."""


@dataclass
class Routed:
    decision: Decision
    order: list[str]
    routing_s: float

    @property
    def auto(self) -> bool:
        return bool(self.decision.candidates)


class Decider:
    """Decisions for requests (see the module docstring)."""

    def __init__(
        self,
        catalog: Catalog,
        selector: Selector,
        embeddings: EmbeddingService,
        conversations: Conversations,
        feedback: FeedbackLoop,
        availability: Availability,
        metrics: Metrics,
    ) -> None:
        self.catalog = catalog
        self.selector = selector
        self.embeddings = embeddings
        self.conversations = conversations
        self.feedback = feedback
        self.availability = availability
        self.metrics = metrics

    def _coming_back(self, decision: Decision) -> bool:
        """Whether a model down only for now would have been asked (then 503, not 400)."""
        down = {c.model for c in decision.candidates if c.reason.startswith("unavailable")}
        return any(
            self.availability.temporarily_down(entry)
            for entry in self.catalog.models
            if entry.id in down
        )

    def _known(self, request: ChatRequest) -> None:
        if request.model not in AUTO_MODELS and self.catalog.get(request.model) is None:
            raise ModelNotFound(
                f"model {request.model!r} is not in the catalog; use 'auto' or one of "
                "GET /v1/models",
                param="model",
            )

    async def explain(
        self, request: ChatRequest, caller: Caller, *, deadline_s: float | None = None
    ) -> Decision:
        """The full decision for ``request`` with every candidate, as ``/v1/route`` shows it."""
        self._known(request)
        embedding = await self.embeddings.embed(request.prompt_text())
        turn = await self.conversations.analyse(request, embedding, caller.tenant)
        decision = self.selector.decide(request, embedding, turn, deadline_s=deadline_s)
        if request.model not in AUTO_MODELS:
            decision.model = request.model
        await self.feedback.remember(decision, embedding, caller.tenant)
        self.metrics.decisions.labels(decision.model or "none").inc()
        return decision

    async def route(
        self, request: ChatRequest, caller: Caller, *, deadline_s: float | None = None
    ) -> Routed:
        """Decide, and return the models to try in order; raise when none may answer."""
        started = time.perf_counter()
        if request.model in AUTO_MODELS:
            decision = await self.explain(request, caller, deadline_s=deadline_s)
            if not decision.order:
                reasons = "; ".join(f"{c.model}: {c.reason}" for c in decision.candidates)
                if self._coming_back(decision):
                    raise UpstreamUnavailable(
                        f"no model can answer this request right now ({reasons})",
                        code="model_unavailable",
                        retry_after=RETRY_AFTER_S,
                    )
                raise NoEligibleModel(
                    f"no model can answer this request ({reasons})", param="model"
                )
            return Routed(decision, decision.order, time.perf_counter() - started)
        self._known(request)
        entry = self.catalog.get(request.model)
        assert entry is not None
        reason = self.availability(entry)
        if reason:
            retry = RETRY_AFTER_S if self.availability.temporarily_down(entry) else None
            raise UpstreamUnavailable(
                f"model {entry.id!r} is {reason}", code="model_unavailable", retry_after=retry
            )
        self.selector.check_named(entry, request)
        decision = Decision(
            decision_id=new_decision_id(),
            model=entry.id,
            capabilities=[],
            cost_weight=0.0,
            prompt_tokens=prompt_tokens(request, count_tokens),
            candidates=[],
            order=[entry.id],
        )
        return Routed(decision, [entry.id], time.perf_counter() - started)

"""Turning a chat request into the ordered list of models to try, with its decision.

``model: "auto"`` asks the selector; a catalog id is that model alone (no silent substitution);
anything else is a 404. Shared by the chat and route endpoints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from app.capabilities import prompt_tokens
from app.catalog import Catalog
from app.embedding import count_tokens
from app.errors import ModelNotFound, NoEligibleModel, UpstreamUnavailable
from app.schemas import ChatRequest, ContentPart, ImagePart, TextPart
from app.selection import Candidate, Decision, new_decision_id
from app.services import Services

AUTO_MODELS = frozenset({"auto", "switchboard/auto"})
RETRY_AFTER_S = 5.0
"""What a 503 for a model that is only down for now (restarting, breaker open) tells clients."""


@dataclass
class Routed:
    decision: Decision
    order: list[str]
    routing_s: float


async def decide(
    services: Services,
    request: ChatRequest,
    key_id: str | None = None,
    *,
    deadline_s: float | None = None,
    may_answer_blind: bool = False,
) -> Decision:
    """The full decision for ``request``, as ``/v1/route`` shows it."""
    if request.model not in AUTO_MODELS and services.catalog.get(request.model) is None:
        raise ModelNotFound(
            f"model {request.model!r} is not in the catalog; use 'auto' or one of GET /v1/models",
            param="model",
        )
    embedding = await services.embeddings.embed(request.prompt_text())
    await services.feedback.sync()
    await services.breaker_sync.sync()
    turn = await services.conversations.analyse(request, embedding, key_id)
    decision = services.selector.decide(
        request, embedding, turn, deadline_s=deadline_s, may_answer_blind=may_answer_blind
    )
    if request.model not in AUTO_MODELS:
        decision.model = request.model
    await services.feedback.remember(decision, embedding, key_id)
    services.metrics.decisions.labels(decision.model or "none").inc()
    return decision


async def route(
    services: Services,
    request: ChatRequest,
    key_id: str | None = None,
    *,
    deadline_s: float | None = None,
    may_answer_blind: bool = False,
) -> Routed:
    """Decide, and return the models to try in order; raise when none may answer."""
    started = time.perf_counter()
    if request.model in AUTO_MODELS:
        decision = await decide(
            services, request, key_id, deadline_s=deadline_s, may_answer_blind=may_answer_blind
        )
        if not decision.order:
            reasons = "; ".join(f"{c.model}: {c.reason}" for c in decision.candidates)
            if _coming_back(services, decision.candidates):
                raise UpstreamUnavailable(
                    f"no model can answer this request right now ({reasons})",
                    code="model_unavailable",
                    retry_after=RETRY_AFTER_S,
                )
            raise NoEligibleModel(f"no model can answer this request ({reasons})", param="model")
        return Routed(decision, decision.order, time.perf_counter() - started)
    entry = services.catalog.get(request.model)
    if entry is None:
        raise ModelNotFound(
            f"model {request.model!r} is not in the catalog; use 'auto' or one of GET /v1/models",
            param="model",
        )
    reason = services.availability(entry)
    if reason:
        retry = RETRY_AFTER_S if services.availability.temporarily_down(entry) else None
        raise UpstreamUnavailable(
            f"model {entry.id!r} is {reason}", code="model_unavailable", retry_after=retry
        )
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


def _coming_back(services: Services, candidates: list[Candidate]) -> bool:
    """Whether a model that is down only for now would have been asked (then 503, not 400)."""
    down = {c.model for c in candidates if c.reason.startswith("unavailable")}
    return any(
        services.availability.temporarily_down(entry)
        for entry in services.catalog.models
        if entry.id in down
    )


PHOTO_NOT_SHOWN = "[The user attached a photo here; you cannot see images, so it is not shown.]"
"""What a model without vision reads in place of an image, so that a question about the photo
gets "I can't see it" rather than a confident guess about a picture it never saw."""


def fit_to_model(catalog: Catalog) -> Callable[[str, ChatRequest], ChatRequest]:
    """The gateway's per-model request adapter: text models get text.

    The router may send a turn with an incidental photo to a text model (the question was not
    about the photo), or, when no model that can see is available, a question about the photo
    too; that model must get the words and a note that a photo was there, not an image part it
    would reject. Content that is then all text parts becomes one string: llama.cpp's chat
    templates (Qwen's among them) fail with a 500 on a list of parts.
    """

    def fit(model: str, request: ChatRequest) -> ChatRequest:
        entry = catalog.get(model)
        if entry is None or "vision" in entry.capabilities:
            return request
        if not any(isinstance(m.content, list) for m in request.messages):
            return request
        messages = [
            message.model_copy(update={"content": _as_text(message.content)})
            if isinstance(message.content, list)
            else message
            for message in request.messages
        ]
        return request.model_copy(update={"messages": messages})

    return fit


def _as_text(parts: list[ContentPart]) -> str | list[ContentPart]:
    """Images as a note; all-text content as one string (audio parts stay parts)."""
    fitted: list[ContentPart] = [
        TextPart(type="text", text=PHOTO_NOT_SHOWN) if isinstance(p, ImagePart) else p
        for p in parts
    ]
    if all(isinstance(p, TextPart) for p in fitted):
        return "\n".join(p.text for p in fitted if isinstance(p, TextPart))
    return fitted

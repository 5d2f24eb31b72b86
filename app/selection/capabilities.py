"""What a request needs from a model: capabilities, and Chat Completions fields its server takes.

Two kinds of need, treated differently by the selector:

- **Required** (``Needs.required``): what the caller asked for (``switchboard.capabilities``),
  ``tools`` when the request has tools, ``json`` for a JSON response format, ``audio`` for audio
  input, and fields the server must take (``seed``, ``logprobs``, a JSON schema, ...; see
  ``adapters.base.FIELD_FEATURES``). A model without one of them cannot serve the request:
  it is not eligible, and naming it gets a 400 that names what is missing.
- **Inferred** (``Needs.inferred``): ``vision`` and ``web_search`` as the turn classifier judged
  them from the words and the conversation (``app.pipeline.conversation``), with its
  confidence. They never refuse a call: models that have them get a utility bonus, and when
  none is available the best remaining model answers, reporting ``unmet_capabilities`` (a
  model without vision reads a note where the photo was, so it says it cannot see).

Most photos sent along with a question are not what it is about, so an image part alone is not
``vision``; only when no turn classifier runs (a custom embedding model it was not fitted on)
does an attached image infer ``vision``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from app.schemas import ChatRequest

TokenCounter = Callable[[str], int]
INFERRED = ("vision", "web_search")


@dataclass(frozen=True)
class TurnAnalysis:
    """What the router knows about the request's last user turn."""

    capabilities: tuple[str, ...]
    followup: bool = False
    topic_changed: bool = False
    previous_model: str | None = None  # the model that answered the turn this one follows
    scores: dict[str, float] | None = None


@dataclass(frozen=True)
class Needs:
    """What one request needs (see the module docstring)."""

    required: frozenset[str] = frozenset()
    fields: frozenset[str] = frozenset()
    inferred: Mapping[str, float] = field(default_factory=dict)
    """Capability -> how sure the turn classifier is (0.5..1) that the turn needs it."""


def needs(request: ChatRequest, turn: TurnAnalysis | None) -> Needs:
    """Everything ``request`` needs; ``turn`` is the turn classifier's verdict (None: none ran)."""
    required: set[str] = set()
    prefs = request.switchboard
    if prefs is not None and prefs.capabilities:
        required.update(prefs.capabilities)
    if any(m.has_audio() for m in request.messages):
        required.add("audio")
    if request.tools:
        required.add("tools")
    response_type = (request.response_format or {}).get("type")
    if response_type in ("json_object", "json_schema"):
        required.add("json")
    inferred: dict[str, float] = {}
    if turn is not None:
        scores = turn.scores or {}
        # an inherited capability scores low on the follow-up's own words: it is as sure as the
        # turn is a follow-up; at least even odds
        inherited = float(scores.get("followup", 0.0)) if turn.followup else 0.0
        inferred = {c: max(float(scores.get(c, 1.0)), inherited, 0.5) for c in turn.capabilities}
    else:
        last_user = next((m for m in reversed(request.messages) if m.role == "user"), None)
        if last_user is not None and last_user.has_image():
            inferred["vision"] = 1.0
    inferred = {c: p for c, p in inferred.items() if c not in required}
    return Needs(frozenset(required), request_fields(request), inferred)


def request_fields(request: ChatRequest) -> frozenset[str]:
    """The Chat Completions fields in ``request`` that a server must take to honour it."""
    used = set()
    if (request.response_format or {}).get("type") == "json_schema":
        used.add("json_schema")
    if request.seed is not None:
        used.add("seed")
    if request.logprobs or request.top_logprobs is not None:
        used.add("logprobs")
    if request.parallel_tool_calls is False:  # true is every server's default
        used.add("parallel_tool_calls")
    if request.stop:
        used.add("stop")
    return frozenset(used)


def prompt_tokens(request: ChatRequest, count: TokenCounter) -> int:
    """Estimated prompt tokens of the whole conversation (images at a flat 765 each)."""
    total = 0
    for message in request.messages:
        total += 4 + count(message.text())
        if isinstance(message.content, list):
            total += 765 * sum(1 for p in message.content if p.type == "image_url")
    return total

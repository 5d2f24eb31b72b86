"""The routing constraints: whether a catalog model may answer a request, and if not, why.

Each constraint is a small function of (model entry, query) that returns the reason the model
is excluded, or None. ``CONSTRAINTS`` lists them in the order their reasons are reported; the
first reason found is the candidate's. Adding a constraint is one function here and, if it
needs something the query does not carry yet, one field of ``Query``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from app.catalog import ModelEntry
from app.schemas import ChatRequest
from app.selection.capabilities import Needs


@dataclass(frozen=True)
class Query:
    """What the constraints look at, computed once per request."""

    request: ChatRequest
    needs: Needs
    prompt_tokens: int
    costs: Mapping[str, float]
    """Estimated USD of the call on each model."""
    deadline_s: float | None
    unavailable: Callable[[ModelEntry], str | None]
    """Why a model cannot be called now (missing key, local server down, open breaker)."""
    expected_s: Callable[[str], float | None]
    """A model's observed median latency, None when it has too few calls to judge."""


Constraint = Callable[[ModelEntry, Query], str | None]


def chats(entry: ModelEntry, query: Query) -> str | None:
    if "embeddings" in entry.capabilities:
        return "an embeddings model (it answers POST /v1/embeddings only)"
    return None


def allowed(entry: ModelEntry, query: Query) -> str | None:
    prefs = query.request.switchboard
    if prefs is not None and prefs.models is not None and entry.id not in prefs.models:
        return "not in the request's allow-list"
    return None


def available(entry: ModelEntry, query: Query) -> str | None:
    return query.unavailable(entry)


def capable(entry: ModelEntry, query: Query) -> str | None:
    missing = sorted(query.needs.required - set(entry.capabilities))
    return "lacks capability " + ", ".join(missing) if missing else None


def takes_fields(entry: ModelEntry, query: Query) -> str | None:
    missing = sorted(query.needs.fields - entry.features)
    return "its server does not take " + ", ".join(missing) if missing else None


def fits_context(entry: ModelEntry, query: Query) -> str | None:
    if query.prompt_tokens > entry.context_window:
        return (
            f"prompt of ~{query.prompt_tokens} tokens exceeds context window {entry.context_window}"
        )
    return None


def within_cost(entry: ModelEntry, query: Query) -> str | None:
    prefs = query.request.switchboard
    cost = query.costs.get(entry.id, 0.0)
    if prefs is not None and prefs.max_cost_usd is not None and cost > prefs.max_cost_usd:
        return f"estimated cost ${cost:.6f} exceeds max_cost_usd ${prefs.max_cost_usd:g}"
    return None


def in_time(entry: ModelEntry, query: Query) -> str | None:
    if query.deadline_s is None:
        return None
    expected = query.expected_s(entry.id)
    if expected is not None and expected > query.deadline_s:
        return (
            f"observed median latency {expected:.1f} s exceeds the {query.deadline_s:g} s deadline"
        )
    return None


CONSTRAINTS: tuple[Constraint, ...] = (
    chats,
    allowed,
    available,
    capable,
    takes_fields,
    fits_context,
    within_cost,
    in_time,
)

NAMED: tuple[Constraint, ...] = (chats, capable, takes_fields, fits_context)
"""What is checked when the caller names a model: it is called as asked, or refused with a 400."""


def exclusion(entry: ModelEntry, query: Query, table: tuple[Constraint, ...] = CONSTRAINTS) -> str:
    """The first reason ``entry`` may not answer ``query``; empty when it may."""
    for constraint in table:
        reason = constraint(entry, query)
        if reason:
            return reason
    return ""

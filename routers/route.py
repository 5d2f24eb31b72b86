"""``POST /v1/route``: the routing decision without the call (dry-run / explain)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.http.json_body import FastJSONResponse, StrictJSONRoute
from app.pipeline.completions import Call
from app.schemas import ChatRequest
from app.selection.selector import Decision
from routers.deps import CallerDep, CompletionsDep

router = APIRouter(tags=["routing"], route_class=StrictJSONRoute)


def decision_body(decision: Decision) -> dict[str, Any]:
    """The decision with every candidate, as ``/v1/route`` and the console show it."""
    return {
        "model": decision.model,
        "decision_id": decision.decision_id,
        "capabilities": decision.capabilities,
        "unmet_capabilities": decision.unmet_capabilities,
        "followup": decision.followup,
        "topic_changed": decision.topic_changed,
        "cost_weight": decision.cost_weight,
        "prompt_tokens": decision.prompt_tokens,
        "fallback_order": decision.order,
        "candidates": [
            {
                "model": c.model,
                "quality": None if c.quality is None else round(c.quality, 6),
                "cost_usd": c.cost_usd,
                "utility": None if c.utility is None else round(c.utility, 6),
                "eligible": c.eligible,
                "reason": c.reason,
                "source": c.source,
                "feedback": c.feedback,
                "capability_bonus": c.bonus,
            }
            for c in decision.candidates
        ],
    }


@router.post("/v1/route")
async def route_only(
    body: ChatRequest, caller: CallerDep, completions: CompletionsDep
) -> FastJSONResponse:
    decision, headers = await completions.explain(Call(body, caller, api="route"))
    return FastJSONResponse(decision_body(decision), headers=headers)

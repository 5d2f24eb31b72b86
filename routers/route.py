"""``POST /v1/route``: the routing decision without the call (dry-run / explain)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header

from app.access import authenticate
from app.json_body import StrictJSONRoute
from app.routing import decide
from app.schemas import ChatRequest
from routers.deps import ServicesDep

router = APIRouter(tags=["routing"], route_class=StrictJSONRoute)


@router.post("/v1/route")
async def route_only(
    body: ChatRequest,
    services: ServicesDep,
    authorization: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    settings = services.settings
    key = await authenticate(services.store, authorization, required=settings.require_api_key,
                             fail_open=settings.fail_open)  # fmt: skip
    decision = await decide(services, body, key.id if key else None)
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
            }
            for c in decision.candidates
        ],
    }

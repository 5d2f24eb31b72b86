"""``GET /v1/models``: the catalog in OpenAI's list shape, with availability.

Besides the catalog: ``auto`` (routing), and Switchboard's own embeddings model (its encoder).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from routers.deps import ServicesDep

router = APIRouter(tags=["models"])


@router.get("/v1/models")
async def list_models(services: ServicesDep) -> dict[str, Any]:
    sources = services.estimator.sources
    data: list[dict[str, Any]] = [
        {"id": "auto", "object": "model", "created": 0, "owned_by": "switchboard"}
    ]
    for entry in services.catalog.models:
        reason = services.availability(entry)
        data.append({
            "id": entry.id,
            "object": "model",
            "created": 0,
            "owned_by": entry.id.split("/", 1)[0] if "/" in entry.id else entry.adapter,
            "switchboard": {
                "available": reason is None,
                "reason": reason,
                "adapter": entry.adapter,
                "local": entry.local,
                "capabilities": entry.capabilities,
                "context_window": entry.context_window,
                "price": entry.price.model_dump(),
                "profile": sources.get(entry.id, "neutral"),  # learned | declared | neutral
            },
        })  # fmt: skip
    encoder = services.embedding_calls
    data.append({
        "id": encoder.local_id,
        "object": "model",
        "created": 0,
        "owned_by": "switchboard",
        "switchboard": {
            "available": True,
            "reason": None,
            "adapter": "encoder",
            "local": True,
            "capabilities": ["embeddings"],
            "context_window": 256,
            "dimensions": encoder.encoder.dim,
            "price": {"input_per_mtok": 0.0, "output_per_mtok": 0.0},
            "profiled": False,
        },
    })  # fmt: skip
    return {"object": "list", "data": data}

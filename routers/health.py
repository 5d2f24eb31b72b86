"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from routers.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(services: ServicesDep) -> JSONResponse:
    """Ready when at least one model can be called; ``models`` says why each one can or not."""
    models = services.availability.report(services.catalog.models)
    available = [m for m, row in models.items() if row["available"]]
    status = 200 if available else 503
    body = {
        "status": "ready" if available else "no model available",
        "available": available,
        "models": models,
    }
    return JSONResponse(body, status_code=status, headers={} if available else {"Retry-After": "5"})


@router.get("/metrics")
async def metrics(services: ServicesDep) -> Response:
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)

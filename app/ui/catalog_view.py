"""What the console's Catalog tab shows: each model's availability, breaker and observed latency.

Availability and breaker state are this worker's view after adopting the breakers other workers
opened (``breaker_sync``); latency p50/p95 and error rate come from this worker's
``LatencyTracker`` (the last calls it made to each model).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import JsonValue

from app.catalog import Catalog
from app.gateway.availability import Availability
from app.gateway.latency import LatencyTracker
from app.state import JsonDict


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def catalog_status(
    catalog: Catalog,
    availability: Availability,
    latency: LatencyTracker,
    sources: Mapping[str, str],
) -> list[JsonValue]:
    """One row per catalog model, in catalog order (breaker state as this worker last synced)."""
    rows: list[JsonValue] = []
    for entry in catalog.models:
        reason = availability(entry)
        seen = latency.summary(entry.id)
        row: JsonDict = {
            "model": entry.id,
            "available": reason is None,
            "reason": reason,
            "breaker": availability.breakers.status(entry.id),
            "calls": seen.count,
            "p50_ms": _ms(seen.p50_s),
            "p95_ms": _ms(seen.p95_s),
            "error_rate": seen.error_rate,
            "input_per_mtok": entry.price.input_per_mtok,
            "output_per_mtok": entry.price.output_per_mtok,
            "capabilities": list[JsonValue](entry.capabilities),
            "local": entry.local,
            "profile": sources.get(entry.id, "neutral"),
        }
        rows.append(row)
    return rows

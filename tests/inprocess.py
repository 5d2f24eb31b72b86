"""Switchboard in the test's own process, behind httpx's ASGI transport, with fake upstreams.

The app is the real one (``create_app``, its lifespan, the real embedding model and turn
classifier); only the providers are ``tests.fake_upstream`` on loopback, so no model server is
needed. Use it where a test needs many requests or large bodies and a real uvicorn adds
nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from app.main import create_app
from app.settings import Settings
from tests.processes import CACHE


def catalog(fake: str, path: Path) -> Path:
    """A catalog of two fake models: a text model and a cheap vision model."""

    def row(model_id: str, prior: float, capabilities: list[str]) -> dict[str, Any]:
        return {
            "id": model_id,
            "adapter": "openai_compat",
            "base_url": f"{fake}/answer/{model_id.split('/')[1]}/v1",
            "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
            "context_window": 128000,
            "capabilities": capabilities,
            "profile": {"prior_quality": prior},
        }

    models = [
        row("fake/text", 0.6, ["tools", "json"]),
        row("fake/vision", 0.5, ["vision", "tools", "json"]),
    ]
    path.write_text(yaml.safe_dump({"models": models}))
    return path


@asynccontextmanager
async def switchboard(fake: str, tmp: Path, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a running in-process Switchboard; ``settings`` override ``Settings``."""
    values: dict[str, Any] = {
        "catalog": catalog(fake, tmp / "catalog.yaml"),
        "cache_dir": CACHE,
        "transcription": "off",
        "manage_local": False,
    }
    app = create_app(Settings(**(values | settings)))
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=transport, base_url="http://switchboard", timeout=120
        ) as client,
    ):
        yield client

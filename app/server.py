"""``switchboard serve``: run the app under uvicorn."""

from __future__ import annotations

import logging

import uvicorn

from app.catalog import load_catalog
from app.errors import ConfigError
from app.main import create_app
from app.settings import get_settings


def serve(host: str = "127.0.0.1", port: int = 8000) -> None:
    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every request line at INFO; keep it quiet so nothing upstream-specific leaks.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        load_catalog(settings.catalog)  # fail fast, with a readable message, before uvicorn starts
        uvicorn.run(
            create_app(settings),
            host=host,
            port=port,
            log_level=settings.log_level.lower(),
            proxy_headers=False,  # create_app believes SWITCHBOARD_TRUSTED_PROXIES only
        )
    except ConfigError as exc:
        raise SystemExit(f"switchboard: {exc.message}") from None

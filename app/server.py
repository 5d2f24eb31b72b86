"""``switchboard serve``: run the app under uvicorn, in one process or one worker per core.

The serving stack is uvloop and httptools when they are installed (``uvicorn[standard]``
ships both), named explicitly so that a missing one is said at start-up rather than silently
replaced by the pure-Python loop and parser.

Workers: ``--workers N`` runs N processes on one port; the default is one per core available
when the state lives in Redis (``SWITCHBOARD_REDIS_URL``), where keys, budgets, rate limits,
feedback and breakers are shared. With the in-memory store each worker would hold its own
(a key made on one would be unknown to the other, a budget could be spent N times), so the
default is then one worker, said at start-up, and asking for more is refused. With several
workers the parent starts the catalog's local model servers (llama.cpp) once and hands their
URLs to the workers (``SWITCHBOARD_LOCAL_URLS``), gives each worker its share of the cores
for the encoder (``SWITCHBOARD_EMBEDDING_THREADS``), and stops the servers when uvicorn exits.
"""

from __future__ import annotations

import asyncio
import copy
import importlib.util
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from app.catalog import load_catalog
from app.errors import ConfigError
from app.gateway.local_servers import LocalServer
from app.main import create_app
from app.selection.profiles import load_profiles
from app.services import routing_encoder, turn_encoder
from app.settings import Settings, get_settings

log = logging.getLogger(__name__)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
PR_SET_PDEATHSIG = 1
WORKER_LOG_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_count(settings: Settings, asked: int | None, cores: int | None = None) -> int:
    """How many workers to run (see the module docstring); refuses what cannot work."""
    cores = cores or available_cores()
    shared = settings.redis_url is not None
    if asked is None:
        if not shared and cores > 1:
            log.warning(
                "one worker: with the in-memory store, workers could not share keys, budgets "
                "and feedback; set SWITCHBOARD_REDIS_URL to run one worker per core (%d)",
                cores,
            )
        return cores if shared else 1
    if asked < 1:
        raise ConfigError("--workers must be at least 1")
    if asked > 1 and not shared:
        raise ConfigError(
            f"--workers {asked} needs SWITCHBOARD_REDIS_URL: with the in-memory store each "
            "worker would keep its own keys, budgets and feedback"
        )
    return asked


def serving_stack() -> tuple[str, str]:
    """uvicorn's event loop and HTTP parser: uvloop and httptools where installed."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    if loop != "uvloop" or http != "httptools":
        log.warning("serving with %s and %s: install uvicorn[standard] for uvloop and "
                    "httptools", loop, http)  # fmt: skip
    return loop, http


def _configure_logging(settings: Settings, worker: bool) -> None:
    logging.basicConfig(level=settings.log_level.upper(),
                        format=WORKER_LOG_FORMAT if worker else LOG_FORMAT)  # fmt: skip
    # httpx logs every request line at INFO; keep it quiet so nothing upstream-specific leaks.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _worker_log_config() -> dict[str, Any]:
    """uvicorn's logging, each line naming the worker (process id) that wrote it."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    for formatter in config["formatters"].values():
        formatter["fmt"] = "[%(process)d] " + formatter["fmt"]
    return config


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker if the parent dies without stopping it (a parent
    killed outright); else the worker would serve on, orphaned, holding its port and memory."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent was already gone
        os._exit(1)


def worker_app() -> FastAPI:
    """The app of one of several workers (uvicorn's factory, run in each worker process)."""
    _die_with_parent()
    settings = get_settings()
    _configure_logging(settings, worker=True)
    return create_app(settings)


@contextmanager
def _local_servers_once(settings: Settings) -> Iterator[dict[str, str]]:
    """Start the catalog's local model servers in this (the parent) process; their URLs.

    They run, and are supervised (restarted when they exit), on an event loop in a thread of
    their own for as long as uvicorn runs the workers.
    """
    from app.services import start_local_servers

    catalog = load_catalog(settings.catalog)
    cache_dir = settings.cache_path
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="local-servers", daemon=True)
    thread.start()
    servers: dict[str, LocalServer] = {}
    try:
        started = asyncio.run_coroutine_threadsafe(
            start_local_servers(catalog, settings, cache_dir), loop
        )
        servers, _ = started.result()
        yield {model: server.base_url for model, server in servers.items()}
    finally:

        async def stop() -> None:
            for server in servers.values():
                await server.stop()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


def serve(host: str = "127.0.0.1", port: int = 8000, workers: int | None = None) -> None:
    settings = get_settings()
    _configure_logging(settings, worker=False)
    try:
        load_catalog(settings.catalog)  # fail fast, with a readable message, before uvicorn starts
        count = worker_count(settings, workers)
        loop, http = serving_stack()
        level = settings.log_level.lower()
        if count == 1:
            app = create_app(settings)
            # proxy headers: create_app believes SWITCHBOARD_TRUSTED_PROXIES only
            uvicorn.run(app, host=host, port=port, log_level=level, loop=loop, http=http,
                        access_log=settings.access_log, proxy_headers=False)  # fmt: skip
            return
        log.info("starting %d workers on %s:%d", count, host, port)
        routing_encoder(settings, load_profiles(settings.profiles) if settings.profiles else None)
        turn_encoder(settings)
        with _local_servers_once(settings) as urls:
            os.environ["SWITCHBOARD_LOCAL_URLS"] = json.dumps(settings.local_urls | urls)
            os.environ["SWITCHBOARD_MANAGE_LOCAL"] = "false"
            if settings.embedding_threads is None:
                threads = max(1, available_cores() // count)
                os.environ["SWITCHBOARD_EMBEDDING_THREADS"] = str(threads)
            uvicorn.run(
                "app.server:worker_app",
                factory=True,
                workers=count,
                host=host,
                port=port,
                log_level=level,
                log_config=_worker_log_config(),
                access_log=settings.access_log,
                loop=loop,
                http=http,
                proxy_headers=False,  # create_app trusts SWITCHBOARD_TRUSTED_PROXIES only
            )
    except ConfigError as exc:
        raise SystemExit(f"switchboard: {exc.message}") from None

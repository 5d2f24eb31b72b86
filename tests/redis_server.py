"""A real ``redis-server`` on a free loopback port, which tests can stop (or kill) and start again.

``redis_server()`` runs one in a temporary directory for the length of a ``with`` block and
always stops it. ``persistent=True`` turns on the append-only file with ``appendfsync always``
(in that directory), so whatever Redis acknowledged survives ``stop(kill=True)`` and ``start()``;
without it a restarted Redis is empty.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from app.gateway.local_servers import free_port

START_TIMEOUT_S = 10.0


class RedisProcess:
    """One ``redis-server``; the port (and so ``url``) stays the same across restarts."""

    def __init__(
        self, directory: Path, persistent: bool = False, extra_args: tuple[str, ...] = ()
    ) -> None:
        self.port = free_port()
        self.directory = directory
        self.persistent = persistent
        self.extra_args = extra_args
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _command(self) -> list[str]:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (apt-get install redis-server)"
        if self.persistent:
            persistence = ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            persistence = ["--appendonly", "no"]
        return [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--daemonize", "no", "--dir", str(self.directory),
                "--logfile", str(self.directory / "redis.log"), *persistence,
                *self.extra_args]  # fmt: skip

    def start(self) -> None:
        """Start it and wait until it answers PING."""
        assert not self.running, "redis-server is already running"
        self._process = subprocess.Popen(
            self._command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    break
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    time.sleep(0.02)
        finally:
            client.close()
        self.stop(kill=True)
        log = self.directory / "redis.log"
        tail = log.read_text()[-2000:] if log.exists() else "(no log)"
        raise RuntimeError(f"redis-server did not start on port {self.port}: {tail}")

    def stop(self, kill: bool = False) -> None:
        """Shut it down (SIGTERM), or ``kill`` it (SIGKILL: no chance to flush anything)."""
        if self._process is None:
            return
        if kill:
            self._process.kill()
        else:
            self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None

    def flush(self) -> None:
        """Empty every database (between tests)."""
        with redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2) as client:
            client.flushall()


@contextmanager
def redis_server(
    persistent: bool = False, extra_args: tuple[str, ...] = ()
) -> Iterator[RedisProcess]:
    """A running ``redis-server`` for the block (``extra_args`` appended to its command line);
    stopped (and its directory removed) after."""
    with tempfile.TemporaryDirectory(prefix="sb-redis-") as directory:
        server = RedisProcess(Path(directory), persistent, extra_args)
        server.start()
        try:
            yield server
        finally:
            server.stop()

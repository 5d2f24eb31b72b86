"""A local model whose llama.cpp server dies is restarted, and callers are told meanwhile.

Switchboard runs for real with the bundled catalog (only the local model is available); the test
kills its llama.cpp child with SIGKILL, as the kernel's OOM killer would. While the server is
down, calls get a 503 with Retry-After (not a hang, not a 500) and ``/readyz`` says which model
is restarting; then the model answers again. Waits are polls with generous limits.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import DEFAULT_LOCAL, switchboard, switchboard_process

pytestmark = pytest.mark.slow
HELLO = {"model": "auto", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    log = tmp_path_factory.mktemp("restart") / "switchboard.log"
    # A first restart delay long enough that the down state is observed, not raced.
    with switchboard({"SWITCHBOARD_LOCAL_RESTART_BASE_S": "4"}, log) as url:
        yield url, log


def children(parent: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                pids.append(int(entry.name))
    return pids


def cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def llama_child(url: str) -> int:
    """The pid of the llama.cpp server that the Switchboard serving ``url`` started."""
    port = url.rsplit(":", 1)[1]
    (parent,) = [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and f"app.cli serve --port {port}" in cmdline(int(p.name))
    ]
    (child,) = [pid for pid in children(parent) if "llama_cpp.server" in cmdline(pid)]
    return child


def poll(check: Any, timeout: float = 180.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.05)
    raise AssertionError(f"not reached within {timeout:.0f} s")


def local_row(url: str) -> dict[str, Any]:
    row: dict[str, Any] = httpx.get(f"{url}/readyz", timeout=10).json()["models"][DEFAULT_LOCAL]
    return row


def test_killed_local_server_is_restarted_and_callers_get_503_meanwhile(
    service: tuple[str, Path],
) -> None:
    url, log = service
    assert httpx.post(f"{url}/v1/chat/completions", json=HELLO, timeout=120).status_code == 200
    before = local_row(url)
    assert before["available"] and before["local_server"]["state"] == "running"
    assert before["local_server"]["restarts"] == 0

    old = llama_child(url)
    os.kill(old, signal.SIGKILL)

    down = poll(lambda: (row := local_row(url))["local_server"]["state"] == "restarting" and row)
    assert down["available"] is False and "restarting" in down["reason"]
    assert down["local_server"]["last_exit_code"] == -signal.SIGKILL
    ready = httpx.get(f"{url}/readyz", timeout=10)
    assert ready.status_code == 503 and ready.headers["retry-after"]  # nothing else can answer

    routed = httpx.post(f"{url}/v1/chat/completions", json=HELLO, timeout=30)
    named = httpx.post(
        f"{url}/v1/chat/completions", json={**HELLO, "model": DEFAULT_LOCAL}, timeout=30
    )
    for reply in (routed, named):
        if local_row(url)["available"]:  # the restart won the race with this call: fine
            continue
        assert reply.status_code == 503, reply.text
        assert reply.headers["retry-after"]
        error = reply.json()["error"]
        assert error["code"] == "model_unavailable" and "restarting" in error["message"]

    back = poll(lambda: (row := local_row(url))["available"] and row)
    assert back["local_server"] == {"state": "running", "restarts": 1, "last_exit_code": -9}
    assert llama_child(url) != old
    answer = httpx.post(f"{url}/v1/chat/completions", json=HELLO, timeout=120)
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"]
    assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200

    text = log.read_text()
    assert f"local server for {DEFAULT_LOCAL} exited with code -9; its last output:" in text
    assert "Uvicorn running on" in text  # the child's own last lines, logged on exit
    assert "Traceback" not in text


def test_a_killed_switchboard_takes_its_model_server_with_it(tmp_path: Path) -> None:
    log = tmp_path / "switchboard.log"
    with switchboard_process({}, log) as (url, process):
        child = llama_child(url)
        assert local_row(url)["local_server"]["state"] == "running"
        process.kill()  # SIGKILL: no shutdown hook runs, as when the OOM killer picks it
        process.wait(timeout=30)
        poll(lambda: not Path(f"/proc/{child}").exists() or "llama_cpp" not in cmdline(child), 30)

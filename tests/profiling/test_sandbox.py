"""Model-written code runs contained: hostile programs are stopped and leave nothing behind."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from app.profiling.sandbox import Limits, run_program, run_tests

TESTS = "def check(candidate):\n    assert candidate(2) == 4\n"
QUICK = Limits(wall_s=3.0, cpu_s=3)


def test_a_correct_function_passes_and_a_wrong_one_fails() -> None:
    assert run_tests("def double(x):\n    return 2 * x\n", TESTS, "double").passed
    failed = run_tests("def double(x):\n    return x + 1\n", TESTS, "double")
    assert not failed.passed and "AssertionError" in failed.detail


def test_exiting_early_is_not_a_pass() -> None:
    outcome = run_tests("import sys\nsys.exit(0)\ndef double(x):\n    return 2 * x\n", TESTS,
                        "double")  # fmt: skip
    assert not outcome.passed


def test_no_network() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.5)
        port = server.getsockname()[1]
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
        outcome = run_program(code, QUICK)
        assert not outcome.passed
        with pytest.raises(TimeoutError):
            server.accept()  # nobody ever connected


def test_a_fork_bomb_is_stopped(tmp_path: Path) -> None:
    code = "import os\nwhile True:\n    os.fork()\n"
    started = time.monotonic()
    outcome = run_program(code, QUICK)
    assert not outcome.passed and time.monotonic() - started < 10
    # no survivor: the run's process group is gone
    assert not any(_cmdline(p).endswith("guard.py") for p in Path("/proc").iterdir()
                   if p.name.isdigit())  # fmt: skip


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def test_a_huge_allocation_is_refused() -> None:
    outcome = run_program("x = bytearray(64 * 1024**3)\n", QUICK)
    assert not outcome.passed and "MemoryError" in outcome.detail


def test_an_infinite_loop_is_killed_at_the_time_limit() -> None:
    started = time.monotonic()
    outcome = run_program("while True:\n    pass\n", Limits(wall_s=1.5, cpu_s=5))
    assert not outcome.passed and "timed out" in outcome.detail
    assert time.monotonic() - started < 6


def test_writing_outside_its_directory_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    for code in (
        f"open({str(target)!r}, 'w').write('x')\n",
        f"import os\nos.rename('/etc/hostname', {str(target)!r})\n",
        f"import shutil\nshutil.copyfile('/etc/hostname', {str(target)!r})\n",
    ):
        assert not run_program(code, QUICK).passed
    assert not target.exists()
    assert run_program("open('scratch.txt', 'w').write('ok')\n", QUICK).passed


def test_subprocesses_and_ctypes_are_refused() -> None:
    for code in ("import subprocess\nsubprocess.run(['true'])\n",
                 "import os\nos.system('true')\n",
                 "import ctypes\n"):  # fmt: skip
        assert not run_program(code, QUICK).passed, code


def test_the_environment_is_cleared() -> None:
    os.environ["SWITCHBOARD_TEST_SECRET"] = "do-not-leak"
    try:
        code = "import os\nassert 'SWITCHBOARD_TEST_SECRET' not in os.environ\n"
        assert run_program(code, QUICK).passed
    finally:
        del os.environ["SWITCHBOARD_TEST_SECRET"]

"""Running model-written Python against unit tests, contained.

Each run is a fresh ``python -I -S`` (isolated mode, no site-packages: the standard library
only) in its own temporary directory, with a cleared environment, and these layers:

1. resource limits: CPU seconds, address space (a huge allocation is a ``MemoryError``), file
   size, open files, processes, no core dumps; and a wall-clock limit after which the whole
   process group is killed (an infinite loop or a sleeping child cannot outlive it);
2. no network: a fresh network namespace (``unshare -n``; ``unshare -rn`` for a non-root user)
   when the kernel allows one, so there is no interface to reach anything through;
3. when started as root, the guard drops to ``nobody`` before the candidate code runs, so the
   kernel itself refuses writes outside the run's directory (and process limits are enforced);
   the standard-library modules tests commonly use are imported first, since ``nobody`` may not
   be able to read the interpreter's own directory;
4. a Python audit hook, installed before the candidate code and impossible to remove, refusing
   sockets, subprocesses, ``exec*``/``fork``/``spawn``, signals to other processes, ``ctypes``,
   raising resource limits, replacing a function's code, walking the garbage collector, and any
   write, rename, removal or directory change outside the run's directory.

What this is not: a boundary against code crafted to escape a Python sandbox by a determined
attacker (the audit hook is in-process, there is no seccomp filter and no filesystem namespace:
the code can read what the user can read, with no network to send it through), nor a guarantee
that code cannot fool its own grade (it runs in the same interpreter as ``check``). It is made
for what a profiling run meets: code from models answering a coding question, sometimes wrong,
sometimes runaway. ``sandbox_layers()`` reports which layers this machine gives; the bootstrap
prints it when a suite holds code.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

NOBODY: Final = 65534
PRELOAD: Final = (
    "abc", "array", "bisect", "calendar", "cmath", "collections", "collections.abc", "contextlib",
    "copy", "csv", "dataclasses", "datetime", "decimal", "enum", "fractions", "functools",
    "hashlib", "heapq", "io", "itertools", "json", "math", "numbers", "operator", "random", "re",
    "statistics", "string", "struct", "textwrap", "time", "traceback", "types", "typing",
    "unicodedata",
)  # fmt: skip
"""Modules imported before privileges drop (an import after the drop may be unreadable)."""

_GUARD: Final = r"""
import os, sys, traceback
ROOT = {root!r}
DROP = {drop!r}
import resource
for name, value in {limits!r}.items():
    resource.setrlimit(getattr(resource, name), (value, value))
for module in {preload!r}:
    try:
        __import__(module)
    except ImportError:
        pass
source = open(os.path.join(ROOT, "program.py"), encoding="utf-8").read()
if DROP:
    os.setgroups([])
    os.setgid(DROP)
    os.setuid(DROP)


def install(root):
    # Everything the hook reads lives in this closure: once install() returns and is deleted,
    # nothing the candidate code can reach refers to it (the gc walkers are refused too).
    blocked_modules = frozenset({{"socket", "_socket", "ssl", "_ssl", "ctypes", "_ctypes",
        "subprocess", "_posixsubprocess", "multiprocessing", "_multiprocessing", "pty",
        "asyncio", "urllib", "http", "ftplib", "smtplib", "telnetlib", "xmlrpc", "webbrowser",
        "mmap"}})
    blocked_prefixes = ("socket.", "subprocess.", "os.exec", "os.spawn", "os.posix_spawn",
        "os.fork", "ctypes.", "resource.", "gc.get_", "pty.", "os.kill", "os.system",
        "sys.addaudithook", "_posixsubprocess", "signal.pthread_kill", "winreg")
    path_events = frozenset({{"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod",
        "os.chown", "os.link", "os.symlink", "os.truncate", "os.utime", "shutil.rmtree",
        "shutil.copyfile", "shutil.copymode", "shutil.copystat", "shutil.move", "shutil.chown",
        "shutil.copytree", "shutil.make_archive", "shutil.unpack_archive", "os.chdir",
        "os.chflags", "os.lchown", "os.mkfifo", "os.mknod", "os.removexattr", "os.setxattr"}})
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    realpath, fsdecode, sep = os.path.realpath, os.fsdecode, os.sep

    def inside(path):
        if isinstance(path, int):
            return True
        try:
            real = realpath(fsdecode(path))
        except (TypeError, ValueError):
            return False
        return real == root or real.startswith(root + sep)

    def hook(event, args):
        if event == "import":
            if args[0].partition(".")[0] in blocked_modules:
                raise PermissionError("sandbox: import of " + args[0] + " refused")
            return
        if event == "open":
            path, mode, flags = args
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & write_flags)
            if writes and not inside(path):
                raise PermissionError("sandbox: writing outside the run directory refused")
            return
        if event in path_events:
            for arg in args:
                if isinstance(arg, (str, bytes, os.PathLike)) and not inside(arg):
                    raise PermissionError("sandbox: " + event + " outside its directory refused")
            return
        if event == "object.__setattr__" and args[1] in ("__code__", "__globals__"):
            raise PermissionError("sandbox: replacing code refused")
        if event.startswith(blocked_prefixes):
            raise PermissionError("sandbox: " + event + " refused")

    sys.addaudithook(hook)


install(ROOT)
del install
try:
    exec(compile(source, "program.py", "exec"), {{"__name__": "__main__"}})
except BaseException as exc:
    traceback.print_exception(exc)
    os._exit(1)
os._exit(0)
"""


@dataclass(frozen=True)
class Limits:
    """What one run may use. Memory is address space, which Python's own start-up needs too."""

    wall_s: float = 10.0
    cpu_s: int = 10
    memory_bytes: int = 1024 * 2**20
    file_bytes: int = 16 * 2**20
    open_files: int = 64
    processes: int = 256


@dataclass(frozen=True)
class Outcome:
    passed: bool
    detail: str


@functools.cache
def _unshare_prefix() -> tuple[str, ...]:
    """``unshare -n`` (or ``-rn`` without root) if it works on this machine, else nothing."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return ()
    prefix = (unshare, "-n") if os.geteuid() == 0 else (unshare, "-rn")
    try:
        probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return (*prefix, "--") if probe.returncode == 0 else ()


def sandbox_layers() -> list[str]:
    """The containment layers this machine gives a run (for the user to see)."""
    layers = ["temp dir + cleared env + python -I -S", "rlimits (cpu, memory, files, procs)"]
    layers.append("network namespace" if _unshare_prefix() else "NO network namespace")
    layers.append("uid nobody" if os.geteuid() == 0 else "same uid as the caller")
    layers.append("audit hook")
    return layers


def _guard(root: Path, limits: Limits, drop: int) -> str:
    rlimits = {
        "RLIMIT_CPU": limits.cpu_s,
        "RLIMIT_AS": limits.memory_bytes,
        "RLIMIT_FSIZE": limits.file_bytes,
        "RLIMIT_NOFILE": limits.open_files,
        "RLIMIT_NPROC": limits.processes,
        "RLIMIT_CORE": 0,
    }
    return _GUARD.format(root=str(root), drop=drop, limits=rlimits, preload=PRELOAD)


def run_program(source: str, limits: Limits | None = None) -> Outcome:
    """Run ``source`` contained; it passes if it ends without an exception in time."""
    limits = limits or Limits()
    drop = NOBODY if os.geteuid() == 0 else 0
    root = Path(tempfile.mkdtemp(prefix="switchboard-sandbox-")).resolve()
    try:
        (root / "program.py").write_text(source, encoding="utf-8")
        (root / "guard.py").write_text(_guard(root, limits, drop), encoding="utf-8")
        if drop:
            os.chown(root, drop, drop)
        command = [*_unshare_prefix(), sys.executable, "-I", "-S", str(root / "guard.py")]
        env = {"PATH": "/usr/bin:/bin", "HOME": str(root), "LANG": "C.UTF-8"}
        with (root / ".stderr").open("wb") as err:
            process = subprocess.Popen(
                command, cwd=root, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
            )  # fmt: skip
            try:
                code = process.wait(timeout=limits.wall_s)
            except subprocess.TimeoutExpired:
                code = None
            finally:
                _kill_group(process)
        if code is None:
            return Outcome(False, f"timed out after {limits.wall_s:g}s")
        if code == 0:
            return Outcome(True, "tests passed")
        return Outcome(False, _last_error(root / ".stderr", code))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _last_error(path: Path, code: int) -> str:
    with path.open("rb") as fh:
        fh.seek(max(0, path.stat().st_size - 2000))
        tail = fh.read().decode("utf-8", "replace").strip().splitlines()
    if code < 0:
        return f"killed by signal {-code}"
    return tail[-1][:200] if tail else f"exit code {code}"


def run_tests(code: str, test: str, entry_point: str, limits: Limits | None = None) -> Outcome:
    """Run ``code``, then ``test`` (which defines ``check``), then ``check(entry_point)``."""
    program = f"{code}\n\n{test}\n\ncheck({entry_point})\n"
    return run_program(program, limits)

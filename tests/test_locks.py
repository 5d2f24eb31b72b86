"""The hash locks in requirements/ cover what pyproject.toml asks for, and agree with each other.

``scripts/install.sh`` and the Dockerfile install only from these files (``--require-hashes``,
then the project with ``--no-deps``), so a dependency added to pyproject.toml without running
``scripts/lock.sh`` would be missing at run time: this test names it first.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).parents[1]
LOCKS = ROOT / "requirements"
PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)==(?P<version>\S+)")
ENVIRONMENT = default_environment() | {"python_version": "3.11", "sys_platform": "linux"}


def _lock(name: str) -> dict[str, tuple[Version, list[str]]]:
    """Package -> (pinned version, its hashes) of one lock file."""
    pins: dict[str, tuple[Version, list[str]]] = {}
    current = ""
    for line in (LOCKS / name).read_text().splitlines():
        if match := PIN.match(line):
            current = canonicalize_name(match["name"])
            pins[current] = (Version(match["version"]), [])
        elif line.strip().startswith("--hash=sha256:") and current:
            pins[current][1].append(line.strip().removeprefix("--hash=sha256:").rstrip(" \\"))
    return pins


def _project() -> dict[str, list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"": project["dependencies"], **project["optional-dependencies"]}
    return {group: [Requirement(r) for r in reqs] for group, reqs in groups.items()}


@pytest.mark.parametrize(("lock", "groups"), [("runtime.lock", ["", "local"]),
                                              ("test.lock", ["", "local", "test"])])  # fmt: skip
def test_every_requirement_is_locked(lock: str, groups: list[str]) -> None:
    pins = _lock(lock)
    project = _project()
    missing, todo, seen = [], list(groups), set(groups)
    while todo:
        for requirement in project[todo.pop()]:
            name = canonicalize_name(requirement.name)
            if name == "switchboard":  # an extra naming another one ("switchboard[offline]")
                todo += sorted(requirement.extras - seen)
                seen |= requirement.extras
                continue
            if name == "llama-cpp-python":
                continue  # compiled from requirements/llama.lock's sdist
            if requirement.marker and not requirement.marker.evaluate(ENVIRONMENT):
                continue
            if name not in pins or not requirement.specifier.contains(pins[name][0], True):
                missing.append(str(requirement))
    assert not missing, f"not in requirements/{lock}; run scripts/lock.sh: {missing}"


@pytest.mark.parametrize("lock", ["runtime.lock", "test.lock", "llama.lock", "pip.lock",
                                  "tools.lock"])  # fmt: skip
def test_every_pin_has_a_sha256(lock: str) -> None:
    pins = _lock(lock)
    assert pins
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for _, hashes in pins.values() for h in hashes)
    assert [name for name, (_, hashes) in pins.items() if not hashes] == []


def test_runtime_and_test_locks_agree() -> None:
    runtime, test = _lock("runtime.lock"), _lock("test.lock")
    assert set(runtime) <= set(test)
    assert {n: v for n, (v, _) in runtime.items() if test[n][0] != v} == {}


def test_torch_is_the_cpu_build_and_llama_matches_pyproject() -> None:
    for lock in ("runtime.lock", "test.lock"):
        pins = _lock(lock)
        assert str(pins["torch"][0]) == "2.13.0+cpu"
        assert not [name for name in pins if name.startswith("nvidia-")], "a CUDA build crept in"
        assert "llama-cpp-python" not in pins
    [llama] = [r for r in _project()["local"] if r.name == "llama-cpp-python"]
    assert llama.specifier.contains(_lock("llama.lock")["llama-cpp-python"][0])

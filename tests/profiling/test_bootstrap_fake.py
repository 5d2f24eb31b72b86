"""``switchboard profiles bootstrap`` against fake hosted providers that count the calls they serve.

One model answers every suite prompt with its gold answer, another answers wrongly; the test
reads what a user reads: the exit status, the printed summary, ``labelled.jsonl``, the profile
manifest, and how many calls each provider served (never paying twice is a count of calls).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.profiling.suite import load_suite
from tests.profiling import fake_provider
from tests.profiling.runs import (
    CALIBRATION,
    REPO,
    bootstrap,
    command,
    env,
    labelled,
    stored,
    write_catalog,
)  # fmt: skip

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _count_from_zero() -> None:
    fake_provider.calls.clear()


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    fake_provider.learn(load_suite("default").items)
    fake_provider.learn(load_suite(CALIBRATION / "routerarena.jsonl").items)
    with fake_provider.fake_provider() as base:
        yield base


def _catalog(tmp: Path, base: str) -> Path:
    return write_catalog(tmp / "catalog.yaml", [
        {"id": "fake/gold", "base_url": f"{base}/gold/fake-gold/v1", "price": (1.0, 2.0)},
        {"id": "fake/wrong", "base_url": f"{base}/wrong/fake-wrong/v1", "price": (0.1, 0.2)},
        {"id": "fake/new", "base_url": f"{base}/gold/fake-new/v1", "price": (0.5, 1.0)},
        {"id": "fake/greedy", "base_url": f"{base}/greedy/fake-greedy/v1", "price": (100.0, 100.0)},
        {"id": "fake/slow", "base_url": f"{base}/slow/150/fake-slow/v1", "price": (1.0, 1.0)},
        {"id": "fake/judge", "base_url": f"{base}/judge/fake-judge/v1", "price": (1.0, 1.0)},
    ])  # fmt: skip


def _ok(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def test_rerun_pays_nothing_and_a_new_model_adds_only_its_own_calls(
    provider: str, tmp_path: Path
) -> None:
    catalog, out = _catalog(tmp_path, provider), tmp_path / "run"
    first = _ok(bootstrap(out, catalog, "--models", "fake/gold,fake/wrong", "--limit", "24",
                          "--yes"))  # fmt: skip
    assert fake_provider.calls["fake-gold"] == 24 and fake_provider.calls["fake-wrong"] == 24
    rows = labelled(out)
    assert len(rows) == 24
    gold = [r["scores"]["fake/gold"] for r in rows]  # type: ignore[index]
    wrong = [r["scores"]["fake/wrong"] for r in rows]  # type: ignore[index]
    assert min(gold) > 0.99, "every gold answer grades as right"
    assert sum(wrong) / len(wrong) < 0.2
    assert {r["task"] for r in rows} >= {"knowledge", "maths", "reasoning", "reading", "code",
                                         "translation"}  # fmt: skip
    record = stored(out)[0]
    assert record["cost_usd"] == pytest.approx(
        (record["prompt_tokens"] * 1.0 + record["completion_tokens"] * 2.0) / 1e6  # type: ignore[operator]
        if record["model"] == "fake/gold"
        else (record["prompt_tokens"] * 0.1 + record["completion_tokens"] * 0.2) / 1e6  # type: ignore[operator]
    )
    assert all(r["latency_ms"]["fake/gold"] > 0 for r in rows)  # type: ignore[index]
    assert "accuracy by kind" in first and "fake/gold" in first

    again = _ok(bootstrap(out, catalog, "--models", "fake/gold,fake/wrong", "--limit", "24",
                          "--yes"))  # fmt: skip
    assert fake_provider.calls["fake-gold"] == 24 and fake_provider.calls["fake-wrong"] == 24
    assert "48 answers already stored" in again

    _ok(bootstrap(out, catalog, "--models", "fake/new", "--limit", "24", "--yes"))
    assert fake_provider.calls["fake-new"] == 24
    assert fake_provider.calls["fake-gold"] == 24 and fake_provider.calls["fake-wrong"] == 24
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["models"] == ["fake/gold", "fake/wrong", "fake/new"]
    assert all(set(r["scores"]) == set(manifest["models"]) for r in labelled(out))  # type: ignore[arg-type]


def test_budget_stops_the_run_with_spend_at_or_under_it(provider: str, tmp_path: Path) -> None:
    catalog, out = _catalog(tmp_path, provider), tmp_path / "run"
    run = _ok(bootstrap(out, catalog, "--models", "fake/greedy", "--limit", "40",
                        "--budget-usd", "0.3", "--concurrency", "8", "--yes"))  # fmt: skip
    spent = sum(float(r["cost_usd"]) for r in stored(out))  # type: ignore[arg-type]
    served = fake_provider.calls["fake-greedy"]
    assert 0 < served < 40, "the budget stopped the run part way"
    assert spent <= 0.3
    assert spent > 0.3 / 3, "and it used most of the budget before stopping"
    assert "budget reached" in run and len(stored(out)) == served
    # a higher budget continues where the last run stopped, without paying for answers again
    _ok(bootstrap(out, catalog, "--models", "fake/greedy", "--limit", "40", "--budget-usd", "50",
                  "--yes"))  # fmt: skip
    assert fake_provider.calls["fake-greedy"] == 40
    assert len(stored(out)) == 40


RESTORE_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def _wait_for_calls(name: str, count: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while fake_provider.calls[name] < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run did not get going"
        time.sleep(0.05)


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_run_loses_nothing_answered(
    provider: str, tmp_path: Path, how: signal.Signals
) -> None:
    catalog, out = _catalog(tmp_path, provider), tmp_path / "run"
    args = ("--models", "fake/slow", "--limit", "30", "--concurrency", "4", "--yes")
    before = fake_provider.calls["fake-slow"]
    # A shell without job control starts background jobs with SIGINT ignored, and Python then
    # never raises KeyboardInterrupt: the run is started with Ctrl-C's default action restored.
    interruptible = [sys.executable, "-c", RESTORE_SIGINT, *command(out, catalog, *args)]
    process = subprocess.Popen(interruptible, env=env(), cwd=REPO, text=True,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)  # fmt: skip
    _wait_for_calls("fake-slow", before + 14, process)  # so at least 10 have completed
    process.send_signal(how)
    _, err = process.communicate(timeout=60)
    if how == signal.SIGINT:
        assert process.returncode == 130 and "run the same command again" in err
    kept = stored(out)
    assert 10 <= len(kept) < 30
    assert len({r["item"] for r in kept}) == len(kept)
    served = fake_provider.calls["fake-slow"]
    _ok(bootstrap(out, catalog, *args))
    assert fake_provider.calls["fake-slow"] - served == 30 - len(kept), "only the missing calls"
    assert len(labelled(out)) == 30


def test_paid_calls_wait_for_confirmation(provider: str, tmp_path: Path) -> None:
    catalog, out = _catalog(tmp_path, provider), tmp_path / "run"
    before = fake_provider.calls["fake-gold"]
    run = bootstrap(out, catalog, "--models", "fake/gold", "--limit", "5")
    assert run.returncode != 0
    assert "--yes" in run.stderr and "est. cost" in run.stdout
    assert fake_provider.calls["fake-gold"] == before, "nothing was sent"


def test_open_ended_prompts_are_judged_through_the_gateway(provider: str, tmp_path: Path) -> None:
    catalog, out = _catalog(tmp_path, provider), tmp_path / "run"
    unjudged = _ok(bootstrap(out, catalog, "--models", "fake/gold", "--limit", "14", "--yes"))
    assert "40 open-ended (need --judge)" in unjudged
    assert all(r["task"] != "assistant" for r in labelled(out))
    judged = _ok(bootstrap(out, catalog, "--models", "fake/gold", "--limit", "14",
                           "--judge", "fake/judge", "--yes"))  # fmt: skip
    assistant = [r for r in labelled(out) if r["task"] == "assistant"]
    assert assistant and fake_provider.calls["fake-judge"] == len(assistant)
    assert all(r["scores"]["fake/gold"] == 1.0 for r in assistant)  # type: ignore[index]
    assert "judge fake/judge" in judged


def test_a_shared_suite_file_is_read_in_place_and_graded(provider: str, tmp_path: Path) -> None:
    catalog, out = _catalog(tmp_path, provider), tmp_path / "run"
    suite = CALIBRATION / "routerarena.jsonl"
    run = _ok(bootstrap(out, catalog, "--models", "fake/gold", "--suite", str(suite),
                        "--limit", "30", "--yes"))  # fmt: skip
    rows = labelled(out)
    assert len(rows) == 30 and str(suite) in run
    # METEOR keeps a small fragmentation penalty even for a copy of a short reference
    assert min(r["scores"]["fake/gold"] for r in rows) > 0.95  # type: ignore[index]
    assert len({r["source"] for r in rows}) >= 20, "the sample spreads over the file's sources"

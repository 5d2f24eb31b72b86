"""The offline commands a user runs on their own data: build, predict, eval, calibrate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TOPICS = {
    "code": ["Write a Python function that {}.", ["reverses a string", "sums a list", "sorts a dict",
             "parses JSON", "counts words", "finds primes", "merges lists", "reads a file"]],
    "cooking": ["How do I {} at home?", ["bake bread", "roast a chicken", "make pasta", "cook rice",
                "fry an egg", "make soup", "grill fish", "steam vegetables"]],
}  # fmt: skip


def _labelled(path: Path, repeat: int) -> None:
    """'strong' is always right and dear; 'coder' is right on code only and cheap."""
    rng = np.random.default_rng(1)
    lines = []
    for topic, (template, fills) in TOPICS.items():
        for r in range(repeat):
            for fill in fills:
                coder_right = 1.0 if topic == "code" else float(rng.random() < 0.2)
                lines.append({"id": f"{topic}-{fill}-{r}", "task": topic, "prompt": template.format(fill) + f" ({r})",
                              "scores": {"strong": 1.0, "coder": coder_right},
                              "cost": {"strong": 0.01, "coder": 0.0001}})  # fmt: skip
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")


def _switchboard(*args: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)} if pythonpath else None
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("offline")
    _labelled(root / "train.jsonl", repeat=4)
    _labelled(root / "test.jsonl", repeat=1)
    built = _switchboard(
        "profiles", "build", "--data", str(root / "train.jsonl"), "--out", str(root / "profiles")
    )
    assert built.returncode == 0, built.stderr
    return root


def test_profiles_build_writes_a_versioned_directory(workdir: Path) -> None:
    manifest = json.loads((workdir / "profiles" / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["models"] == ["strong", "coder"]
    assert manifest["prompts"] == 64


def test_predict_writes_one_line_per_prompt_in_order_with_every_model(workdir: Path) -> None:
    prompts = workdir / "prompts.jsonl"
    rows = [{"id": 7, "prompt": "Write a Python function that reverses a list.", "extra": "ignored"},
            {"id": "b", "prompt": "How do I bake a cake at home?"}]  # fmt: skip
    prompts.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    done = _switchboard("predict", "--profiles", str(workdir / "profiles"), "--input", str(prompts),
                        "--output", str(workdir / "out.jsonl"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in (workdir / "out.jsonl").read_text().splitlines()]
    assert [o["id"] for o in out] == [7, "b"]
    for o in out:
        assert set(o["candidates"]) == {"strong", "coder"}
        assert all(
            isinstance(v["quality"], float) and isinstance(v["cost"], float)
            for v in o["candidates"].values()
        )
    assert out[0]["choice"] == "coder"  # as good as strong on code, and cheaper
    assert out[1]["choice"] == "strong"


def test_eval_writes_report_and_beats_the_single_models(workdir: Path) -> None:
    done = _switchboard("eval", "--profiles", str(workdir / "profiles"), "--data", str(workdir / "test.jsonl"),
                        "--out", str(workdir / "report"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    for name in ("report.md", "report.json", "cost_quality.png"):
        assert (workdir / "report" / name).stat().st_size > 0
    report = json.loads((workdir / "report" / "report.json").read_text())
    metrics = report["metrics"]
    assert metrics["AIQ router"] > metrics["AIQ single-model hull (random mixes)"]
    assert metrics["router cost at best single's quality (USD)"] < 0.01  # strong's quality, cheaper
    assert "APGR" in metrics and "CPT(50%)" in metrics  # two models: RouteLLM's measures too


def test_eval_without_matplotlib_still_writes_the_numbers(workdir: Path, tmp_path: Path) -> None:
    (tmp_path / "matplotlib").mkdir()  # shadows the installed one, as if the extra were absent
    (tmp_path / "matplotlib" / "__init__.py").write_text("raise ImportError('not installed')\n")
    done = _switchboard("eval", "--profiles", str(workdir / "profiles"), "--data", str(workdir / "test.jsonl"),
                        "--out", str(tmp_path / "report"), pythonpath=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == ["report.json", "report.md"]
    assert "no plot: matplotlib is missing" in done.stdout


def test_calibrate_finds_a_weight_that_meets_the_budget(workdir: Path) -> None:
    done = _switchboard(
        "calibrate", "--data", str(workdir / "train.jsonl"), "--target-cost-usd", "0.006"
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["met"] and 0.0055 <= result["mean_cost_usd"] <= 0.006  # spends the budget
    assert result["mean_quality"] > 0.8


def test_bad_data_is_a_readable_error(workdir: Path) -> None:
    bad = workdir / "bad.jsonl"
    bad.write_text('{"prompt": "x", "scores": {"a": 1}}\nnot json\n')
    done = _switchboard("profiles", "build", "--data", str(bad), "--out", str(workdir / "nope"))
    assert done.returncode != 0
    assert "bad.jsonl:2" in done.stderr and "Traceback" not in done.stderr

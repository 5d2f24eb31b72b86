"""The deployment files in the README are valid: Kubernetes schemas and the Compose spec."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from compose_spec import PyCompose

DEPLOY = Path(__file__).parents[1] / "deploy"
MANIFESTS = sorted((DEPLOY / "k8s").glob("*.yaml"))


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_kubernetes_manifests_match_the_schema(path: Path) -> None:
    for resource in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(resource, "1.33", strict=True)


def test_manifest_set_is_complete_and_consistent() -> None:
    resources = [r for p in MANIFESTS for r in yaml.safe_load_all(p.read_text())]
    kinds = {r["kind"] for r in resources}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler"} <= kinds
    deployment = next(r for r in resources if r["kind"] == "Deployment")
    hpa = next(r for r in resources if r["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "SWITCHBOARD_REDIS_URL" in env
    assert all("value" not in e for n, e in env.items() if n.endswith("_KEY"))  # keys from Secrets


def test_compose_file_matches_the_compose_spec() -> None:
    compose = PyCompose.from_yaml((DEPLOY / "compose.yaml").read_text())
    assert set(compose.service_names()) == {"redis", "switchboard"}
    with pytest.raises(ValueError, match="bogus"):
        PyCompose.from_yaml("services:\n  a:\n    image: x\n    bogus: 1\n")

"""The deployment files in the README are valid (Kubernetes schemas, the Compose spec) and safe.

Safe means what issue 13 asks of them: keys required, no default admin key, containers that
cannot gain privileges or write their root filesystem, Redis behind a password from a Secret and
a NetworkPolicy, and a Redis memory cap whose policy never evicts keys or budgets.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from compose_spec import PyCompose

DEPLOY = Path(__file__).parents[1] / "deploy"
MANIFESTS = sorted((DEPLOY / "k8s").glob("*.yaml"))
REQUIRED_VARIABLE = re.compile(r"^\$\{(?P<name>[A-Z_]+):\?[^}]+\}$")


def _resources() -> list[dict[str, Any]]:
    return [r for p in MANIFESTS for r in yaml.safe_load_all(p.read_text())]


def _kind(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [r for r in _resources() if r["kind"] == kind]
    return next(r for r in found if name is None or r["metadata"]["name"] == name)


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def _compose() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return raw


def _redis_flag(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_kubernetes_manifests_match_the_schema(path: Path) -> None:
    for resource in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(resource, "1.33", strict=True)


def test_manifest_set_is_complete_and_consistent() -> None:
    kinds = {r["kind"] for r in _resources()}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "NetworkPolicy"} <= kinds
    deployment = _kind("Deployment")
    hpa = _kind("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    env = _env(deployment["spec"]["template"]["spec"]["containers"][0])
    assert "SWITCHBOARD_REDIS_URL" in env
    secrets = [e for n, e in env.items()
               if n.endswith(("_KEY", "_PASSWORD")) and n != "SWITCHBOARD_REQUIRE_API_KEY"]  # fmt: skip
    assert len(secrets) >= 3 and all("value" not in e for e in secrets)  # all from Secrets


def _pod_specs() -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r["spec"]["template"]["spec"]
            for r in _resources() if r["kind"] in ("Deployment", "StatefulSet")}  # fmt: skip


@pytest.mark.parametrize("workload", ["switchboard", "switchboard-redis"])
def test_every_container_is_locked_down(workload: str) -> None:
    pod = _pod_specs()[workload]
    assert pod["automountServiceAccountToken"] is False
    for container in pod.get("initContainers", []) + pod["containers"]:
        context = pod["securityContext"] | container.get("securityContext", {})
        assert context["runAsNonRoot"] is True and context["runAsUser"] > 0, container["name"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["capabilities"] == {"drop": ["ALL"]}, container["name"]
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, container["name"]
        assert "limits" in container["resources"], container["name"]


def test_switchboard_writes_only_to_its_volumes() -> None:
    pod = _pod_specs()["switchboard"]
    container = pod["containers"][0]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    cache_dir = _env(container)["SWITCHBOARD_CACHE_DIR"]["value"]
    assert {cache_dir, "/tmp"} <= set(mounts)
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert all("emptyDir" in volumes[mounts[path]] for path in (cache_dir, "/tmp"))
    # the image's prebuilt models (ONNX encoder, GGUF, Whisper) are copied into the cache volume
    seed = pod["initContainers"][0]
    assert seed["image"] == container["image"]
    assert any(m["name"] == mounts[cache_dir] for m in seed["volumeMounts"])


def test_keys_are_required_and_the_admin_key_has_no_default() -> None:
    env = _env(_pod_specs()["switchboard"]["containers"][0])
    assert env["SWITCHBOARD_REQUIRE_API_KEY"]["value"] == "true"
    admin = env["SWITCHBOARD_ADMIN_KEY"]["valueFrom"]["secretKeyRef"]
    assert admin.get("optional", False) is False
    compose = _compose()["services"]["switchboard"]["environment"]
    assert compose["SWITCHBOARD_REQUIRE_API_KEY"] == "true"
    required = REQUIRED_VARIABLE.match(compose["SWITCHBOARD_ADMIN_KEY"])
    assert required and required["name"] == "SWITCHBOARD_ADMIN_KEY"


def test_redis_needs_a_password_from_a_secret() -> None:
    redis = _pod_specs()["switchboard-redis"]["containers"][0]
    secret = _env(redis)["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert secret.get("optional", False) is False
    assert _redis_flag(redis["args"], "--requirepass") == "$(REDIS_PASSWORD)"
    switchboard = _env(_pod_specs()["switchboard"]["containers"][0])
    assert switchboard["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == secret
    names = list(switchboard)
    assert names.index("REDIS_PASSWORD") < names.index("SWITCHBOARD_REDIS_URL")  # $(...) order
    assert "$(REDIS_PASSWORD)@" in switchboard["SWITCHBOARD_REDIS_URL"]["value"]
    services = _compose()["services"]
    password = _redis_flag(services["redis"]["command"], "--requirepass")
    assert REQUIRED_VARIABLE.match(password)
    url = services["switchboard"]["environment"]["SWITCHBOARD_REDIS_URL"]
    assert url == f"redis://:{password}@redis:6379/0"


def test_only_switchboard_may_reach_redis() -> None:
    policy = _kind("NetworkPolicy")["spec"]
    redis = _kind("StatefulSet", "switchboard-redis")
    switchboard = _kind("Deployment", "switchboard")
    assert policy["podSelector"]["matchLabels"] == redis["spec"]["template"]["metadata"]["labels"]
    assert policy["policyTypes"] == ["Ingress"]
    [rule] = policy["ingress"]
    [source] = rule["from"]
    assert source == {
        "podSelector": {"matchLabels": switchboard["spec"]["selector"]["matchLabels"]}
    }
    assert rule["ports"] == [{"protocol": "TCP", "port": 6379}]


def test_redis_memory_is_capped_without_evicting_keys_or_budgets() -> None:
    """Holds and rate windows carry TTLs (app/state/lua.py), so a volatile-* policy could evict
    them; only ``noeviction`` keeps every key (tests/state/test_redis_memory.py runs it)."""
    redis = _pod_specs()["switchboard-redis"]["containers"][0]
    compose = _compose()["services"]["redis"]["command"]
    for args in (redis["args"], compose):
        assert _redis_flag(args, "--maxmemory-policy") == "noeviction"
        assert _redis_flag(args, "--maxmemory").endswith("mb")
    limit = redis["resources"]["limits"]["memory"]
    assert int(_redis_flag(redis["args"], "--maxmemory").removesuffix("mb")) < int(
        limit.removesuffix("Mi")
    )


def test_compose_file_matches_the_compose_spec() -> None:
    compose = PyCompose.from_yaml((DEPLOY / "compose.yaml").read_text())
    assert set(compose.service_names()) == {"redis", "switchboard"}
    with pytest.raises(ValueError, match="bogus"):
        PyCompose.from_yaml("services:\n  a:\n    image: x\n    bogus: 1\n")


@pytest.mark.parametrize("service", ["redis", "switchboard"])
def test_compose_containers_are_locked_down(service: str) -> None:
    spec = _compose()["services"][service]
    assert spec["read_only"] is True
    assert spec["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in spec["security_opt"]
    assert "/tmp" in spec["tmpfs"]


def test_images_are_pinned() -> None:
    dockerfile = (DEPLOY.parent / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert bases and all(re.search(r":\d+\.\d+\.\d+[^@]*@sha256:[0-9a-f]{64}$", b) for b in bases)
    redis_images = [_compose()["services"]["redis"]["image"],
                    _pod_specs()["switchboard-redis"]["containers"][0]["image"]]  # fmt: skip
    assert len(set(redis_images)) == 1
    assert re.fullmatch(r"redis:\d+\.\d+\.\d+-alpine", redis_images[0])

"""The deployment files, checked with the real tools: hadolint for the Dockerfiles, Docker
Compose's own loader for the compose file, kustomize and the Kubernetes JSON schemas for
the manifests (no Docker engine or cluster is needed for any of it)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SERVICES = ("registry", "sync", "notify", "console")
OVERLAYS = sorted(p.name for p in (ROOT / "deploy/k8s/overlays").iterdir() if p.is_dir())
MODULES = {
    "registry": "yixian.registry",
    "sync": "yixian.sync",
    "notify": "yixian.notify",
    "console": "yixian.console",
}

pytestmark = pytest.mark.deploy


def _run(*command: str | Path) -> str:
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{command[0]} failed:\n{done.stdout}{done.stderr}"
    return done.stdout


@pytest.mark.parametrize("service", SERVICES)
def test_each_dockerfile_lints_clean_and_runs_its_service_as_non_root(service: str) -> None:
    dockerfile = ROOT / "services" / service / "Dockerfile"
    _run(BIN / "hadolint", "--failure-threshold", "warning", dockerfile)
    text = dockerfile.read_text()
    final_stage = text.rsplit("\nFROM ", 1)[1]
    assert "USER 10001:10001" in final_stage
    assert f'ENTRYPOINT ["python", "-m", "{MODULES[service]}"]' in final_stage
    assert f"--package yixian-{service}" in text
    for source in ("contracts", "libs", "services", "ops", "deploy/local", "uv.lock"):
        assert f"COPY {source} " in text or f"COPY pyproject.toml {source}" in text, source
        assert (ROOT / source).exists()


def _compose_config(env_file: Path) -> dict[str, Any]:
    out = _run(
        BIN / "docker-compose", "-f", ROOT / "deploy/compose.yaml", "--env-file", env_file,
        "config", "--format", "json",
    )  # fmt: skip
    return yaml.safe_load(out)  # type: ignore[no-any-return]


def test_the_compose_file_is_valid_and_wires_two_secure_nodes() -> None:
    config = _compose_config(ROOT / "deploy/compose.env.example")
    services = config["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    kafka_env = services["kafka"]["environment"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    assert kafka_env["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert kafka_env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    for node, code in (("gushi", "411525"), ("chaoyang", "110105")):
        for part in ("registry", "relay", "sync", "notify", "console"):
            service = services[f"{node}-{part}"]
            env = service["environment"]
            assert env["YIXIAN_NODE"] == code
            assert env["YIXIAN_PARTNERS"] == {"411525": "110105", "110105": "411525"}[code]
            assert env["YIXIAN_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
            assert env["YIXIAN_KAFKA_USERNAME"] == f"node-{code}"
            assert f"@{node}-db:" in env["YIXIAN_DATABASE_URL"]  # one PostgreSQL per node
            assert service["read_only"] is True
            assert service["depends_on"]["link"]["condition"] == "service_completed_successfully"
        console = services[f"{node}-console"]
        assert console["environment"]["YIXIAN_REGISTRY_URL"] == f"http://{node}-registry:8000"
        assert console["environment"]["YIXIAN_SYNC_URL"] == f"http://{node}-sync:8001"
        assert [p["host_ip"] for p in console["ports"]] == ["127.0.0.1"]  # the node's staff only
        assert services[f"{node}-init"]["entrypoint"] == ["yixian", "node", "init"]
    assert services["link"]["entrypoint"] == ["yixian", "partner", "link", "411525", "110105"]


def test_the_compose_file_refuses_to_start_without_its_secrets(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    done = subprocess.run(
        [str(BIN / "docker-compose"), "-f", str(ROOT / "deploy/compose.yaml"),
         "--env-file", str(empty), "config", "--format", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.stdout == ""  # no configuration comes out of it
    assert "is missing a value: set it in .env" in done.stderr


def _kustomize(overlay: Path) -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        return _run(kubectl, "kustomize", overlay)
    return _run("go", "run", "sigs.k8s.io/kustomize/kustomize/v5@v5.5.0", "build", overlay)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlay_builds_and_validates_against_the_kubernetes_schemas(
    overlay: str, tmp_path: Path
) -> None:
    rendered = tmp_path / f"{overlay}.yaml"
    rendered.write_text(_kustomize(ROOT / "deploy/k8s/overlays" / overlay))
    _run(BIN / "kubernetes-validate", "--strict", "--quiet", rendered)

    documents = [d for d in yaml.safe_load_all(rendered.read_text()) if d]
    kinds = sorted(d["kind"] for d in documents)
    assert kinds.count("Deployment") == 5
    assert "Job" in kinds
    console = next(
        d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == "console"
    )
    console_env = {
        e["name"]: e["value"] for e in console["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert console_env["YIXIAN_REGISTRY_URL"] == "http://registry"  # the node's own services
    assert console_env["YIXIAN_CONSOLE_SECURE_COOKIE"] == "true"
    config = next(d for d in documents if d["kind"] == "ConfigMap")["data"]
    namespace = next(d for d in documents if d["kind"] == "Namespace")["metadata"]["name"]
    assert namespace == f"yixian-{config['YIXIAN_NODE']}"
    assert config["YIXIAN_PARTNERS"]  # registry refuses movements to anyone else
    for document in documents:
        if document["kind"] not in {"Deployment", "Job"}:
            continue
        pod = document["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert {"requests", "limits"} <= set(container["resources"])
            assert container["image"].startswith("registry.")  # the overlay's registry
            if document["kind"] == "Deployment":
                assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
                assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_the_node_host_builds_validates_and_holds_no_node_in_its_environment(
    tmp_path: Path,
) -> None:
    rendered = tmp_path / "host.yaml"
    rendered.write_text(_kustomize(ROOT / "deploy/k8s/host"))
    _run(BIN / "kubernetes-validate", "--strict", "--quiet", rendered)

    documents = [d for d in yaml.safe_load_all(rendered.read_text()) if d]
    deployments = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Deployment"}
    assert sorted(deployments) == ["notify", "registry", "sync"]  # the three, not per node
    config = next(d for d in documents if d["kind"] == "ConfigMap")["data"]
    assert not any(
        name.startswith(("YIXIAN_NODE", "YIXIAN_KAFKA", "YIXIAN_DATABASE")) for name in config
    )
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"] == ["host"]
        assert container["image"].startswith("registry.")
        assert not any(e.get("secretRef") for e in container["envFrom"])  # nodes are files
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["nodes"]["mountPath"] == config["YIXIAN_HOST_DIR"]
        assert mounts["nodes"]["readOnly"] is True
        nodes = next(v for v in pod["volumes"] if v["name"] == "nodes")
        assert nodes["secret"]["defaultMode"] == 0o400
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name

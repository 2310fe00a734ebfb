"""The deployment files as the real tools read them: `docker compose config` and `kubectl kustomize`.

Each test runs only where its program is installed (it skips, saying so, elsewhere); the checks that
need no external program are in tests/unit/test_deploy.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from tests.unit.test_deploy import COMPOSE_FILE, COMPOSE_PASSWORDS, K8S_DIR, NAMESPACE, RABBITMQ_DIR


def test_docker_compose_config_accepts_the_file():
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not installed")
    if subprocess.run([docker, "compose", "version"], capture_output=True, timeout=60).returncode != 0:
        pytest.skip("Docker Compose (the `docker compose` plugin) is not installed")
    env = {**os.environ, "TICKETFLOW_JWT_SECRET": "j" * 32, **COMPOSE_PASSWORDS}
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_kustomize_builds_the_manifests():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    result = subprocess.run([kubectl, "kustomize", str(K8S_DIR)], capture_output=True, text=True, timeout=120)
    if result.returncode != 0 and "unknown command" in result.stderr:
        pytest.skip("this kubectl has no kustomize")
    assert result.returncode == 0, result.stderr
    built = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert {doc["metadata"].get("namespace") for doc in built if doc["kind"] != "Namespace"} == {NAMESPACE}
    (definitions_map,) = [d for d in built if d["metadata"]["name"] == "ticketflow-rabbitmq-definitions"]
    assert definitions_map["data"]["definitions.json"] == (RABBITMQ_DIR / "definitions.json").read_text()


def test_kustomize_with_opensearch_frees_search_s_pods_from_the_index_volume(tmp_path):
    """With the opensearch component the api pods mount no ReadWriteOnce index and follow no node, nor the worker
    theirs: the HPA may then put them anywhere."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    copy = tmp_path / "k8s"
    shutil.copytree(K8S_DIR, copy)
    kustomization = yaml.safe_load((copy / "kustomization.yaml").read_text())
    (copy / "kustomization.yaml").write_text(yaml.safe_dump({**kustomization, "components": ["opensearch"]}))
    result = subprocess.run([kubectl, "kustomize", str(copy)], capture_output=True, text=True, timeout=120)
    if result.returncode != 0 and "unknown command" in result.stderr:
        pytest.skip("this kubectl has no kustomize")
    assert result.returncode == 0, result.stderr
    built = {d["metadata"]["name"]: d for d in yaml.safe_load_all(result.stdout) if d and d["kind"] == "Deployment"}
    for name in ("search-api", "search-worker"):
        pod = built[name]["spec"]["template"]["spec"]
        assert "affinity" not in pod, name
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        assert env["TICKETFLOW_SEARCH_ENGINE"] == "opensearch", name
    api = built["search-api"]["spec"]["template"]["spec"]
    assert not [v for v in api["volumes"] if v.get("persistentVolumeClaim")]
    assert "/var/lib/ticketflow/search" not in {m["mountPath"] for m in api["containers"][0]["volumeMounts"]}

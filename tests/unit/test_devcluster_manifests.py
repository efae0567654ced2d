"""devcluster reads its pods' settings, env, probes and entrypoints from manifests/."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from bootstrap.settings import parse_job_settings
from devcluster.manifests import MANIFESTS, load
from sidecar.settings import parse_sidecar_settings


def test_the_base_gives_probe_paths_ports_and_entrypoints() -> None:
    m = load()
    assert (m.startup_path, m.readiness_path, m.liveness_path) == ("/startupz", "/readyz", "/livez")
    assert m.sidecar_port == int(m.settings["HTTP_PORT"]) == int(m.job_settings["SIDECAR_PORT"])
    assert m.sidecar_command == (sys.executable, "-m", "sidecar")
    assert m.job_command == (sys.executable, "-m", "bootstrap")


def test_downward_api_values_fill_the_sidecar_env(tmp_path: Path) -> None:
    m = load()
    fields = {
        "status.podIP": "127.9.0.4",
        "metadata.name": "redis-3",
        "metadata.namespace": "prod",
        "spec.nodeName": "devnode-0",
    }
    secret = tmp_path / "password"
    secret.write_text("s3cret")
    env = {**m.settings, **m.env(m.sidecar_env, fields), "REDIS_PASSWORD_FILE": str(secret)}
    settings = parse_sidecar_settings([], env)
    assert (settings.pod_ip, settings.pod_name, settings.cluster.namespace) == (
        "127.9.0.4",
        "redis-3",
        "prod",
    )
    assert settings.node_name == "devnode-0"
    with pytest.raises(KeyError, match=r"status\.podIP"):
        m.env(m.sidecar_env, {})


def test_the_job_loads_both_settings_configmaps_and_the_pods_only_the_shared_one(
    tmp_path: Path,
) -> None:
    m = load()
    job_only = {"CLUSTER_SIZE", "REPLICAS_PER_MASTER", "TIMEOUT_SECONDS", "SIDECAR_PORT"}
    assert job_only <= m.job_settings.keys()
    # A resize changes only the Job's settings: no pod may load them, or every pod would roll.
    assert not (job_only | {"REASSIGN_LOST_SLOTS"}) & m.settings.keys()
    assert m.settings.items() <= m.job_settings.items()
    # Accepting a lost shard is a decision for one run, never the default.
    assert m.job_settings.get("REASSIGN_LOST_SLOTS", "false") == "false"
    secret = tmp_path / "password"
    secret.write_text("s3cret")
    job_env = {
        **m.job_settings,
        **m.env(m.job_env, {"metadata.namespace": "prod"}),
        "REDIS_PASSWORD_FILE": str(secret),
    }
    settings = parse_job_settings([], job_env)
    assert (settings.cluster_size, settings.cluster.namespace) == (6, "prod")
    assert settings.reassign_lost_slots is False


def test_a_changed_manifest_changes_what_devcluster_runs(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(MANIFESTS, root / "manifests")
    for name in ("Dockerfile.init", "Dockerfile.sidecar"):
        shutil.copy(MANIFESTS.parent / name, root / name)
    sts = root / "manifests" / "statefulset.yaml"
    sts.write_text(sts.read_text().replace("path: /startupz", "path: /startup"))
    kustomization = root / "manifests" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("CLUSTER_SIZE=6", "CLUSTER_SIZE=9"))
    changed = load(root / "manifests")
    assert changed.startup_path == "/startup"
    assert changed.job_settings["CLUSTER_SIZE"] == "9"

"""What devcluster's simulated nodes and zones give each sidecar, and old state files."""

from __future__ import annotations

import json
from pathlib import Path

from devcluster.cluster import DevCluster
from devcluster.manifests import MANIFESTS, ZONE_LABEL, load, render
from devcluster.state import ClusterState, PodRecord, StateDir
from sidecar.settings import parse_sidecar_settings


def cluster_with(tmp_path: Path, zones: int, overrides: dict[str, str]) -> DevCluster:
    cluster = DevCluster(tmp_path / "dc")
    state = ClusterState(octet=99, nodes=3, zones=zones, sidecar_overrides=overrides)
    state.pods = [PodRecord(f"redis-{i}", i, f"127.99.0.{i + 1}") for i in range(6)]
    cluster.state = state
    cluster.schedule(state.pods)
    return cluster


def test_the_sidecar_learns_its_node_and_zone_from_the_downward_api(tmp_path: Path) -> None:
    cluster = cluster_with(tmp_path, zones=3, overrides={"DRIFT_QUIET_SECONDS": "5"})
    pod = cluster.require().pod("redis-4")
    env = cluster.sidecar_env(pod)
    assert (env["NODE_NAME"], env["ZONE"]) == (pod.node, pod.zone)
    assert pod.zone.startswith("devzone-")
    assert env["DRIFT_QUIET_SECONDS"] == "5"
    secret = tmp_path / "password"
    secret.write_text("s3cret")
    settings = parse_sidecar_settings([], {**env, "REDIS_PASSWORD_FILE": str(secret)})
    assert (settings.node_name, settings.zone) == (pod.node, pod.zone)


def test_without_zones_the_label_is_missing_and_zone_is_empty(tmp_path: Path) -> None:
    cluster = cluster_with(tmp_path, zones=0, overrides={})
    pod = cluster.require().pod("redis-0")
    env = cluster.sidecar_env(pod)
    assert env["ZONE"] == ""
    assert env["NODE_NAME"] == pod.node != ""


def test_a_label_fieldref_reads_the_pods_labels_and_a_missing_label_is_empty() -> None:
    m = load()
    fields = {"status.podIP": "10.0.0.1", "metadata.name": "redis-0", "metadata.namespace": "x"}
    fields["spec.nodeName"] = "node-a"
    assert m.env(m.sidecar_env, fields, {ZONE_LABEL: "eu-west-1b"})["ZONE"] == "eu-west-1b"
    # As the kubelet: a label the pod lacks is an empty string, not an error.
    assert m.env(m.sidecar_env, fields, {})["ZONE"] == ""
    assert m.env(m.sidecar_env, fields)["ZONE"] == ""
    assert m.pod_labels["app.kubernetes.io/instance"] == "redis"


def test_state_files_from_before_nodes_still_load(tmp_path: Path) -> None:
    dirs = StateDir(tmp_path)
    tmp_path.mkdir(exist_ok=True)
    old = {
        "octet": 40,
        "pods": [{"name": "redis-0", "ordinal": 0, "ip": "127.40.0.1", "running": True}],
    }
    dirs.state_file.write_text(json.dumps(old))
    state = dirs.load()
    assert (state.nodes, state.zones, state.placement_seed, state.sidecar_overrides) == (
        3,
        0,
        0,
        {},
    )
    assert (state.pods[0].node, state.pods[0].zone, state.pods[0].crashed) == ("", "", False)
    dirs.save(state)
    assert dirs.load() == state


def test_the_statefulset_spreads_softly_over_zones_then_nodes() -> None:
    sts = next(o for o in render(MANIFESTS) if o["kind"] == "StatefulSet")
    constraints = sts["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in constraints] == [ZONE_LABEL, "kubernetes.io/hostname"]
    # Soft: a hard constraint would leave a pod Pending while its zone or node is down.
    assert {(c["maxSkew"], c["whenUnsatisfiable"]) for c in constraints} == {(1, "ScheduleAnyway")}
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert all(c["labelSelector"]["matchLabels"] == labels for c in constraints)

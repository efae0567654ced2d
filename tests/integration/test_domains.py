"""Failure domains on real servers: a node-pool upgrade drifts the masters, the sidecars move
them back, and a node crash afterwards costs one failover; a replica whose master came back
at a new address is pointed at it again. Keys written before each event are read back."""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Callable

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from clusterkit.core.nodes import parse_cluster_nodes
from clusterkit.io.httpget import http_get
from clusterkit.io.waiting import wait_until
from devcluster.cluster import DevCluster
from devcluster.placement import node_name, ordinal_trap_seed, zone_name
from devcluster.rollout import fail_over
from tests.integration.helpers import formed_with_keys, missing_keys, write_keys, writing

pytestmark = [pytest.mark.integration, pytest.mark.needs_server]

MakeCluster = Callable[..., DevCluster]
KEYS = 2000
FAST_DRIFT = {"DRIFT_QUIET_SECONDS": "3", "DRIFT_CHECK_SECONDS": "1"}
"""A quiet period of seconds, not a minute: the tests wait for the repairs."""
SPREAD_SECONDS = 90.0
"""A bound that stops a hang: a repair takes a quiet period and a failover (seconds)."""
SERVED_SECONDS = 60.0
"""A bound that stops a hang: one failover takes cluster-node-timeout and an election."""


def spread(cluster: DevCluster) -> bool:
    try:
        return cluster.masters_spread()
    except redis.RedisError:
        return False


def served(cluster: DevCluster, pods: list[str]) -> bool:
    """Every pod of `pods` says cluster_state ok and sees every slot owned by a master it is
    connected to and does not flag as failing."""
    for pod in pods:
        try:
            client = cluster.client(pod, 1.0)
            if "cluster_state:ok" not in str(client.execute_command("CLUSTER", "INFO")):
                return False
            lines = parse_cluster_nodes(str(client.execute_command("CLUSTER", "NODES")))
        except redis.RedisError:
            return False
        owned = sum(n.slot_count for n in lines if n.is_master and (n.is_myself or not n.is_down))
        if owned != 16384:
            return False
    return True


def formed(make_cluster: MakeCluster) -> tuple[DevCluster, dict[str, str]]:
    return formed_with_keys(make_cluster, KEYS, sidecar_env=FAST_DRIFT)


@pytest.mark.slow
def test_after_a_node_pool_upgrade_a_node_crash_costs_one_failover(
    make_cluster: MakeCluster,
) -> None:
    cluster, keys = formed(make_cluster)
    for node in range(3):
        cluster.drain_node(node_name(node))
    wait_until(lambda: spread(cluster), timeout=SPREAD_SECONDS, what="masters one per node")
    crashed = cluster.crash_node(node_name(0))
    survivors = [p.name for p in cluster.require().pods if p.name not in crashed]
    wait_until(lambda: served(cluster, survivors), timeout=SERVED_SECONDS, what="every slot")
    roles = cluster.roles()
    failing = {r["pod"] for r in roles if {"fail", "fail?"} & set(r["flags"].split(","))}
    assert failing == set(crashed), roles
    owners = [r for r in roles if r["role"] == "master" and r["slots"] != "-"]
    assert len(owners) == 3 and all(r["pod"] not in crashed for r in owners), roles
    assert missing_keys(cluster, keys) == []


def test_with_zones_masters_spread_over_zones_and_a_zone_crash_costs_one_failover(
    make_cluster: MakeCluster,
) -> None:
    # 6 nodes in 3 zones, one pod each, seeded so that masters by ordinal would share a zone:
    # the zones, not the nodes, are the failure domains.
    seed = ordinal_trap_seed(pods=6, nodes=6, zones=3)
    cluster = make_cluster(6, 1, nodes=6, zones=3, seed=seed, sidecar_env=FAST_DRIFT)
    zone = {p.name: p.zone for p in cluster.require().pods}
    assert len({zone[f"redis-{i}"] for i in range(3)}) < 3, zone
    assert cluster.run_job().returncode == 0
    write_keys(cluster, KEYS)
    roles = cluster.roles()
    masters = [r for r in roles if r["role"] == "master" and r["slots"] != "-"]
    assert sorted(r["zone"] for r in masters) == [zone_name(z, 3) for z in range(3)], roles
    assert all(r["zone"] != zone[r["master"]] for r in roles if r["role"] == "replica"), roles
    crashed = [
        pod
        for n in range(6)
        if zone_name(n, 3) == zone_name(0, 3)
        for pod in cluster.crash_node(node_name(n))
    ]
    assert len(crashed) == 2
    survivors = [p.name for p in cluster.require().pods if p.name not in crashed]
    wait_until(lambda: served(cluster, survivors), timeout=SERVED_SECONDS, what="every slot")
    assert missing_keys(cluster, {f"key:{i}": str(i) for i in range(KEYS)}) == []


def test_masters_drifted_onto_one_node_move_back_under_writes_losing_nothing(
    make_cluster: MakeCluster,
) -> None:
    cluster, keys = formed(make_cluster)
    # A replica takes over, as a drain's handover may: its node then holds 2 of 3 masters.
    two_masters_on_one_node(cluster)
    with writing(cluster) as acknowledged:
        wait_until(lambda: spread(cluster), timeout=SPREAD_SECONDS, what="masters one per node")
    assert acknowledged
    assert missing_keys(cluster, {**keys, **acknowledged}) == []
    assert sum(drift_repairs(cluster, pod.name)["failover"] for pod in cluster.require().pods) == 1


def drift_repairs(cluster: DevCluster, pod: str) -> Counter[str]:
    status, body = http_get(cluster.sidecar_url(cluster.require().pod(pod), "/metrics"))
    assert status == 200, body
    found: Counter[str] = Counter()
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == "sidecar_drift_repairs_total":
                found[sample.labels["kind"]] += int(sample.value)
    return found


@pytest.mark.slow
def test_a_lost_quorum_is_reported_and_when_the_node_returns_every_replica_links_again(
    make_cluster: MakeCluster,
) -> None:
    """2 of 3 masters on one node (repairs off) and that node crashes: no failover can win a
    vote. Every survivor says so; when the node returns its masters are at new addresses, and
    the replicas elsewhere that followed them must replicate from there again."""
    cluster, keys = formed_without_repair(make_cluster)
    node, lost = two_masters_on_one_node(cluster)
    crashed = cluster.crash_node(node)
    survivors = [p for p in cluster.require().pods if p.name not in crashed]
    for pod in survivors:
        reason = wait_until(
            functools.partial(quorum_reason, cluster, pod.name),
            timeout=SERVED_SECONDS,
            what=f"{pod.name} to report the lost quorum",
        )
        assert all(f"{name} unreachable" in reason for name in lost), reason
        assert gauge(cluster, pod.name, "selfform_quorum_lost") == 1
    cluster.restore_node(node)
    assert cluster.wait_ready(), cluster.unready()
    for pod in cluster.require().pods:
        info = cluster.client(pod.name).info("replication")
        if info["role"] == "slave":
            assert info["master_link_status"] == "up", (pod.name, info)
    assert missing_keys(cluster, keys) == []


def formed_without_repair(make_cluster: MakeCluster) -> tuple[DevCluster, dict[str, str]]:
    no_repair = {**FAST_DRIFT, "DRIFT_MAX_STEPS_PER_HOUR": "0"}
    return formed_with_keys(make_cluster, KEYS, sidecar_env=no_repair)


def two_masters_on_one_node(cluster: DevCluster) -> tuple[str, list[str]]:
    """A replica takes over beside another master (repairs off); (that node, its masters)."""
    replica = next(r for r in cluster.roles() if r["role"] == "replica")
    fail_over(cluster, replica["pod"])
    wait_until(
        lambda: cluster.masters_per_node()[replica["node"]] == 2,
        timeout=SPREAD_SECONDS,
        what="two masters on one node",
    )
    node = replica["node"]
    return node, [r["pod"] for r in cluster.roles() if r["role"] == "master" and r["node"] == node]


@pytest.mark.slow
def test_the_job_with_takeover_serves_a_lost_quorum_and_the_lost_masters_return_as_replicas(
    make_cluster: MakeCluster,
) -> None:
    cluster, keys = formed_without_repair(make_cluster)
    node, lost = two_masters_on_one_node(cluster)
    crashed = cluster.crash_node(node)
    survivors = [p.name for p in cluster.require().pods if p.name not in crashed]
    result = cluster.run_job(TAKEOVER_LOST_MASTERS="true", TAKEOVER_AFTER_SECONDS="6")
    assert result.returncode == 0
    assert result.last("took_over") is not None
    wait_until(lambda: served(cluster, survivors), timeout=SERVED_SECONDS, what="slots served")
    assert missing_keys(cluster, keys) == []
    cluster.restore_node(node)
    assert cluster.wait_ready(), cluster.unready()
    wait_until(
        lambda: all(r["role"] == "replica" for r in cluster.roles() if r["pod"] in lost),
        timeout=SERVED_SECONDS,
        what=f"{', '.join(lost)} back as replicas",
        retry_on=(redis.RedisError,),
    )
    assert missing_keys(cluster, keys) == []


@pytest.mark.slow
def test_the_job_without_takeover_leaves_a_lost_quorum_alone(make_cluster: MakeCluster) -> None:
    cluster, keys = formed_without_repair(make_cluster)
    node, lost = two_masters_on_one_node(cluster)
    cluster.crash_node(node)
    result = cluster.run_job(timeout=120.0, TIMEOUT_SECONDS="20")
    assert result.returncode != 0
    assert result.last("takeover_sent") is None
    cluster.restore_node(node)
    assert cluster.wait_ready(), cluster.unready()
    roles = {r["pod"]: r["role"] for r in cluster.roles()}
    assert [roles[p] for p in lost] == ["master"] * len(lost)
    assert missing_keys(cluster, keys) == []


def quorum_reason(cluster: DevCluster, pod: str) -> str:
    status, body = http_get(cluster.sidecar_url(cluster.require().pod(pod), "/readyz"))
    return body if status != 200 and "quorum lost" in body else ""


def gauge(cluster: DevCluster, pod: str, name: str) -> float:
    status, body = http_get(cluster.sidecar_url(cluster.require().pod(pod), "/metrics"))
    assert status == 200, body
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"{name} not served by {pod}")


def test_four_masters_on_three_nodes_are_warned_about_by_the_job_and_the_gauge(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(8, 1, sidecar_env=FAST_DRIFT)
    result = cluster.run_job()
    assert result.returncode == 0, result.events[-3:]
    warning = result.last("layout_not_survivable")
    assert warning is not None, [e["event"] for e in result.events]
    assert "use 3, 5 or 6 masters for 3 nodes" in str(warning["verdict"]), warning
    assert warning["achievable"] is False
    wait_until(
        lambda: gauge(cluster, "redis-0", "selfform_layout_achievable") == 0,
        timeout=SERVED_SECONDS,
        what="the layout gauge",
    )


def test_a_job_rerun_repairs_the_drift_the_sidecars_may_not(make_cluster: MakeCluster) -> None:
    cluster, keys = formed_without_repair(make_cluster)
    two_masters_on_one_node(cluster)
    assert cluster.wait_ready(), cluster.unready()
    rerun = cluster.run_job()
    assert rerun.returncode == 0, rerun.events[-3:]
    assert rerun.last("drift_repair") is not None, [e["event"] for e in rerun.events]
    assert spread(cluster)
    assert missing_keys(cluster, keys) == []


def test_sidecar_status_prints_a_row_per_pod_and_the_layout_verdict(
    make_cluster: MakeCluster,
) -> None:
    cluster, keys = formed(make_cluster)
    shown = cluster.sidecar_status("redis-4")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split()[:4] == ["POD", "NODE", "ZONE", "ROLE"]
    rows = {line.split()[0]: line.split() for line in lines[1:7]}
    assert sorted(rows) == [f"redis-{i}" for i in range(6)]
    assert {rows[p][1] for p in rows} == {node_name(n) for n in range(3)}
    assert "layout: survives the loss of any one node: yes" in shown.stdout
    assert missing_keys(cluster, keys) == []


def test_sidecar_status_json_names_the_fatal_node_after_drift(make_cluster: MakeCluster) -> None:
    cluster, keys = formed_without_repair(make_cluster)
    for node in range(3):
        cluster.drain_node(node_name(node))
    (crowded, count), *_ = cluster.masters_per_node().most_common(1)
    assert count == 2  # the upgrade drifted the masters; with no repair they stay
    data = json.loads(cluster.sidecar_status("redis-0", "--json").stdout)
    assert len(data["rows"]) == 6
    assert f"no; losing {crowded} takes the cluster down" in data["layout"]
    assert all(r["ready"] == "ready" for r in data["rows"])
    assert missing_keys(cluster, keys) == []

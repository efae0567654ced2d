"""A master hands over before its pod stops (the preStop hook), on real servers, while a client
writes: the replica takes the slots with no acknowledged write lost; a replica, or a master
without a healthy replica, lets its pod stop at once; a rolling update loses nothing."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from clusterkit.io.httpget import http_get
from devcluster.cluster import DevCluster
from devcluster.health import wait_healthy
from devcluster.rollout import rollout
from tests.integration.helpers import formed_with_keys, missing_keys, role, writing

pytestmark = [pytest.mark.integration, pytest.mark.needs_server]

MakeCluster = Callable[..., DevCluster]
KEYS = 2000
PRESTOP_SECONDS = 60.0
"""A bound that stops a hang; the handover itself takes about a second."""


def prestop(cluster: DevCluster, pod: str) -> dict[str, object]:
    """The pod's preStop hook, run as the kubelet runs it; the sidecar's answer."""
    answer = cluster.prestop(pod, timeout=PRESTOP_SECONDS)
    assert answer, f"{pod}'s sidecar gave no answer to its preStop hook"
    return answer


def test_a_master_hands_over_to_its_replica_and_a_replica_stops_at_once(
    make_cluster: MakeCluster,
) -> None:
    cluster, before = formed_with_keys(make_cluster, KEYS)
    replica = next(r["pod"] for r in cluster.roles() if r["master"] == "redis-0")
    with writing(cluster) as acknowledged:
        answer = prestop(cluster, "redis-0")
        assert answer["outcome"] == "handed_over", answer
        # Redis has switched roles when the hook returns: the kubelet's SIGTERM comes next.
        assert cluster.client("redis-0").execute_command("ROLE")[0] == "slave"
        assert cluster.client(replica).execute_command("ROLE")[0] == "master"
        assert prestop(cluster, "redis-0")["outcome"] == "replica"
    assert role(cluster, "redis-0") == ("replica", replica)
    assert wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=30) == []
    assert acknowledged
    assert missing_keys(cluster, {**before, **acknowledged}) == []


def test_a_master_without_a_healthy_replica_stops_without_a_handover(
    make_cluster: MakeCluster,
) -> None:
    cluster, before = formed_with_keys(make_cluster, KEYS)
    replica = next(r["pod"] for r in cluster.roles() if r["master"] == "redis-1")
    cluster.stop_pods([replica])
    answer = prestop(cluster, "redis-1")
    assert answer["outcome"] == "no_healthy_replica", answer
    assert cluster.client("redis-1").execute_command("ROLE")[0] == "master"
    assert missing_keys(cluster, before) == []


@pytest.mark.slow
def test_a_rolling_update_under_writes_loses_no_acknowledged_write(
    make_cluster: MakeCluster,
) -> None:
    cluster, before = formed_with_keys(make_cluster, KEYS)
    masters = {r["pod"] for r in cluster.roles() if r["role"] == "master"}
    with writing(cluster) as acknowledged:
        rollout(cluster, min_ready_seconds=1.0)
    # Highest ordinal first: the replicas restart first, then each master hands over to its
    # replica, which is back and linked by then.
    assert prestop_outcomes(cluster) == {
        pod.name: "handed_over" if pod.name in masters else "replica"
        for pod in cluster.require().pods
    }
    assert wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=60) == []
    assert acknowledged
    assert missing_keys(cluster, {**before, **acknowledged}) == []


def prestop_outcomes(cluster: DevCluster) -> dict[str, str]:
    """Pod -> the outcome of its last preStop hook, from its sidecar's log."""
    found = {}
    for pod in cluster.require().pods:
        log = (cluster.dirs.pod_dir(pod.name) / "sidecar.log").read_text().splitlines()
        events = [json.loads(line) for line in log if line.startswith("{")]
        done = [e for e in events if e.get("event") == "prestop_done"]
        if done:
            found[pod.name] = str(done[-1]["outcome"])
    return found


def test_no_http_request_to_the_sidecar_makes_a_master_hand_over(
    make_cluster: MakeCluster,
) -> None:
    cluster, before = formed_with_keys(make_cluster, KEYS)
    pod = cluster.require().pod("redis-0")
    for path in ("/prestop", "/prestop?now=1", "/handover"):
        assert http_get(cluster.sidecar_url(pod, path))[0] == 404, path
    assert role(cluster, "redis-0") == ("master", "-")
    assert missing_keys(cluster, before) == []

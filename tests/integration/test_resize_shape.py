"""Scale in ends in the shape the settings ask for, whatever roles the pods held before, on
real servers: the surplus masters give their slots away and follow, a staying replica takes
over from a leaving master, and with ACL users the leaving pods' disks are emptied too. Keys
written before each resize are read back after it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from devcluster.cluster import DevCluster
from devcluster.health import wait_healthy
from devcluster.rollout import fail_over
from tests.integration.helpers import formed_with_keys, missing_keys, numbered_keys, write_keys

pytestmark = [pytest.mark.integration, pytest.mark.needs_server]

MakeCluster = Callable[..., DevCluster]
KEYS = 3000
JOB_SECONDS = 300.0
"""A bound that stops a hang (a resize of a few thousand keys takes seconds)."""
FAILOVER_SECONDS = 60.0
"""A bound that stops a hang (a manual failover takes well under a second)."""


def eight_pods_with_keys(make_cluster: MakeCluster) -> tuple[DevCluster, dict[str, str]]:
    return formed_with_keys(make_cluster, KEYS, pods=8)


def assert_scaled_in_to_six(cluster: DevCluster, keys: dict[str, str]) -> None:
    """The Job with CLUSTER_SIZE=6, then the StatefulSet scaled down: 3 masters with a replica
    each, and every key written before reads back."""
    result = cluster.run_job(timeout=JOB_SECONDS, CLUSTER_SIZE="6")
    assert result.returncode == 0, result.events[-3:]
    last = result.events[-1]
    assert last["event"] == "ready_to_scale_down", last
    cluster.remove_pods(2)
    assert wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=30) == []
    assert missing_keys(cluster, keys) == []


def test_eight_to_six_with_every_master_staying_ends_with_three_replicated_masters(
    make_cluster: MakeCluster,
) -> None:
    cluster, keys = eight_pods_with_keys(make_cluster)
    owners = {r["pod"] for r in cluster.roles() if r["role"] == "master"}
    assert owners <= {f"redis-{i}" for i in range(6)}, owners  # 4 masters, all staying
    assert_scaled_in_to_six(cluster, keys)


def test_eight_to_six_after_a_rollout_moved_the_masters_to_the_leaving_pods(
    make_cluster: MakeCluster,
) -> None:
    cluster, keys = eight_pods_with_keys(make_cluster)
    # One at a time: manual failovers sent at once may time out and change nothing.
    for replica in [r["pod"] for r in cluster.roles() if r["role"] == "replica"]:
        fail_over(cluster, replica, timeout=FAILOVER_SECONDS)
    assert wait_healthy(cluster, masters=4, replicas_per_master=1, timeout=60) == []
    owners = {r["pod"] for r in cluster.roles() if r["role"] == "master"}
    assert {"redis-6", "redis-7"} <= owners, owners
    assert_scaled_in_to_six(cluster, keys)


def test_acl_scale_in_empties_the_leaving_disks_and_they_rejoin_empty_later(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(9, 2, users=True)
    assert cluster.run_job().returncode == 0
    write_keys(cluster, KEYS)
    keys = numbered_keys(KEYS)
    result = cluster.run_job(timeout=JOB_SECONDS, CLUSTER_SIZE="6", REPLICAS_PER_MASTER="1")
    assert result.returncode == 0, result.events[-3:]
    assert not [e for e in result.events if e["event"] == "step_failed"], result.events[-5:]
    assert result.events[-1]["event"] == "ready_to_scale_down"
    leaving = ["redis-6", "redis-7", "redis-8"]
    cluster.restart(leaving)  # with their volumes: what a restart would load
    for pod in leaving:
        assert cluster.client(pod).dbsize() == 0, pod
    cluster.remove_pods(3, replicas_per_master=1)
    assert wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=30) == []
    cluster.add_pods(3, replicas_per_master=2)  # the kept volumes come back
    again = cluster.run_job(timeout=JOB_SECONDS)
    assert again.returncode == 0, again.events[-3:]
    assert wait_healthy(cluster, masters=3, replicas_per_master=2, timeout=30) == []
    assert missing_keys(cluster, keys) == []

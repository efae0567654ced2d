"""The sidecar's fast failover when its own Redis dies, on real servers: a master's Redis
SIGKILLed while its sidecar runs is replaced by its replica (CLUSTER FAILOVER FORCE from the
sidecar, counted on its /metrics) and, started again with its data, rejoins as a replica with
every key there; a hung Redis (SIGSTOP) and a pod stopping with its preStop hook are left to
their own paths."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable

import pytest
import redis

from devcluster.cluster import DevCluster
from devcluster.health import wait_healthy
from tests.integration.helpers import (
    formed_with_keys,
    missing_keys,
    role,
    sidecar_get,
    wait_for,
    writing,
)

pytestmark = [pytest.mark.integration, pytest.mark.needs_server]

MakeCluster = Callable[..., DevCluster]
KEYS = 2000


def crash_failovers(cluster: DevCluster, pod: str) -> dict[str, float]:
    """outcome -> count of the pod's sidecar_crash_failovers_total."""
    status, body = sidecar_get(cluster, pod, "/metrics")
    assert status == 200
    found = re.findall(r'^sidecar_crash_failovers_total\{outcome="(\w+)"\} (\S+)$', body, re.M)
    return {outcome: float(value) for outcome, value in found}


def sidecar_said(cluster: DevCluster, pod: str, event: str) -> bool:
    log = cluster.dirs.pod_dir(pod) / "sidecar.log"
    return f'"event": "{event}"' in log.read_text()


def wait_armed(cluster: DevCluster) -> None:
    """Every master's sidecar has had a turn since the Job formed the cluster (it arms then)."""
    time.sleep(2.5)  # two turns of HEAL_INTERVAL_SECONDS (1 s)
    assert wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=30) == []


def test_a_crashed_master_is_replaced_by_its_replica_and_returns_as_a_replica(
    make_cluster: MakeCluster,
) -> None:
    cluster, before = formed_with_keys(make_cluster, KEYS)
    replica = next(r["pod"] for r in cluster.roles() if r["master"] == "redis-0")
    wait_armed(cluster)
    with writing(cluster) as acknowledged:
        cluster.kill_redis("redis-0")
        wait_for(
            lambda: crash_failovers(cluster, "redis-0").get("took_over") == 1.0,
            timeout=30,
            what="redis-0's sidecar to have its replica take over",
        )
        assert cluster.client(replica).execute_command("ROLE")[0] == "master"
        cluster.start_redis("redis-0")
        wait_for(
            lambda: role(cluster, "redis-0") == ("replica", replica),
            timeout=60,
            what="the crashed Redis to rejoin as a replica of the one that took over",
            retry_on=(redis.RedisError, OSError),
        )
        assert wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=60) == []
    assert sidecar_said(cluster, "redis-0", "crash_failover_done")
    assert acknowledged
    # Keys written before the crash all survive; writes acknowledged by the crashed master in
    # its last moments may not (asynchronous replication): the benchmark counts those.
    assert missing_keys(cluster, before) == []


def test_a_hung_redis_is_not_failed_over_by_its_sidecar(make_cluster: MakeCluster) -> None:
    cluster, before = formed_with_keys(make_cluster, KEYS)
    wait_armed(cluster)
    pid = cluster.require().pod("redis-0").pid or 0
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(3.0)  # PINGs time out (a hang), under cluster-node-timeout (5 s)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert crash_failovers(cluster, "redis-0") == {}
    assert not sidecar_said(cluster, "redis-0", "own_redis_crashed")
    assert role(cluster, "redis-0") == ("master", "-")
    assert missing_keys(cluster, before) == []


def test_a_pod_stopping_with_its_hook_hands_over_and_never_crash_fails_over(
    make_cluster: MakeCluster,
) -> None:
    cluster, before = formed_with_keys(make_cluster, KEYS)
    replica = next(r["pod"] for r in cluster.roles() if r["master"] == "redis-0")
    wait_armed(cluster)
    cluster.stop_pods(["redis-0"])  # the preStop hook, then SIGTERM: Redis stops, refused after
    assert not sidecar_said(cluster, "redis-0", "own_redis_crashed")
    assert sidecar_said(cluster, "redis-0", "prestop_done")
    assert role(cluster, replica)[0] == "master"
    cluster.start_pods(["redis-0"])
    assert wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=60) == []
    assert missing_keys(cluster, before) == []

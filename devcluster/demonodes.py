"""The demo's failure-domain steps: a node-pool upgrade drifts the masters, the sidecars spread
them again, and a node crash afterwards costs one failover; the crashed node's pods return as
replicas. Every key is read back after each step."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from clusterkit.io.waiting import Deadline, WaitTimeout, wait_until
from devcluster.cluster import DevCluster
from devcluster.health import wait_healthy
from devcluster.placement import node_name
from devcluster.table import print_table

DEMO_SIDECAR_ENV = {"DRIFT_QUIET_SECONDS": "20", "DRIFT_CHECK_SECONDS": "2"}
"""The demo waits 20 s of calm before a layout repair, not the default minute."""
WAIT_SECONDS = 120.0


def seconds_until(what: str, check: Callable[[], bool]) -> float:
    deadline = Deadline(WAIT_SECONDS)
    wait_until(check, timeout=deadline, what=what, interval=0.2, retry_on=(redis.RedisError,))
    return deadline.elapsed()


def node_loss(
    cluster: DevCluster, missing_keys: Callable[[], list[int]], say: Callable[[str], None]
) -> bool:
    """Steps 10 and 11; True when every key read back after the crash and the return."""
    say("10. A node-pool upgrade: drain node-0, node-1, node-2 in turn (preStop hands over)")
    for node in range(3):
        cluster.drain_node(node_name(node))
        print(f"drained {node_name(node)}: masters per node {dict(cluster.masters_per_node())}")
    try:
        took = seconds_until("masters one per node", cluster.masters_spread)
    except WaitTimeout:
        print(f"masters NOT spread: {dict(cluster.masters_per_node())}")
        return False
    print(
        f"one master per node {took:.1f} s after the last drain: the sidecars swapped roles"
        " (plain CLUSTER FAILOVER, no write lost) once the cluster had been calm for 20 s"
    )
    wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=WAIT_SECONDS)
    print("python -m sidecar status, in redis-0's sidecar:")
    print(cluster.sidecar_status("redis-0").stdout)

    crowded = cluster.masters_per_node().most_common(1)[0][0]
    say(f"11. Crash {crowded} (SIGKILL, no hook): one failover serves every slot again")
    crashed = cluster.crash_node(crowded)
    began = time.monotonic()
    try:
        seconds_until("every key readable", lambda: not missing_keys())
    except WaitTimeout:
        print(f"NOT served {WAIT_SECONDS:.0f} s after the crash of {', '.join(crashed)}")
        return False
    print(f"every key readable {time.monotonic() - began:.1f} s after {', '.join(crashed)} died")
    cluster.restore_node(crowded)
    left = wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=WAIT_SECONDS)
    if left:
        print(f"NOT healthy after {crowded} returned: {left[:3]}")
        return False
    print(f"{crowded} is back: its pods rejoined as replicas at new addresses, no human step")
    print_table(cluster.roles())
    return True

"""Pods that come back with an EMPTY volume (a new Redis node id), on real servers: the sidecars
heal them with no Job and no human; a shard with no surviving copy is reported, and the Job
reassigns its slots only when told to."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import redis
from redis.crc import key_slot

from bootstrap.errors import ExitCode
from devcluster.cluster import DevCluster
from devcluster.health import views, wait_healthy
from tests.integration.helpers import formed_with_keys, missing_numbers, sidecar_get, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.needs_server]

MakeCluster = Callable[..., DevCluster]
KEYS = 600
HEAL_SECONDS = 60.0
BAN_SECONDS = 60.0
CHURN = (redis.RedisError, OSError)
"""Errors that mean "not yet" while pods come back: retried by the waits."""


def formed(make_cluster: MakeCluster) -> DevCluster:
    """6 pods formed by the Job, holding KEYS numbered keys."""
    return formed_with_keys(make_cluster, KEYS)[0]


def node_ids(cluster: DevCluster, pods: list[str]) -> dict[str, str]:
    return {p: str(cluster.client(p).execute_command("CLUSTER", "MYID")) for p in pods}


def listed_anywhere(cluster: DevCluster, node_ids: set[str]) -> dict[str, list[str]]:
    """Pod -> the given ids its CLUSTER NODES still lists."""
    found = {
        pod: sorted(n.node_id[:8] for n in lines if n.node_id in node_ids)
        for pod, lines in views(cluster).items()
    }
    return {pod: ids for pod, ids in found.items() if ids}


def master_of(cluster: DevCluster, replica: str) -> str:
    return next(r["master"] for r in cluster.roles() if r["pod"] == replica)


def replica_of(cluster: DevCluster, master: str) -> str:
    return next(r["pod"] for r in cluster.roles() if r["master"] == master)


def assert_healed(cluster: DevCluster, old: set[str]) -> None:
    left = wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=HEAL_SECONDS)
    assert left == [], left
    assert listed_anywhere(cluster, old) == {}
    assert missing_numbers(cluster, range(KEYS)) == []


@pytest.mark.slow
def test_replica_then_masters_lose_their_volumes_heal_alone_and_old_ids_stay_gone(
    make_cluster: MakeCluster,
) -> None:
    """Three events on one cluster, one after the other (sharing the wait for the 60 s ban):
    a replica's volume lost; a master's volume lost while its replica is alive (its old
    identity owns slots: kept until Redis promotes the replica, since forgetting it first
    would leave the slots ownerless); a master's volume lost after its replica took over."""
    cluster = formed(make_cluster)
    first_forget = time.monotonic()

    replica = replica_of(cluster, "redis-1")
    old_replica = node_ids(cluster, [replica])[replica]
    cluster.wipe([replica])
    assert node_ids(cluster, [replica])[replica] != old_replica
    assert_healed(cluster, {old_replica})
    assert master_of(cluster, replica) == "redis-1"

    promoted = replica_of(cluster, "redis-0")
    old_master = node_ids(cluster, ["redis-0"])["redis-0"]
    cluster.wipe(["redis-0"])
    assert_healed(cluster, {old_master})
    assert master_of(cluster, promoted) == "-"
    assert master_of(cluster, "redis-0") == promoted

    took_over = replica_of(cluster, "redis-2")
    old_taken = node_ids(cluster, ["redis-2"])["redis-2"]
    cluster.stop_pods(["redis-2"])
    wait_for(
        lambda: master_of(cluster, took_over) == "-",
        f"{took_over} to take over",
        HEAL_SECONDS,
        interval=0.3,
        retry_on=CHURN,
    )
    cluster.wipe(["redis-2"])  # back, empty, at a new address
    assert_healed(cluster, {old_taken})
    assert master_of(cluster, "redis-2") == took_over

    # Redis 7.0 does not gossip forgets: a node that still knew an id would bring it back
    # once the 60 s ban ends.
    time.sleep(max(0.0, first_forget + BAN_SECONDS + 5 - time.monotonic()))
    assert listed_anywhere(cluster, {old_replica, old_master, old_taken}) == {}
    assert wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=10) == []
    assert missing_numbers(cluster, range(KEYS)) == []


@pytest.mark.slow
def test_two_replicas_of_different_masters_lost_at_once_heal_alone_for_good(
    make_cluster: MakeCluster,
) -> None:
    """Each new node may learn the other pod's old identity by gossip after that pod's sidecar
    told every node to forget it; once the 60 s ban ends, it would spread the id again. The
    sidecars keep forgetting their old ids for a while after they rejoined."""
    cluster = formed(make_cluster)
    lost = [replica_of(cluster, "redis-0"), replica_of(cluster, "redis-1")]
    old = set(node_ids(cluster, lost).values())
    forgotten_at = time.monotonic()
    cluster.wipe(lost)
    assert_healed(cluster, old)
    time.sleep(max(0.0, forgotten_at + BAN_SECONDS + 5 - time.monotonic()))
    assert listed_anywhere(cluster, old) == {}
    assert wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=10) == []
    assert missing_numbers(cluster, range(KEYS)) == []


def test_two_replicas_lost_at_once_while_the_job_runs(make_cluster: MakeCluster) -> None:
    cluster = formed(make_cluster)
    lost = [replica_of(cluster, "redis-0"), replica_of(cluster, "redis-2")]
    old = set(node_ids(cluster, lost).values())
    cluster.wipe(lost)
    job = cluster.run_job(timeout=120)  # the sidecars heal at the same time
    assert job.returncode == 0, job.events[-3:]
    assert_healed(cluster, old)
    assert master_of(cluster, lost[0]) == "redis-0"
    assert master_of(cluster, lost[1]) == "redis-2"


@pytest.mark.slow
def test_lost_shard_is_reported_refused_then_reassigned_on_request(
    make_cluster: MakeCluster,
) -> None:
    cluster = formed(make_cluster)
    replica = replica_of(cluster, "redis-0")
    old = node_ids(cluster, ["redis-0", replica])
    lost_slots = set(range(5461))  # redis-0's share
    cluster.wipe(["redis-0", replica])

    def reported() -> bool:
        status, body = sidecar_get(cluster, "redis-0", "/readyz")
        return status == 503 and "lost shard" in body and "REASSIGN_LOST_SLOTS" in body

    wait_for(
        reported,
        "redis-0's /readyz to report the lost shard",
        HEAL_SECONDS,
        interval=0.3,
        retry_on=CHURN,
    )
    _, body = sidecar_get(cluster, "redis-0", "/readyz")
    assert "0-5460" in json.dumps(body)
    _, metrics = sidecar_get(cluster, "redis-0", "/metrics")
    gauge = [
        line
        for line in metrics.splitlines()
        if line.startswith("selfform_slots_without_live_owner{")
    ]
    assert any(old["redis-0"] in line and 'slots="0-5460"' in line for line in gauge), gauge

    refused = cluster.run_job()
    assert refused.returncode == ExitCode.REFUSED_UNSAFE
    error = str((refused.last("refused_unsafe") or {}).get("error"))
    assert "0-5460" in error and old["redis-0"] in error and "REASSIGN_LOST_SLOTS" in error

    job = cluster.run_job(REASSIGN_LOST_SLOTS="true")
    assert job.returncode == 0, job.events[-3:]
    left = wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=HEAL_SECONDS)
    assert left == [], left
    assert listed_anywhere(cluster, set(old.values())) == {}
    kept = range(KEYS)
    survivors = [i for i in kept if key_slot(f"key:{i}".encode()) not in lost_slots]
    assert survivors and missing_numbers(cluster, survivors) == []
    client = cluster.cluster_client()
    client.set("key:after", "written")  # the reassigned slots serve again
    assert client.get("key:after") == "written"
    assert sidecar_get(cluster, "redis-0", "/readyz")[0] == 200

"""The sidecar in devcluster pods: startup fix, healing after restarts, health endpoints."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import redis

from clusterkit.io.httpget import http_get
from clusterkit.io.waiting import wait_until
from devcluster.cluster import DevCluster
from devcluster.health import wait_healthy
from devcluster.manifests import load as load_manifests
from tests.integration.helpers import formed_with_keys, sidecar_get, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.needs_server]

MakeCluster = Callable[..., DevCluster]
KEYS = 300


SHIFTING = (redis.RedisError, OSError, StopIteration, KeyError)
"""Errors that mean "not yet" in the waits: nodes come and go while we poll."""


def probe(cluster: DevCluster, pod: str, path: str) -> tuple[int, dict[str, object]]:
    status, body = sidecar_get(cluster, pod, path)
    return status, (json.loads(body) if body.startswith("{") else {"raw": body})


def formed(make_cluster: MakeCluster, pods: int = 6) -> DevCluster:
    """`pods` pods formed by the Job, holding KEYS numbered keys."""
    return formed_with_keys(make_cluster, KEYS, pods)[0]


def all_keys_readable(cluster: DevCluster) -> bool:
    client = cluster.cluster_client()
    return all(client.get(f"key:{i}") == str(i) for i in range(KEYS))


def role(cluster: DevCluster, pod: str) -> str:
    return next(r["role"] for r in cluster.roles() if r["pod"] == pod)


def test_readiness_is_503_before_the_job_and_200_after_and_metrics_follow(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(6, 1)
    # Once the sidecar has seen its Redis: up, but not ready before the Job formed the cluster.
    wait_for(
        lambda: "not formed" in str(probe(cluster, "redis-0", "/readyz")[1]),
        "redis-0's /readyz to say not formed",
        10,
        interval=0.2,
        retry_on=SHIFTING,
    )
    assert probe(cluster, "redis-0", "/readyz")[0] == 503
    assert probe(cluster, "redis-0", "/livez")[0] == 200
    assert probe(cluster, "redis-0", "/startupz")[0] == 200
    assert cluster.run_job().returncode == 0
    for pod in ("redis-0", "redis-3"):

        def ready(pod: str = pod) -> bool:
            return probe(cluster, pod, "/readyz")[0] == 200

        wait_for(ready, f"{pod}'s /readyz 200", 15, interval=0.2, retry_on=SHIFTING)
    status, node = probe(cluster, "redis-4", "/node")
    assert status == 200 and node["pod"] == "redis-4" and len(str(node["node_id"])) == 40
    url = f"http://{cluster.require().pod('redis-1').ip}:9380/metrics"
    # redis-1's loop sees the formed cluster on its next turn, not at the instant the Job ends.
    wait_for(
        lambda: "selfform_cluster_state_ok 1.0" in http_get(url)[1],
        "redis-1's metrics to say cluster_state ok",
        15,
        interval=0.2,
        retry_on=SHIFTING,
    )
    assert_masters_report_replicas_lag_and_placement(cluster)


def assert_masters_report_replicas_lag_and_placement(cluster: DevCluster) -> None:
    """What the monitoring component's alerts read, from a real formed cluster: each master's
    connected replica and its lag, persistence ok, and no replica on its master's Kubernetes
    node (devcluster places pods on devnode-0..2; the Job placed replicas elsewhere)."""
    for row in cluster.roles():
        if row["role"] != "master":
            continue
        master, replica = (
            row["pod"],
            next(r["pod"] for r in cluster.roles() if r["master"] == row["pod"]),
        )
        port = load_manifests().sidecar_port
        url = f"http://{cluster.require().pod(master).ip}:{port}/metrics"
        wanted = (
            f'selfform_master_connected_replicas{{master="{master}"}} 1.0',
            f'selfform_replicas_on_master_node{{master="{master}"}} 0.0',
            f'selfform_replica_lag_bytes{{replica="{replica}"}}',
            'selfform_persistence_last_ok{operation="aof_write"} 1.0',
            'selfform_cluster_nodes{role="replica"} 3.0',
        )

        def reported(url: str = url, wanted: tuple[str, ...] = wanted) -> bool:
            text = http_get(url)[1]
            return all(w in text for w in wanted)

        def tail(url: str = url) -> str:
            return http_get(url)[1][-2000:]

        wait_for(
            reported,
            f"{master}'s metrics to report its replica, lag and placement",
            40,
            interval=0.2,
            retry_on=SHIFTING,
            last_seen=tail,
        )


def test_deleted_master_pod_comes_back_as_replica(make_cluster: MakeCluster) -> None:
    cluster = formed(make_cluster)
    replica = next(r["pod"] for r in cluster.roles() if r["master"] == "redis-0")
    cluster.stop_pods(["redis-0"])
    wait_for(
        lambda: role(cluster, replica) == "master",
        f"{replica} to take over",
        30,
        interval=0.2,
        retry_on=SHIFTING,
    )
    cluster.start_pods(["redis-0"])
    assert wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=30) == []
    assert role(cluster, "redis-0") == "replica"
    assert all_keys_readable(cluster)


def test_all_pods_restarted_with_new_addresses_heal(make_cluster: MakeCluster) -> None:
    cluster = formed(make_cluster)
    before = {p.name: p.ip for p in cluster.require().pods}
    cluster.restart([p.name for p in cluster.require().pods])
    after = {p.name: p.ip for p in cluster.require().pods}
    assert not set(before.values()) & set(after.values())
    # Generous bound against a hang; the healing time itself is measured in bench/.
    assert wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=60) == []
    assert all_keys_readable(cluster)


@pytest.mark.slow
def test_all_pods_restarted_with_half_the_dns_records_late(make_cluster: MakeCluster) -> None:
    cluster = formed(make_cluster)
    late = ["redis-1", "redis-3", "redis-5"]
    cluster.stop_pods([p.name for p in cluster.require().pods])
    cluster.set_dns_hidden(late, hidden=True)
    cluster.start_pods([p.name for p in cluster.require().pods])
    time.sleep(3)
    cluster.set_dns_hidden(late, hidden=False)
    assert wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=60) == []
    assert all_keys_readable(cluster)


def test_corrupt_nodes_conf_holds_redis_back(make_cluster: MakeCluster) -> None:
    cluster = formed(make_cluster)
    cluster.stop_pods(["redis-2"])
    conf = cluster.dirs.data_dir("redis-2") / "nodes.conf"
    damaged = conf.read_bytes().replace(b"connected", b"conected", 1)
    conf.write_bytes(damaged)
    held_back = cluster.start_pods(["redis-2"])
    assert "redis-2" in held_back
    assert cluster.require().pod("redis-2").pid is None  # Redis was never started
    assert conf.read_bytes() == damaged
    status, body = probe(cluster, "redis-2", "/startupz")
    assert status == 500 and "line" in str(body["reason"])
    termination = (cluster.dirs.pod_dir("redis-2") / "termination-log").read_text()
    assert "nodes.conf" in termination and "corrupt" in termination


@pytest.mark.slow
def test_liveness_stays_200_while_redis_loads_a_large_dataset(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(6, 1)
    assert cluster.run_job().returncode == 0
    # Every key in one slot ({t}), on the master that owns it.
    owner_ip = cluster.cluster_client().get_node_from_key("{t}").host
    owner = next(p.name for p in cluster.require().pods if p.ip == owner_ip)
    client = cluster.client(owner, timeout=30)
    pipe = client.pipeline(transaction=False)
    for batch in range(1500):
        pipe.execute_command("MSET", *[x for i in range(1000) for x in (f"{{t}}:{batch}:{i}", "v")])
        if batch % 100 == 99:
            pipe.execute()
    pipe.execute()
    assert client.dbsize() == 1_500_000
    # Rewrite the AOF into an RDB base: Redis answers LOADING while it reads RDB (it checks for
    # clients every 2 MB), whereas our 1,500 huge MSETs would be replayed without a break.
    client.bgrewriteaof()
    wait_for(
        lambda: client.info("persistence")["aof_rewrite_in_progress"] == 0,
        "the AOF rewrite to end",
        60,
        interval=0.2,
        retry_on=SHIFTING,
    )
    wait_for(
        lambda: client.info("persistence")["aof_rewrite_scheduled"] == 0,
        "no AOF rewrite scheduled",
        60,
        interval=0.2,
        retry_on=SHIFTING,
    )
    cluster.stop_pods([owner])
    cluster.start_pods([owner])
    pod_ip = cluster.require().pod(owner).ip
    probe_client = cluster.client(owner, timeout=5)
    saw_loading, liveness = [False], []

    def loaded_after_loading() -> bool:
        try:
            probe_client.ping()
            loaded = True
        except redis.BusyLoadingError:
            saw_loading[0], loaded = True, False
        liveness.append(http_get(f"http://{pod_ip}:{load_manifests().sidecar_port}/livez")[0])
        return loaded and saw_loading[0] and len(liveness) > 3

    wait_until(loaded_after_loading, timeout=60, what=f"{owner} to load its dataset")
    assert saw_loading[0], "the dataset loaded too fast to test liveness during LOADING"
    assert set(liveness) == {200}

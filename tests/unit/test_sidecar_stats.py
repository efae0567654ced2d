"""sidecar.stats: the series the monitoring component's alerts and dashboard read, from INFO and
CLUSTER NODES replies as redis-py parses them."""

from __future__ import annotations

from prometheus_client import generate_latest

from clusterkit.core.nodes import myself, parse_cluster_nodes
from sidecar.metrics import Metrics
from sidecar.stats import update_cluster, update_redis

A, B, C, D = ("a" * 40, "b" * 40, "c" * 40, "d" * 40)
NODES = (
    f"{A} 10.0.0.1:6379@16379,redis-0.hl.ns.svc.cluster.local myself,master - 0 0 1 connected"
    " 0-8191\n"
    f"{B} 10.0.0.2:6379@16379,redis-1.hl.ns.svc.cluster.local master - 0 0 2 connected 8192-16383\n"
    f"{C} 10.0.0.3:6379@16379,redis-2.hl.ns.svc.cluster.local slave {A} 0 0 1 connected\n"
    f"{D} 10.0.0.4:6379@16379,redis-3.hl.ns.svc.cluster.local slave,fail {B} 0 0 2 connected\n"
)
MASTER_INFO = {
    "role": "master",
    "used_memory": 1000,
    "maxmemory": 4000,
    "aof_last_write_status": "ok",
    "aof_last_bgrewrite_status": "ok",
    "rdb_last_bgsave_status": "err",
    "master_repl_offset": 5000,
    "connected_clients": 7,
    "instantaneous_ops_per_sec": 120,
    "connected_slaves": 1,
    "slave0": {"ip": "10.0.0.3", "port": 6379, "state": "online", "offset": 4200, "lag": 1},
}


def series(metrics: Metrics) -> list[str]:
    text = generate_latest(metrics.registry).decode()
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_a_master_reports_memory_persistence_clients_and_each_replicas_lag() -> None:
    metrics = Metrics()
    nodes = parse_cluster_nodes(NODES)
    update_redis(metrics, MASTER_INFO, myself(nodes), nodes, "redis-0")
    lines = series(metrics)
    for expected in (
        "selfform_memory_used_bytes 1000.0",
        "selfform_memory_max_bytes 4000.0",
        'selfform_persistence_last_ok{operation="aof_write"} 1.0',
        'selfform_persistence_last_ok{operation="rdb_save"} 0.0',
        "selfform_replication_offset_bytes 5000.0",
        'selfform_replica_lag_bytes{replica="redis-2"} 800.0',
        'selfform_replica_lag_seconds{replica="redis-2"} 1.0',
        "selfform_connected_clients 7.0",
        "selfform_commands_per_second 120.0",
        'selfform_master_connected_replicas{master="redis-0"} 1.0',
        "selfform_master_link_up 1.0",
    ):
        assert expected in lines


def test_a_replica_reports_its_link_and_no_master_series() -> None:
    metrics = Metrics()
    nodes = parse_cluster_nodes(
        NODES.replace("myself,master", "master").replace("slave aaa", "myself,slave aaa")
    )
    info = {"role": "slave", "master_link_status": "down", "master_last_io_seconds_ago": 9}
    update_redis(metrics, info, myself(nodes), nodes, "redis-2")
    lines = series(metrics)
    assert "selfform_master_link_up 0.0" in lines
    assert "selfform_master_last_io_seconds 9.0" in lines
    assert not [line for line in lines if line.startswith("selfform_master_connected_replicas")]


def test_cluster_nodes_count_live_masters_with_slots_and_live_replicas() -> None:
    metrics = Metrics()
    nodes = parse_cluster_nodes(NODES)
    info = {"cluster_state": "ok", "cluster_slots_ok": "16384", "cluster_known_nodes": "4"}
    update_cluster(metrics, info, myself(nodes), nodes)
    lines = series(metrics)
    assert 'selfform_cluster_nodes{role="master"} 2.0' in lines
    assert 'selfform_cluster_nodes{role="replica"} 1.0' in lines  # redis-3 is failing
    assert "selfform_cluster_state_ok 1.0" in lines

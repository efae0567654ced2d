"""What /metrics says about this pod's Redis and the cluster it sees: set once per loop turn from
CLUSTER INFO, CLUSTER NODES and INFO (all sections the default INFO gives), which the loop reads
anyway. Where the alerts and the dashboard of manifests/components/monitoring get their series."""

from __future__ import annotations

import time
from collections.abc import Mapping

from clusterkit.core.identity import pod_label
from clusterkit.core.nodes import NodeLine
from clusterkit.io.placement import node_of
from sidecar.metrics import Metrics

PERSISTENCE_FIELDS = {
    "aof_write": "aof_last_write_status",
    "aof_rewrite": "aof_last_bgrewrite_status",
    "rdb_save": "rdb_last_bgsave_status",
}
COLOCATION_SECONDS = 30.0
"""How often a master asks its replicas' sidecars which Kubernetes node they run on."""


def number(value: object) -> float:
    try:
        return float(str(value))
    except ValueError:
        return 0.0


def failing(node: NodeLine) -> bool:
    return node.flagged_down or node.is_handshake


def update_cluster(
    m: Metrics, cluster_info: Mapping[str, str], me: NodeLine, nodes: list[NodeLine]
) -> None:
    m.cluster_state_ok.set(1 if cluster_info.get("cluster_state") == "ok" else 0)
    for state in ("ok", "pfail", "fail"):
        m.slots.labels(state).set(number(cluster_info.get(f"cluster_slots_{state}", "0")))
    m.known_nodes.set(number(cluster_info.get("cluster_known_nodes", "0")))
    live = [n for n in nodes if not failing(n)]
    m.cluster_nodes.labels("master").set(sum(1 for n in live if n.is_master and n.slots))
    m.cluster_nodes.labels("replica").set(sum(1 for n in live if not n.is_master))
    m.is_master.set(1 if me.is_master else 0)


def update_redis(
    m: Metrics, info: Mapping[str, object], me: NodeLine, nodes: list[NodeLine], pod: str
) -> None:
    """From INFO: memory, persistence, replication, clients, commands."""
    link = info.get("master_link_status")
    m.master_link_up.set(1 if me.is_master or link == "up" else 0)
    m.memory_used.set(number(info.get("used_memory", 0)))
    m.memory_max.set(number(info.get("maxmemory", 0)))
    for operation, field in PERSISTENCE_FIELDS.items():
        m.persistence_ok.labels(operation).set(0 if info.get(field, "ok") == "err" else 1)
    offset = number(info.get("master_repl_offset", 0))
    m.replication_offset.set(offset)
    m.connected_clients.set(number(info.get("connected_clients", 0)))
    m.commands_per_second.set(number(info.get("instantaneous_ops_per_sec", 0)))
    m.replica_lag_bytes.clear()
    m.replica_lag_seconds.clear()
    m.master_replicas.clear()
    if me.is_master:
        pods = {n.address.ip: pod_label(n) for n in nodes}
        replicas = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
        for replica in replicas:
            name = pods.get(str(replica.get("ip"))) or f"{replica.get('ip')}:{replica.get('port')}"
            m.replica_lag_bytes.labels(name).set(max(0.0, offset - number(replica.get("offset"))))
            m.replica_lag_seconds.labels(name).set(number(replica.get("lag", 0)))
        m.master_replicas.labels(pod).set(number(info.get("connected_slaves", 0)))
        m.master_last_io.set(0)
    else:
        m.master_last_io.set(number(info.get("master_last_io_seconds_ago", 0)))


class Colocation:
    """On a master: how many of its replicas run on its own Kubernetes node, asked of their
    sidecars' /node every COLOCATION_SECONDS (a replica's node does not change while it runs)."""

    def __init__(self, http_port: int, kubernetes_node: str, pod: str) -> None:
        self.http_port = http_port
        self.kubernetes_node = kubernetes_node
        self.pod = pod
        self.next_check = 0.0

    def update(self, m: Metrics, me: NodeLine, nodes: list[NodeLine]) -> None:
        if not me.is_master or not me.slots or not self.kubernetes_node:
            m.replicas_on_master_node.clear()
            return
        if time.monotonic() < self.next_check:
            return
        self.next_check = time.monotonic() + COLOCATION_SECONDS
        replicas = [n for n in nodes if n.master_id == me.node_id and not failing(n)]
        together = sum(
            1 for r in replicas if node_of(r.address.ip, self.http_port) == self.kubernetes_node
        )
        m.replicas_on_master_node.clear()
        m.replicas_on_master_node.labels(self.pod).set(together)

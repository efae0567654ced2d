"""What a healthy cluster looks like, checked from every pod's own point of view."""

from __future__ import annotations

import contextlib

import redis

from clusterkit.core.nodes import NodeLine, parse_cluster_nodes
from clusterkit.io.waiting import WaitTimeout, wait_until
from devcluster.cluster import DevCluster


def views(cluster: DevCluster) -> dict[str, list[NodeLine]]:
    state = cluster.require()
    return {
        p.name: parse_cluster_nodes(str(cluster.client(p.name).execute_command("CLUSTER", "NODES")))
        for p in state.pods
    }


def slot_map(lines: list[NodeLine]) -> list[tuple[int, int, str]]:
    return sorted((r.start, r.end, n.node_id) for n in lines if n.is_master for r in n.slots)


def problems(cluster: DevCluster, masters: int, replicas_per_master: int) -> list[str]:
    """Everything that keeps the cluster from being strictly healthy; [] when it is."""
    state = cluster.require()
    found: list[str] = []
    all_views = views(cluster)
    maps = {tuple(slot_map(v)) for v in all_views.values()}
    if len(maps) != 1:
        found.append(f"{len(maps)} different slot maps")
    for pod, lines in all_views.items():
        client = cluster.client(pod)
        info = client.cluster("info")
        if info.get("cluster_state") != "ok":
            found.append(f"{pod}: cluster_state {info.get('cluster_state')}")
        if len(lines) != len(state.pods):
            found.append(f"{pod}: knows {len(lines)} nodes")
        bad = [n.address.render() for n in lines if n.is_failing or not n.connected]
        if bad:
            found.append(f"{pod}: failing or disconnected peers {bad}")
        me = next(n for n in lines if n.is_myself)
        if me.is_replica and client.info("replication").get("master_link_status") != "up":
            found.append(f"{pod}: master link down")
    some_view = next(iter(all_views.values()))
    owners = [n for n in some_view if n.is_master and n.slots]
    if len(owners) != masters:
        found.append(f"{len(owners)} masters own slots, expected {masters}")
    for owner in owners:
        replicas = [n for n in some_view if n.master_id == owner.node_id]
        if len(replicas) != replicas_per_master:
            found.append(f"master {owner.address.render()} has {len(replicas)} replicas")
    return found


def wait_healthy(
    cluster: DevCluster, masters: int, replicas_per_master: int, timeout: float = 30.0
) -> list[str]:
    """Poll until healthy (bounded); returns the last problems seen ([] = healthy)."""
    last: list[str] = ["never checked"]

    def healthy() -> bool:
        try:
            last[:] = problems(cluster, masters, replicas_per_master)
        except redis.RedisError as exc:
            last[:] = [str(exc)]
        return not last

    with contextlib.suppress(WaitTimeout):
        wait_until(healthy, timeout=timeout, what="a strictly healthy cluster", interval=0.2)
    return last

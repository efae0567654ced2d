"""The layout as one node's CLUSTER NODES shows it: what each sidecar can judge every few
seconds without reading every other node. Pure: no I/O.

A sidecar reads every pod only when its own view says a repair is due and that it would be
the one to carry it out (clusterkit.core.drift), so a calm cluster costs one parse per check."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from clusterkit.core.domains import Shard
from clusterkit.core.identity import pod_ordinal
from clusterkit.core.naming import PodNaming
from clusterkit.core.nodes import NodeLine

Signature = frozenset[tuple[str, str, bool]]


def ordinals_in_view(
    nodes: Sequence[NodeLine], naming: PodNaming, pod_map: Mapping[str, str]
) -> dict[str, int]:
    """Node id -> pod ordinal for every line whose pod is known (announced hostname, else the
    pod map)."""
    found: dict[str, int] = {}
    for line in nodes:
        ordinal = pod_ordinal(line, naming, pod_map)
        if ordinal is not None:
            found[line.node_id] = ordinal
    return found


def shards_in_view(nodes: Sequence[NodeLine], ordinals: Mapping[str, int]) -> list[Shard] | None:
    """The shards this view shows (pod ordinals), or None when some line names no known pod."""
    if any(line.node_id not in ordinals for line in nodes):
        return None
    masters = {line.node_id for line in nodes if line.is_master and line.slots}
    followers: dict[str, list[int]] = {m: [] for m in masters}
    for line in nodes:
        if line.is_replica and line.master_id in masters:
            followers[line.master_id].append(ordinals[line.node_id])
    return sorted(
        (Shard(ordinals[m], tuple(sorted(r))) for m, r in followers.items()),
        key=lambda s: s.master,
    )


def signature(nodes: Sequence[NodeLine]) -> Signature:
    """What a repair must wait to stay unchanged for a quiet period: each node's role, whom it
    follows and whether it is seen down. A failover, a replica move or a node going down (a
    rollout, a drain) changes it."""
    return frozenset(
        (
            line.node_id,
            line.master_id or ("master" if line.slots else "empty"),
            line.is_down and not line.is_myself,
        )
        for line in nodes
    )


def relink_reason(
    nodes: Sequence[NodeLine], master_host: str | None, master_port: int | None, link_up: bool
) -> str | None:
    """Why this replica must be pointed at its master again (None: no need): its replication
    link is down while its cluster view shows the master healthy at another address. Redis
    learns a node's new address from gossip but can keep replicating from the old one."""
    me = next((line for line in nodes if line.is_myself), None)
    if me is None or not me.is_replica or link_up or not master_host:
        return None
    master = next((line for line in nodes if line.node_id == me.master_id), None)
    if master is None or master.is_down or not master.address.ip:
        return None
    if (master.address.ip, master.address.port) == (master_host, master_port):
        return None
    return (
        f"replication link down to {master_host}:{master_port} while master"
        f" {master.node_id[:8]} answers at {master.address.ip}:{master.address.port}"
    )


def failing_masters(nodes: Sequence[NodeLine]) -> list[NodeLine]:
    """Slot-owning masters this view flags as failing (fail or fail?), by node id."""
    return sorted(
        (line for line in nodes if line.is_master and line.slots and line.is_failing),
        key=lambda line: line.node_id,
    )


def quorum_lost(nodes: Sequence[NodeLine]) -> bool:
    """Half or more of the slot-owning masters fail in this view: too few are left to vote a
    failover (a majority of all slot owners), so Redis cannot recover by itself."""
    owners = sum(1 for line in nodes if line.is_master and line.slots)
    return owners > 0 and 2 * len(failing_masters(nodes)) >= owners


def takeover_candidates(nodes: Sequence[NodeLine], master_id: str) -> list[NodeLine]:
    """Replicas of `master_id` this view shows healthy: those that could take over."""
    return [
        line
        for line in nodes
        if line.is_replica and line.master_id == master_id and not line.is_down
    ]


def lost_in_every_view(views: Sequence[Sequence[NodeLine]]) -> list[str]:
    """Node ids of the slot-owning masters that every view flags failing, when every view has
    lost the quorum ([] otherwise): the masters only a TAKEOVER can replace."""
    if not views or not all(quorum_lost(nodes) for nodes in views):
        return []
    flagged = [{line.node_id for line in failing_masters(nodes)} for nodes in views]
    return sorted(set.intersection(*flagged))


def best_taker(
    views: Mapping[int, Sequence[NodeLine]], master_id: str, offsets: Mapping[int, int]
) -> int | None:
    """The reachable replica (pod ordinal) of `master_id` that has replicated the most (then
    the lowest ordinal), judged by each pod's own line; None when none is reachable."""
    followers = [
        ordinal
        for ordinal, nodes in views.items()
        if any(n.is_myself and n.is_replica and n.master_id == master_id for n in nodes)
    ]
    return min(followers, key=lambda o: (-offsets.get(o, -1), o), default=None)

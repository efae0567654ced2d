"""When is this pod ready? A pure rule over what the loop read from Redis."""

from __future__ import annotations

from clusterkit.core.nodes import NodeLine


def readiness(info: dict[str, str], me: NodeLine, link_status: str | None) -> tuple[bool, str]:
    """Ready when the cluster is ok and this node serves: a master with slots, or a replica
    whose link to its master is up. The reason says what is missing."""
    if info.get("cluster_state") != "ok":
        if info.get("cluster_known_nodes") == "1" and not me.slots:
            return False, "cluster not formed yet (run the bootstrap Job)"
        return False, "cluster_state is not ok"
    if me.is_master and not me.slots:
        return False, "master without slots"
    if me.is_replica and link_status != "up":
        return False, "master link down"
    return True, "ok"


def unserved_slots(nodes: list[NodeLine]) -> list[tuple[NodeLine, str]]:
    """(owner, slot ranges) for every master with slots that is failing while no replica of
    it is up: nobody serves those slots, and nobody will unless the owner comes back."""
    live = {n.master_id for n in nodes if n.is_replica and n.connected and not n.is_failing}
    return [
        (n, ",".join(str(r) for r in n.slots))
        for n in nodes
        if n.is_master and n.slots and n.is_failing and n.node_id not in live
    ]

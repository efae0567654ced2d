"""When is this pod ready? A pure rule over what the loop read from Redis."""

from __future__ import annotations

from clusterkit.nodes import NodeLine


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

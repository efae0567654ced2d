"""Which pod a node line belongs to: the one answer the Job and the sidecars share.

A node's announced hostname (cluster-announce-hostname, the pod's FQDN) names its pod. A view
that learnt a node by gossip only, or a node restarted before it announced again, has no
hostname: the pod map (node id -> pod name, kept beside nodes.conf and by the Job) names it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from clusterkit.core.naming import PodNaming
from clusterkit.core.nodes import NodeLine

NO_POD_MAP: Mapping[str, str] = {}


def pod_ordinal(
    line: NodeLine, naming: PodNaming, pod_map: Mapping[str, str] = NO_POD_MAP
) -> int | None:
    """The ordinal of this StatefulSet's pod behind `line`: its announced hostname, else the
    pod map; None when neither names a pod of this StatefulSet."""
    if line.address.hostname:
        ordinal = naming.ordinal_of(line.address.hostname)
        if ordinal is not None:
            return ordinal
    pod = pod_map.get(line.node_id)
    return naming.ordinal_of(pod) if pod else None


def pod_label(line: NodeLine, pod_map: Mapping[str, str] = NO_POD_MAP) -> str:
    """A short name for people: the first label of the announced hostname (`redis-3`), else
    the pod map's name, else ""."""
    return line.address.hostname.split(".")[0] or pod_map.get(line.node_id, "")


def pod_map_from(nodes: Sequence[NodeLine], naming: PodNaming) -> dict[str, str]:
    """node id -> pod name, from the hostnames the nodes announce."""
    found: dict[str, str] = {}
    for line in nodes:
        ordinal = pod_ordinal(line, naming)
        if ordinal is not None:
            found[line.node_id] = naming.pod_name(ordinal)
    return found


def members_and_old_ids(
    views: Sequence[Sequence[NodeLine]],
    naming: PodNaming,
    ordinal: int,
    my_id: str,
    pod_map: Mapping[str, str] = NO_POD_MAP,
) -> tuple[set[int], set[str]]:
    """The pods any of `views` names, and the ids other than `my_id` any of them gives pod
    `ordinal`. Every view counts: a node that learnt this pod's old id by gossip only lists it
    without a hostname, so the first view that answers may not name it while the others do
    (seen in CI: redis-0's view alone decided, and the replaced pod never rejoined)."""
    by_id = dict(pod_map)
    for view in views:
        by_id.update(pod_map_from(view, naming))
    members: set[int] = set()
    old: set[str] = set()
    for view in views:
        for line in view:
            found = pod_ordinal(line, naming, by_id)
            if found is None:
                continue
            members.add(found)
            if found == ordinal and line.node_id != my_id:
                old.add(line.node_id)
    return members, old

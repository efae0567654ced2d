"""Which pod a node line belongs to: the one answer the Job and the sidecars share.

A node's announced hostname (cluster-announce-hostname, the pod's FQDN) names its pod. A view
that learnt a node by gossip only, or a node restarted before it announced again, has no
hostname: the pod map (node id -> pod name, kept beside nodes.conf and by the Job) names it."""

from __future__ import annotations

from collections.abc import Mapping

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

"""Where each node's pod is now: the sidecar's address decisions, pure.

Before Redis starts, nodes.conf gets this pod's address and every peer's that DNS knows now
(plan_fix); while Redis runs, a peer it cannot reach whose pod answers at another address gets
a CLUSTER MEET there (plan_meets). The sidecar does the reading and the writing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from clusterkit.core.identity import pod_ordinal
from clusterkit.core.naming import PodNaming
from clusterkit.core.nodes import BUS_PORT_OFFSET, NodeLine
from clusterkit.core.nodesconf import NodesConf

Resolve = Callable[[str], str | None]
"""Pod FQDN -> its current address, or None when it has none yet."""


@dataclass(frozen=True)
class FixPlan:
    new_ips: dict[str, str]
    """node id -> its pod's current address (myself -> POD_IP)."""
    unresolved: list[str]
    unaddressed: frozenset[str]


def pod_fqdn_of(line: NodeLine, naming: PodNaming, pod_map: dict[str, str]) -> str | None:
    """The FQDN of the pod behind a node line: from its announced hostname, else the pod map."""
    ordinal = pod_ordinal(line, naming, pod_map)
    if ordinal is not None:
        return naming.pod_fqdn(ordinal)
    # A hostname of another StatefulSet: asked for as it is.
    return line.address.hostname or None


def plan_fix(
    conf: NodesConf, pod_ip: str, naming: PodNaming, pod_map: dict[str, str], resolve: Resolve
) -> FixPlan:
    """New IP per node id (myself -> pod_ip; peers -> where DNS says their pods are now).
    Two nodes never end up on one address: a peer still listed at the address this pod has now
    (its own pod moved and does not resolve yet) is marked noaddr, as Redis itself does."""
    me = conf.myself
    new_ips: dict[str, str] = {}
    unresolved: list[str] = []
    if me.address.ip != pod_ip:
        new_ips[me.node_id] = pod_ip
    for line in conf.nodes:
        if line.is_myself:
            continue
        fqdn = pod_fqdn_of(line, naming, pod_map)
        address = resolve(fqdn) if fqdn else None
        if address is None:
            unresolved.append(line.node_id)
        elif address != line.address.ip:
            new_ips[line.node_id] = address
    # Two nodes must never end up on one address (a stale record): such peer changes are
    # dropped, repeatedly, since dropping one can bring back a clash; the heal loop goes on.
    while True:
        final = {n.node_id: new_ips.get(n.node_id, n.address.ip) for n in conf.nodes}
        clashing = [
            nid
            for nid in new_ips
            if nid != me.node_id and list(final.values()).count(final[nid]) > 1
        ]
        if not clashing:
            break
        for nid in clashing:
            del new_ips[nid]
    unaddressed = frozenset(
        nid for nid, ip in final.items() if nid != me.node_id and ip == final[me.node_id]
    )
    return FixPlan(new_ips, unresolved, unaddressed)


@dataclass(frozen=True)
class Meet:
    """MEET `node_id` at its pod's current address."""

    node_id: str
    pod_fqdn: str
    ip: str
    port: int
    bus_port: int


def needs_healing(line: NodeLine) -> bool:
    """A peer this node can't talk to: disconnected, suspected or failed, or without address."""
    return not line.is_myself and not line.is_handshake and line.is_down


def heal_candidates(
    nodes: list[NodeLine], naming: PodNaming, pod_map: dict[str, str]
) -> list[tuple[NodeLine, str]]:
    """(line, pod FQDN) of every unhealthy peer whose pod is known."""
    found = []
    for line in nodes:
        if needs_healing(line):
            fqdn = pod_fqdn_of(line, naming, pod_map)
            if fqdn is not None:
                found.append((line, fqdn))
    return found


def plan_meets(
    nodes: list[NodeLine],
    naming: PodNaming,
    pod_map: dict[str, str],
    locate: Callable[[str, str], str | None],
    default_port: int = 6379,
) -> list[Meet]:
    """MEETs for unhealthy peers whose pod answers at a different address.

    `locate(pod_fqdn, node_id)` returns the pod's address only when the Redis there says it is
    `node_id` (CLUSTER MYID): a pod that came back with a new identity must not be met under
    the old one.
    """
    meets: list[Meet] = []
    for line, fqdn in heal_candidates(nodes, naming, pod_map):
        ip = locate(fqdn, line.node_id)
        if ip is not None and ip != line.address.ip:
            # A `noaddr` line says :0@0: the pod's port is the StatefulSet's port then.
            port = line.address.port or default_port
            bus = line.address.cport or port + BUS_PORT_OFFSET
            meets.append(Meet(line.node_id, fqdn, ip, port, bus))
    return meets

"""When is the cluster formed? A pure check over one round of observations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from clusterkit.core.model import PodState
from clusterkit.core.nodes import NodeLine
from clusterkit.core.plan import Plan
from clusterkit.core.slots import SLOT_COUNT, SlotRange

SlotMap = tuple[tuple[int, int, str], ...]
"""Who owns which slots, as sorted (start, end, owner id) triples; Redis prints maximal runs."""


def slot_map(pod: PodState) -> SlotMap:
    """This node's view of who owns which slots."""
    return view_slot_map(pod.nodes)


def view_slot_map(nodes: Sequence[NodeLine]) -> SlotMap:
    return tuple(
        sorted(
            (r.start, r.end, line.node_id)
            for line in nodes
            if line.is_master and not line.is_handshake
            for r in line.slots
        )
    )


def planned_slot_map(plan: Plan, pods: Sequence[PodState]) -> SlotMap:
    """The slot map every node shows once the plan is carried out."""
    node_id = {p.ordinal: p.node_id for p in pods}
    return tuple(
        sorted((r.start, r.end, node_id[m]) for m, ranges in plan.slots.items() for r in ranges)
    )


def view_matches(nodes: Sequence[NodeLine], size: int, expected: SlotMap) -> bool:
    """One node's CLUSTER NODES shows all `size` nodes (none in handshake) and the planned map."""
    known = sum(not line.is_handshake for line in nodes)
    return known == size and view_slot_map(nodes) == expected


def unnamed_nodes(views: Sequence[Sequence[NodeLine]]) -> set[str]:
    """Ids of the nodes that none of these views, other than their own, lists with the
    hostname they announce (none, when these nodes announce no hostname). A hostname arrives
    in that node's own pings only, a moment after the handshake; an id listed without one names
    no pod, so a pod lost right then leaves an old id its peers cannot tell from a foreign
    node. One view naming it is enough: ids are unique."""
    if not any(line.is_myself and line.address.hostname for nodes in views for line in nodes):
        return set()
    listed: set[str] = set()
    named: set[str] = set()
    for nodes in views:
        for line in nodes:
            if line.is_handshake or line.is_myself:
                continue
            listed.add(line.node_id)
            if line.address.hostname:
                named.add(line.node_id)
    return listed - named


def settled(
    info: Mapping[str, str],
    replication: Mapping[str, str],
    size: int,
    masters: int,
    master_ip: str | None = None,
) -> bool:
    """Cheap per-node check from CLUSTER INFO (and a replica's INFO replication): cluster ok,
    knows `size` nodes, sees every slot served by `masters` masters, and a replica's link is up
    to its planned master (at `master_ip`). Nodes that all pass agree on one slot map unless a
    failover is in flight, which the full views read at the end (view_matches) would catch.
    A replica's own word is the one read: its role reaches other nodes' views by gossip up to
    cluster-node-timeout / 2 later (seconds, on hundreds of nodes)."""
    return (
        info.get("cluster_state") == "ok"
        and info.get("cluster_known_nodes") == str(size)
        and info.get("cluster_slots_ok") == str(SLOT_COUNT)
        and info.get("cluster_size") == str(masters)
        and replication.get("master_link_status", "up") == "up"
        and (master_ip is None or replication.get("master_host") == master_ip)
    )


def waiting_for(pods: Sequence[PodState], size: int) -> list[str]:
    """What still keeps the cluster from being formed; empty when it is.

    Formed: every node says cluster_state:ok and knows all `size` nodes, all nodes agree on one
    slot map covering every slot, and every replica's link to its master is up.
    """
    reasons: list[str] = []
    not_ok = [p.pod for p in pods if not p.cluster_ok]
    if not_ok:
        reasons.append(f"cluster_state not ok on {', '.join(not_ok)}")
    partial = [p.pod for p in pods if sum(not n.is_handshake for n in p.nodes) != size]
    if partial:
        reasons.append(f"not every node known yet on {', '.join(partial)}")
    maps = {slot_map(p) for p in pods}
    if len(maps) > 1:
        reasons.append(f"nodes disagree on the slot map ({len(maps)} versions)")
    elif maps and sum(SlotRange(s, e).count for s, e, _ in next(iter(maps))) != SLOT_COUNT:
        reasons.append("not every slot is assigned")
    links_down = [p.pod for p in pods if p.me.is_replica and not p.master_link_up]
    if links_down:
        reasons.append(f"replication link down on {', '.join(links_down)}")
    return reasons

"""When is the cluster formed? A pure check over one round of observations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bootstrap.model import PodState
from bootstrap.plan import Plan
from clusterkit.nodes import NodeLine
from clusterkit.slots import SLOT_COUNT, SlotRange

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


def slots_reply_map(reply: object) -> SlotMap | None:
    """The slot map in a CLUSTER SLOTS reply (`[[start, end, [ip, port, id, ...], ...], ...]`),
    None when the reply has another shape. Much cheaper to read than a whole CLUSTER NODES."""
    if not isinstance(reply, list):
        return None
    triples = []
    for entry in reply:
        if not (isinstance(entry, list) and len(entry) >= 3 and isinstance(entry[2], list)):
            return None
        start, end, owner = entry[0], entry[1], entry[2]
        if not (isinstance(start, int) and isinstance(end, int) and len(owner) >= 3):
            return None
        triples.append((start, end, str(owner[2])))
    return tuple(sorted(triples))


def settled(info: Mapping[str, str], replication: Mapping[str, str], size: int) -> bool:
    """Cheap per-node check: cluster ok, knows `size` nodes, and a replica's link is up."""
    return (
        info.get("cluster_state") == "ok"
        and info.get("cluster_known_nodes") == str(size)
        and replication.get("master_link_status", "up") == "up"
    )


def view_worth_reading(info: Mapping[str, str], size: int) -> bool:
    """CLUSTER INFO says the node knows every node and sees every slot owned: its slot map is
    worth reading. (A handshake entry would count as known too, so `settled` asks again.)"""
    return info.get("cluster_known_nodes") == str(size) and info.get(
        "cluster_slots_assigned"
    ) == str(SLOT_COUNT)


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

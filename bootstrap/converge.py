"""When is the cluster formed? A pure check over one round of observations."""

from __future__ import annotations

from collections.abc import Sequence

from bootstrap.model import PodState
from clusterkit.slots import SLOT_COUNT, SlotRange


def slot_map(pod: PodState) -> tuple[tuple[int, int, str], ...]:
    """This node's view of who owns which slots, as sorted (start, end, owner id) triples."""
    return tuple(
        sorted(
            (r.start, r.end, line.node_id)
            for line in pod.nodes
            if line.is_master and not line.is_handshake
            for r in line.slots
        )
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

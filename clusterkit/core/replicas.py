"""Which master each replica follows: balanced, stable, and off its master's Kubernetes node."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from clusterkit.core.model import PodState


def assign_replicas(
    pods: Sequence[PodState], masters: Sequence[PodState], hosts: Mapping[int, str]
) -> dict[int, int]:
    """Replica pod -> master, balanced (no master gets more than its fair share, rounded up).

    Each replica has an ideal master: on a fresh cluster, the k-th non-master pod by ordinal goes
    to the k-th master round-robin (3->0, 4->1, 5->2). Replicas already attached stay where they
    are while their master is under its share (so a failover's new layout is kept); the rest go
    to their ideal master if it has room, else to the one with the fewest. Aiming at the ideal
    master, not at the current counts, lets concurrent or interrupted Jobs agree. A new replica
    never goes to a master on its own Kubernetes node while another master with room is not.
    """
    master_by_id = {m.node_id: m.ordinal for m in masters}
    order = [m.ordinal for m in masters]
    others = [p for p in pods if p.ordinal not in set(order)]
    if not order or not others:
        return {}
    share = -(-len(others) // len(order))
    ideal = {p.ordinal: order[k % len(order)] for k, p in enumerate(others)}
    counts = dict.fromkeys(order, 0)
    replica_of: dict[int, int] = {}
    new: list[int] = []
    for pod in others:
        current = master_by_id.get(pod.me.master_id or "") if pod.me.is_replica else None
        if current is not None and counts[current] < share:
            replica_of[pod.ordinal] = current
            counts[current] += 1
    for pod in others:
        if pod.ordinal in replica_of:
            continue
        room = [o for o in order if counts[o] < share] or order
        choices = sorted(room, key=lambda o: (o != ideal[pod.ordinal], counts[o], o))
        host = hosts.get(pod.ordinal)
        apart = [o for o in choices if host is None or hosts.get(o) != host]
        target = (apart or choices)[0]
        replica_of[pod.ordinal] = target
        counts[target] += 1
        new.append(pod.ordinal)
    separate_from_masters(replica_of, new, hosts)
    return dict(sorted(replica_of.items()))


def separate_from_masters(
    replica_of: dict[int, int], new: list[int], hosts: Mapping[int, str]
) -> None:
    """Greedy placement can leave a new replica on its master's node when swapping masters with
    another new replica would put both apart: swap them (in ordinal order, so deterministically)."""

    def apart(replica: int, master: int) -> bool:
        return hosts.get(replica) is None or hosts.get(replica) != hosts.get(master)

    for replica in new:
        if apart(replica, replica_of[replica]):
            continue
        for other in new:
            mine, theirs = replica_of[replica], replica_of[other]
            if other != replica and apart(replica, theirs) and apart(other, mine):
                replica_of[replica], replica_of[other] = theirs, mine
                break

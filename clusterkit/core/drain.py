"""Scale in: the pods whose ordinal is CLUSTER_SIZE or above leave the cluster. Their slots move
to the staying masters (core.balance gives a leaving master a share of none); once none of
them owns a slot or is followed by a staying replica, every staying node forgets them and each
is reset, all in one round, so that no node is left to gossip a forgotten one back in. Pure: a
function of the observed PodStates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clusterkit.core.model import Action, Forget, PodState, Reset
from clusterkit.core.reasons import Kind, Reason, about_pods


@dataclass(frozen=True)
class Drain:
    """What happens to the leaving pods this round."""

    actions: tuple[Action, ...] = ()
    """Forget every leaving node on the staying nodes that list it, and reset it."""
    waiting: tuple[Reason, ...] = ()
    """Why the leaving pods are not let go yet (their slots still move, ...)."""
    members: tuple[PodState, ...] = ()
    """Leaving pods still in the cluster at the start of this round."""


def is_member(pod: PodState, staying: Sequence[PodState]) -> bool:
    """In the cluster: a staying node lists it, or it lists some other node (a node that was
    forgotten but not yet reset still does)."""
    listed = any(p.view_of(pod.node_id) for p in staying)
    return listed or any(not n.is_myself and not n.is_handshake for n in pod.nodes)


def owns_slots(pod: PodState, everyone: Sequence[PodState]) -> bool:
    """Some view (its own included) still gives it slots."""
    return any(line.is_master and line.slots for p in everyone if (line := p.view_of(pod.node_id)))


def drain(staying: Sequence[PodState], leaving: Sequence[PodState]) -> Drain:
    """The leaving pods are let go once every one of them owns no slot in any view, no staying
    node replicates one of them, and resetting each drops no key that exists nowhere else:
    a master must hold no keys (Redis refuses anyway), a replica none either unless it follows
    a staying master that answers and owns slots (its keys are copies of that master's; Redis
    empties a replica it resets, as `redis-cli --cluster del-node` does)."""
    members = tuple(p for p in leaving if is_member(p, staying))
    if not members:
        return Drain()
    everyone = [*staying, *leaving]
    leaving_ids = {p.node_id for p in members}
    by_id = {p.node_id: p for p in staying}
    waiting: list[Reason] = []
    holders = [p for p in members if owns_slots(p, everyone)]
    if holders:
        names = ", ".join(p.pod for p in holders)
        waiting.append(
            about_pods(
                Kind.LEAVING_SLOTS,
                f"slots of leaving pods {names} to move to staying masters",
                holders,
            )
        )
    followers = [p for p in staying if p.me.is_replica and p.me.master_id in leaving_ids]
    if followers:
        names = ", ".join(p.pod for p in followers)
        waiting.append(
            about_pods(
                Kind.LEAVING_FOLLOWERS, f"replicas {names} to follow a staying master", followers
            )
        )
    for pod in members:
        master = by_id.get(pod.me.master_id or "") if pod.me.is_replica else None
        copies_kept = master is not None and master.me.is_master and bool(master.me.slots)
        if pod.keys and not copies_kept:
            waiting.append(
                about_pods(
                    Kind.LEAVING_KEYS,
                    f"leaving pod {pod.pod} to hold no keys ({pod.keys} left; a replica empties"
                    " once its master's slots have moved)",
                    [pod],
                )
            )
    if waiting:
        return Drain(waiting=tuple(waiting), members=members)
    forgets = [
        Forget(p.ordinal, gone.node_id, gone.ordinal)
        for gone in members
        for p in staying
        if p.view_of(gone.node_id)
    ]
    resets = [Reset(p.ordinal, p.node_id) for p in members]
    return Drain(actions=(*forgets, *resets), members=members)

"""Resizing steps of the plan: slots move off every master that will not stay one, and the
pods that leave go only once the staying masters have their replicas. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from clusterkit.core.balance import balance_moves
from clusterkit.core.drain import Drain
from clusterkit.core.model import Action, Failover, PodState
from clusterkit.core.openslots import move
from clusterkit.core.reasons import Kind, Reason, about_pods
from clusterkit.core.slots import SLOT_COUNT, SlotRange, compact


def claimed_slots(pods: Sequence[PodState]) -> bytearray:
    """Slots anyone claims, in anyone's view (1 = claimed): the plan never assigns them again."""
    claimed = bytearray(SLOT_COUNT)
    for pod in pods:
        for line in pod.nodes:
            for r in line.slots:
                claimed[r.start : r.end + 1] = b"\x01" * r.count
    return claimed


def takeover_reason(takeovers: Sequence[Failover], pods: Sequence[PodState]) -> Reason:
    name = {p.ordinal: p.pod for p in pods}
    heirs = ", ".join(f"{name[f.ordinal]} from {name[f.master]}" for f in takeovers)
    return Reason(
        Kind.TAKEOVER,
        f"staying replicas to take over from leaving masters ({heirs})",
        pods=tuple(name[f.ordinal] for f in takeovers),
    )


def replicas_first(drained: Drain, uncovered: Sequence[str]) -> Drain:
    """No leaving replica is reset while a master it follows still waits for its staying
    replicas to sync."""
    if not drained.actions or not uncovered:
        return drained
    reason = Reason(
        Kind.REPLICAS_SYNC,
        f"staying replicas of {', '.join(uncovered)} to sync before leaving ones go",
        pods=tuple(uncovered),
    )
    return Drain(waiting=(reason,), members=drained.members)


def unreplicated(
    masters: Sequence[PodState],
    replica_of: Mapping[int, int],
    pods: Sequence[PodState],
    leaving: Sequence[PodState],
) -> list[str]:
    """Masters followed by a leaving replica whose planned staying replicas are not all
    attached with their link up yet: resetting the leaving one now would leave the master
    with fewer copies than it will have."""
    by_ordinal = {p.ordinal: p for p in pods}
    followed = {p.me.master_id for p in leaving if p.me.is_replica}
    names = []
    for master in masters:
        if master.node_id not in followed:
            continue
        planned = [by_ordinal[r] for r, m in replica_of.items() if m == master.ordinal]
        synced = [
            r for r in planned if r.me.master_id == master.node_id and r.master_link_up is True
        ]
        if len(synced) < len(planned):
            names.append(master.pod)
    return names


def balance_steps(
    masters: Sequence[PodState],
    everyone: Sequence[PodState],
    slots: dict[int, tuple[SlotRange, ...]],
    leaving: Sequence[PodState] = (),
) -> tuple[list[Action], tuple[Reason, ...]]:
    """Slot moves (keys included) that give every master its even share and leaving masters
    none, once every slot has an owner; `slots` (staying masters only) is updated to the owners
    after the moves. Moves wait until the masters all know each other (SETSLOT names the other
    side by id)."""
    if not all(claimed_slots(everyone)):
        return [], ()
    givers = [p for p in leaving if p.me.is_master and p.me.slots]
    moves = balance_moves(masters, givers)
    if not moves:
        return [], ()
    both = [*masters, *givers]
    strangers = [(a, b) for a in both for b in both if a is not b and not a.knows(b)]
    if strangers:
        pairs = ", ".join(f"{a.pod}/{b.pod}" for a, b in strangers[:5])
        return [], (
            Reason(
                Kind.STRANGERS,
                f"masters to know each other before slots move ({pairs})",
                pods=tuple(sorted({a.pod for a, _ in strangers})),
            ),
        )
    moving = {m.source for m in moves} | {m.target for m in moves}
    down = [p for p in both if p.ordinal in moving and not p.cluster_ok]
    if down:
        # A new master says cluster_state:ok only about 5 s after it joined (the rejoin delay);
        # until then it answers MIGRATE's RESTORE with CLUSTERDOWN, and a move begun would stay
        # open (measured under load: 100-170 slots per scale out, closed by a later round).
        names = ", ".join(p.pod for p in down)
        return [], (
            about_pods(Kind.NOT_OK, f"{names} to see cluster_state ok before slots move", down),
        )
    owned = {o: {s for r in ranges for s in r.slots()} for o, ranges in slots.items()}
    for m in moves:
        owned.get(m.source, set()).discard(m.slot)
        owned[m.target].add(m.slot)
    slots.update({o: tuple(compact(owned[o])) for o in owned})
    by_ordinal = {m.ordinal: m for m in both}
    return [
        move(
            m.slot,
            by_ordinal[m.source],
            by_ordinal[m.target],
            handover=True,
            announce=tuple(o for o in by_ordinal if o not in (m.source, m.target)),
        )
        for m in moves
    ], ()

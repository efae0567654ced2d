"""The plan: a pure function of what was observed. Same observations, same plan, so two Jobs
running at once (or a rerun after a crash at any point) drive the cluster to the same shape."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from clusterkit.core.domains import Verdict, judge, shards_of
from clusterkit.core.drain import Drain, drain, is_member
from clusterkit.core.drift import Repair, plan_repair, unsettled
from clusterkit.core.ghosts import Ghost, GhostDecision, LostSlots, decide, find_ghosts
from clusterkit.core.masters import (
    MasterChoice,
    choose_masters,
    spare_reason,
    surplus_reason,
    unreachable_shape,
)
from clusterkit.core.model import (
    Action,
    AddSlots,
    Forget,
    Meet,
    PodState,
    Replicate,
    SetConfigEpoch,
)
from clusterkit.core.naming import PodNaming
from clusterkit.core.nodes import BUS_PORT_OFFSET
from clusterkit.core.openslots import as_if_closed, close_open_slots, open_slots
from clusterkit.core.reasons import Kind, Reason
from clusterkit.core.replicas import assign_replicas
from clusterkit.core.resize import (
    balance_steps,
    claimed_slots,
    replicas_first,
    takeover_reason,
    unreplicated,
)
from clusterkit.core.safety import check_safety, foreign_refusal
from clusterkit.core.slots import SlotRange, compact, even_split


@dataclass(frozen=True)
class Shape:
    """What the StatefulSet should become."""

    size: int
    """Pods 0..size-1 form the cluster; pods from `size` on leave it (scale in)."""
    masters: int


@dataclass(frozen=True)
class Plan:
    """The target topology and the steps still missing towards it."""

    masters: tuple[int, ...] = ()
    """Ordinals of the masters, ascending."""
    slots: dict[int, tuple[SlotRange, ...]] = field(default_factory=dict)
    """Master ordinal -> slots it owns or will own."""
    replica_of: dict[int, int] = field(default_factory=dict)
    """Replica ordinal -> master ordinal."""
    actions: tuple[Action, ...] = ()
    refusal: Reason | None = None
    """Why the Job must not touch this cluster; set means no actions."""
    lost: tuple[Ghost, ...] = ()
    """Lost shards: slots whose owner died with no surviving replica."""
    waiting: tuple[Reason, ...] = ()
    """What the plan waits for before its next steps (e.g. a failover before a forget)."""
    leaving: tuple[str, ...] = ()
    """Pods from CLUSTER_SIZE on that were still in the cluster when observed (scale in)."""
    layout: Verdict | None = None
    """Whether the observed layout survives the loss of a failure domain (None: not judged)."""
    repair: Repair = field(default_factory=Repair)
    """The next drift repair (clusterkit.core.drift), planned only when nothing else is to do and
    the cluster is calm; the caller runs it once no failover happened for a quiet period."""
    unsettled: str | None = None
    """Why no repair was planned although the layout breaks a rule (the cluster is not calm)."""


def observed_shape(pods: Sequence[PodState]) -> Shape:
    """The shape a formed cluster has now: every pod, and as many masters as own slots in any
    view (a dead owner included). The sidecar plans with it: sizes are the Job's settings."""
    owners = {line.node_id for p in pods for line in p.nodes if line.is_master and line.slots}
    return Shape(len(pods), len(owners))


def forgets(ghosts: Sequence[Ghost]) -> list[Action]:
    """FORGET each ghost on every node that lists it, except its own replicas (Redis refuses:
    the plan points them at a live master first, and the next round forgets there)."""
    return [
        Forget(ordinal, g.node_id, g.pod)
        for g in ghosts
        for ordinal in g.listed_by
        if ordinal not in g.replicas
    ]


def slot_steps(
    masters: Sequence[PodState], everyone: Sequence[PodState]
) -> tuple[dict[int, tuple[SlotRange, ...]], list[Action]]:
    """Master ordinal -> slots it owns or will own, and the epoch and ADDSLOTS steps for the
    slots nobody claims yet (each master takes those of its even share)."""
    fresh = not any(p.me.slots for p in everyone)
    claimed = claimed_slots(everyone)
    top_epoch = max((p.current_epoch for p in everyone), default=0)
    slots: dict[int, tuple[SlotRange, ...]] = {}
    actions: list[Action] = []
    for master, ideal in zip(masters, even_split(len(masters)), strict=True):
        wanted = [slot for slot in ideal.slots() if not claimed[slot]]
        owned = [slot for r in master.me.slots for slot in r.slots()]
        slots[master.ordinal] = tuple(compact(owned + wanted))
        alone = master.me.config_epoch == 0 and len(master.nodes) == 1
        if fresh and alone and master.current_epoch == 0:
            actions.append(SetConfigEpoch(master.ordinal, master.ordinal + 1))
        elif wanted and alone and not owned:
            # A new master taking slots in a running cluster (lost slots reassigned): an epoch
            # above every other, so its claim wins over any stale one.
            actions.append(SetConfigEpoch(master.ordinal, top_epoch + 1 + master.ordinal))
        if wanted:
            actions.append(AddSlots(master.ordinal, tuple(compact(wanted))))
    return slots, actions


def role_change(
    shape: Shape,
    choice: MasterChoice,
    decision: GhostDecision,
    everyone: Sequence[PodState],
    drained: Drain,
) -> Plan | None:
    """The plan when roles must change before anything else (None: they need not): a shape
    no pod can reach is refused; a staying replica takes over a leaving master's slots without
    moving a key, and the rest is planned once the roles have changed."""
    if choice.short:
        return Plan(refusal=unreachable_shape(shape.size, shape.masters, choice))
    if not (choice.takeovers or choice.spares) or not all(claimed_slots(everyone)):
        return None
    if not choice.takeovers:
        staying = [p for p in everyone if p.ordinal < shape.size and p not in choice.spares]
        return Plan(
            tuple(m.ordinal for m in choice.masters),
            actions=(*forgets(decision.forget), *drain(staying, choice.spares).actions),
            lost=decision.lost,
            waiting=(spare_reason(choice),),
            leaving=tuple(p.pod for p in drained.members),
        )
    return Plan(
        tuple(m.ordinal for m in choice.masters),
        actions=(*forgets(decision.forget), *choice.takeovers),
        lost=decision.lost,
        waiting=(takeover_reason(choice.takeovers, everyone),),
        leaving=tuple(p.pod for p in drained.members),
    )


def replicate_steps(
    replica_of: Mapping[int, int],
    by_ordinal: Mapping[int, PodState],
    still_giving: set[str],
    surplus: Sequence[PodState],
) -> list[Action]:
    """REPLICATE for every pod that does not follow its planned master yet."""
    steps: list[Action] = []
    for replica, master_ordinal in replica_of.items():
        pod, master = by_ordinal[replica], by_ordinal[master_ordinal]
        if pod.me.is_replica and pod.me.master_id in (master.node_id, *still_giving):
            # (A replica of a leaving master stays its copy until that master's slots moved.)
            continue
        if pod in surplus:
            continue  # it follows once it owns no slot (Redis refuses before)
        # Sent even while the MEET is still in flight: apply retries "Unknown node" briefly,
        # which beats waiting a whole observation round (seconds, on hundreds of nodes).
        steps.append(Replicate(replica, master_ordinal, master.node_id))
    return steps


def rejoin_steps(
    shape: Shape,
    pods: Sequence[PodState],
    ghosts: Sequence[Ghost],
    hosts: Mapping[int, str] | None,
    *,
    pod_names: Mapping[str, str] | None,
    naming: PodNaming | None,
    lost_slots: LostSlots,
) -> tuple[Action, ...]:
    """While a slot is open, the steps that bring a replaced pod back as a replica anyway (a
    resize can keep slots open for minutes): forgetting its old identity, which owned no slot,
    and its MEET and REPLICATE, planned as if the open slots were closed. None touches a slot."""
    replaced = {g.pod for g in ghosts if not g.slots}
    if not replaced:
        return ()
    rest = make_plan(
        shape,
        as_if_closed(pods),
        hosts,
        pod_names=pod_names,
        lost_slots=lost_slots,
        naming=naming,
    )
    return tuple(
        a
        for a in rest.actions
        if (isinstance(a, Forget) and a.pod in replaced)
        or (isinstance(a, (Meet, Replicate)) and a.ordinal in replaced)
    )


def make_plan(
    shape: Shape,
    pods: Sequence[PodState],
    hosts: Mapping[int, str] | None = None,
    *,
    pod_names: Mapping[str, str] | None = None,
    lost_slots: LostSlots = LostSlots.REFUSE,
    naming: PodNaming | None = None,
) -> Plan:
    """The whole plan; `pods` must be every pod below `shape.size`, one state each, and may add
    pods above it that answer (they leave: scale in); `hosts` is each pod's failure domain
    (clusterkit.core.domains: zone, else Kubernetes node, from the sidecars), which spreads fresh
    masters and keeps replicas out of their master's domain; `pod_names` (node id -> pod, the
    sidecar's pod map) names old identities that announce no hostname; `naming` tells a node of
    a pod that no longer answers (a removed pod) from a foreign one; `lost_slots` says what to
    do with a lost shard."""
    staying = [p for p in pods if p.ordinal < shape.size]
    # Pods above the size that are no part of the cluster (never joined, or already reset) are
    # none of the plan's business.
    pods = [*staying, *(p for p in pods if p.ordinal >= shape.size and is_member(p, staying))]
    ghosts, foreign = find_ghosts(pods, pod_names, naming)
    refusal = check_safety(shape.size, pods) or foreign_refusal(foreign)
    if refusal:
        return Plan(refusal=refusal)
    if open_slots(pods):
        # An open slot blocks every later change: close it first, plan the rest next round.
        fix = close_open_slots(pods)
        if isinstance(fix, str):
            return Plan(refusal=Reason(Kind.OPEN_SLOT, fix))
        rejoin = rejoin_steps(
            shape, pods, ghosts, hosts, pod_names=pod_names, naming=naming, lost_slots=lost_slots
        )
        return Plan(actions=(*fix, *rejoin))
    decision = decide(ghosts, pods, lost_slots, naming)
    if decision.refusal:
        return Plan(refusal=decision.refusal, lost=decision.lost)
    # Pods left alone: a kept lost shard's new pod, and the replicas of a ghost that still
    # owns slots (each may be the only copy of that shard: Redis promotes one of them).
    held = decision.held | {r for g in ghosts if g.slots for r in g.replicas}
    everyone = sorted(pods, key=lambda p: p.ordinal)
    leaving = [p for p in everyone if p.ordinal >= shape.size]
    pods = [p for p in everyone if p.ordinal not in held and p.ordinal < shape.size]
    choice = choose_masters(shape.masters, pods, hosts, leaving)
    masters = list(choice.masters)
    drained = drain(pods, [p for p in leaving if p.ordinal not in held])
    if early := role_change(shape, choice, decision, everyone, drained):
        return early
    slots, actions = slot_steps(masters, everyone)
    giving = [*leaving, *choice.surplus]
    moves, balance_wait = balance_steps(masters, everyone, slots, giving)
    actions[:0] = [*forgets(decision.forget), *moves]
    replica_of = assign_replicas(pods, masters, hosts or {})
    drained = replicas_first(drained, unreplicated(masters, replica_of, pods, leaving))
    actions += drained.actions
    hub = masters[0]
    by_ordinal = {p.ordinal: p for p in pods}
    for pod in pods:
        # Everyone meets the hub (a star, as redis-cli does: measured fastest to cluster_state:ok)
        # and each replica also meets its own master, so it can REPLICATE as soon as that
        # handshake is done instead of waiting for gossip. Gossip spreads the rest.
        parents = [hub]
        if pod.ordinal in replica_of and by_ordinal[replica_of[pod.ordinal]] is not hub:
            parents.append(by_ordinal[replica_of[pod.ordinal]])
        for parent in parents:
            if parent is not pod and not (pod.knows(parent) and parent.knows(pod)):
                actions.append(
                    Meet(
                        pod.ordinal,
                        parent.ordinal,
                        parent.ip,
                        parent.port,
                        parent.port + BUS_PORT_OFFSET,
                    )
                )
    still_giving = {p.node_id for p in giving if p.me.is_master and p.me.slots}
    actions += replicate_steps(replica_of, by_ordinal, still_giving, choice.surplus)
    waiting = (*decision.waiting, *balance_wait, *drained.waiting, *surplus_reason(choice))
    domains = hosts or {}
    layout = judge(shards_of(everyone), domains) if domains else None
    repair, unsettled_reason = Repair(), None
    if domains and not actions and not waiting and not leaving and not held:
        unsettled_reason = unsettled(everyone)
        if unsettled_reason is None:
            repair = plan_repair(everyone, domains)
    return Plan(
        tuple(m.ordinal for m in masters),
        slots,
        replica_of,
        tuple(actions),
        lost=decision.lost,
        waiting=waiting,
        leaving=tuple(p.pod for p in drained.members),
        layout=layout,
        repair=repair,
        unsettled=unsettled_reason,
    )

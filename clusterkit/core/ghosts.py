"""Replaced pods: a pod whose volume was lost comes back as a new Redis node, and every peer
keeps its old identity (a "ghost"). Pure rules, no I/O: which ids are ghosts, which may be
forgotten now, and which are lost shards (slots whose only copy died with the old identity)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from clusterkit.core.model import PodState
from clusterkit.core.naming import PodNaming
from clusterkit.core.nodes import NodeLine
from clusterkit.core.reasons import Kind, Reason, about_pods
from clusterkit.core.slots import SlotRange, compact, format_ranges

BASE_STATEFULSET = "redis"
"""The StatefulSet's name in manifests/; its CronJob template is `redis-bootstrap`."""


def accept_loss_command(naming: PodNaming | None) -> str:
    """The kubectl command that reruns the Job with REASSIGN_LOST_SLOTS=true: an overlay's
    namePrefix or nameSuffix renames the StatefulSet and the CronJob alike."""
    statefulset = naming.statefulset if naming else BASE_STATEFULSET
    namespace = f"-n {naming.namespace} " if naming else ""
    if BASE_STATEFULSET in statefulset:
        cronjob = statefulset.replace(BASE_STATEFULSET, BASE_STATEFULSET + "-bootstrap", 1)
    else:
        cronjob = statefulset + "-bootstrap"
    return (
        f"kubectl {namespace}create job --from=cronjob/{cronjob}"
        " redis-reassign-lost-slots --dry-run=client -o yaml"
        " | kubectl set env --local -f - REASSIGN_LOST_SLOTS=true -o yaml | kubectl create -f -"
    )


"""The one command that accepts a lost shard (names of the kustomize base)."""


class LostSlots(Enum):
    """What the planner does with a lost shard."""

    REFUSE = "refuse"
    """Stop and say so (the Job's default: accepting a loss is a person's decision)."""
    KEEP = "keep"
    """Leave the shard and its pod alone, heal everything else (the sidecar)."""
    REASSIGN = "reassign"
    """Forget the dead owner and give its slots to masters (REASSIGN_LOST_SLOTS=true)."""


@dataclass(frozen=True)
class Ghost:
    """An old identity of pod `pod`, as the live nodes still list it."""

    node_id: str
    pod: int
    """Ordinal of the pod it belonged to (its announced hostname, or the pod map)."""
    pod_name: str
    slots: tuple[SlotRange, ...]
    """Slots some view still gives it."""
    listed_by: tuple[int, ...]
    """Ordinals of the pods whose view lists it."""
    replicas: tuple[int, ...]
    """Ordinals of live pods that still replicate it (they cannot forget their master)."""
    down: bool
    """Every view shows it failing, disconnected or without address."""
    failed: bool
    """Every view flags it `fail`: it has been unreachable longer than cluster-node-timeout."""
    removed: bool = False
    """Its pod did not answer at all: a pod beyond CLUSTER_SIZE, removed before it was drained."""

    @property
    def is_lost_shard(self) -> bool:
        """Owns slots and no live node replicates it: its data had no surviving copy."""
        return bool(self.slots) and not self.replicas

    def describe(self) -> str:
        if self.removed:
            return f"{self.node_id} (of {self.pod_name}, which no longer answers)"
        return f"{self.node_id} (old identity of {self.pod_name})"


def owner_pod(
    line: NodeLine,
    by_fqdn: Mapping[str, PodState],
    pod_names: Mapping[str, str],
    naming: PodNaming | None = None,
) -> tuple[int, str, bool] | None:
    """(ordinal, pod name, removed) of the pod a node line belongs to: its announced hostname,
    else the pod map (node id -> pod name, kept by the sidecar and by the Job); with `naming`,
    a hostname of this StatefulSet whose pod was not observed names a removed pod."""
    hostname = line.address.hostname.rstrip(".")
    if hostname in by_fqdn:
        pod = by_fqdn[hostname]
        return pod.ordinal, pod.pod, False
    name = pod_names.get(line.node_id)
    found = next((p for p in by_fqdn.values() if p.pod == name), None) if name else None
    if found is not None:
        return found.ordinal, found.pod, False
    # A view that learnt the node through gossip only has no hostname: the map may name it.
    announced = hostname or name or ""
    if naming is None or not announced or (ordinal := naming.ordinal_of(announced)) is None:
        return None
    return ordinal, naming.pod_name(ordinal), True


def find_ghosts(
    pods: Sequence[PodState],
    pod_names: Mapping[str, str] | None = None,
    naming: PodNaming | None = None,
) -> tuple[list[Ghost], list[tuple[PodState, NodeLine]]]:
    """(ghosts, foreign lines): every id some view lists that is no pod's current id, split
    into old identities of this StatefulSet's pods (or, with `naming`, nodes of its pods that
    did not answer: removed ones) and nodes of no pod at all.

    `pods` must be every pod, each answering with its own id: an id that answers anywhere is
    then no ghost (it moved, and the address heal handles it)."""
    current = {p.node_id for p in pods}
    by_fqdn = {p.fqdn: p for p in pods}
    names = pod_names or {}
    ordered = sorted(pods, key=lambda p: p.ordinal)
    # A node learnt only through gossip has no hostname in that view: one view naming the id
    # is enough, since ids are unique.
    owners: dict[str, tuple[int, str, bool]] = {}
    for pod in ordered:
        for line in pod.nodes:
            owner = None if line.node_id in current else owner_pod(line, by_fqdn, names, naming)
            if owner is not None:
                owners.setdefault(line.node_id, owner)
    lines: dict[str, list[tuple[PodState, NodeLine]]] = {}
    foreign: list[tuple[PodState, NodeLine]] = []
    for pod in ordered:
        for line in pod.nodes:
            if line.is_handshake or line.node_id in current:
                continue
            if line.node_id in owners:
                lines.setdefault(line.node_id, []).append((pod, line))
            else:
                foreign.append((pod, line))
    ghosts = []
    for node_id, seen in sorted(lines.items()):
        slots = sorted(
            {s for _, line in seen if line.is_master for r in line.slots for s in r.slots()}
        )
        ordinal, pod_name, removed = owners[node_id]
        ghosts.append(
            Ghost(
                node_id=node_id,
                pod=ordinal,
                pod_name=pod_name,
                slots=tuple(compact(slots)),
                listed_by=tuple(pod.ordinal for pod, _ in seen),
                replicas=tuple(p.ordinal for p in pods if p.me.master_id == node_id),
                down=all(line.is_down for _, line in seen),
                failed=all("fail" in line.flags for _, line in seen),
                removed=removed,
            )
        )
    return ghosts, foreign


@dataclass(frozen=True)
class GhostDecision:
    """What to do about the ghosts this round."""

    forget: tuple[Ghost, ...] = ()
    """Forget these on every node that lists them (except their own replicas)."""
    lost: tuple[Ghost, ...] = ()
    """Lost shards, whatever is done about them."""
    held: frozenset[int] = frozenset()
    """Pods left alone: their old identity is a lost shard that is kept."""
    waiting: tuple[Reason, ...] = ()
    """Why some ghost is not forgotten yet."""
    refusal: Reason | None = None


def decide(
    ghosts: Sequence[Ghost],
    pods: Sequence[PodState],
    lost_slots: LostSlots,
    naming: PodNaming | None,
) -> GhostDecision:
    """Which ghosts go now, which wait, and what a lost shard means under `lost_slots`."""
    forget: list[Ghost] = []
    waiting: list[Reason] = []
    lost = [g for g in ghosts if g.is_lost_shard]
    for ghost in ghosts:
        if not ghost.down:
            waiting.append(
                Reason(
                    Kind.GHOST_CONNECTED,
                    f"{ghost.describe()} still looks connected to some node: waiting for Redis"
                    " to flag it failing (if it stays up, it is a node of another cluster"
                    " announcing this pod's name: run CLUSTER FORGET for it on every node)",
                    nodes=(ghost.node_id,),
                    pods=(ghost.pod_name,),
                )
            )
        elif ghost.slots and ghost.replicas:
            waiting.append(
                Reason(
                    Kind.GHOST_PROMOTION,
                    f"{ghost.describe()} owns slots {format_ranges(ghost.slots)}: waiting for"
                    " Redis to promote its replica (cluster-node-timeout)",
                    nodes=(ghost.node_id,),
                    pods=(ghost.pod_name,),
                )
            )
        elif not ghost.slots:
            forget.append(ghost)
    if not lost or lost_slots is LostSlots.KEEP:
        held = frozenset(g.pod for g in lost)
        return GhostDecision(tuple(forget), tuple(lost), held, tuple(waiting))
    if lost_slots is LostSlots.REFUSE:
        refusal = Reason(
            Kind.LOST_SHARD,
            lost_shard_refusal(lost, naming, ghosts),
            nodes=tuple(g.node_id for g in lost),
            pods=tuple(g.pod_name for g in lost),
        )
        return GhostDecision(lost=tuple(lost), refusal=refusal)
    problem, refused = reassign_check(lost, pods)
    if refused:
        return GhostDecision(lost=tuple(lost), refusal=refused)
    if problem:
        return GhostDecision(tuple(forget), tuple(lost), waiting=(*waiting, problem))
    return GhostDecision((*forget, *lost), tuple(lost), waiting=tuple(waiting))


def reassign_check(
    lost: Sequence[Ghost], pods: Sequence[PodState]
) -> tuple[Reason | None, Reason | None]:
    """(what to wait for, why to refuse) before lost slots are given away; both None = go.
    The dead owner must be flagged `fail` everywhere (unreachable for longer than
    cluster-node-timeout), and no node may hold a key in its slots (counted in slot_keys)."""
    unflagged = [g for g in lost if not g.failed]
    if unflagged:
        described = "; ".join(g.describe() for g in unflagged)
        wait = Reason(
            Kind.LOST_UNFLAGGED,
            f"waiting for every node to flag {described} as fail",
            nodes=tuple(g.node_id for g in unflagged),
        )
        return wait, None
    slots = lost_slot_set(lost)
    uncounted = [pod for pod in pods if not slots <= pod.slot_keys.keys()]
    if uncounted:
        wait = Reason(
            Kind.LOST_COUNTING,
            "counting keys in the lost slots",
            pods=tuple(pod.pod for pod in uncounted),
        )
        return wait, None
    for pod in pods:
        holding = sorted(s for s in slots if pod.slot_keys[s])
        if holding:
            return None, about_pods(
                Kind.LOST_SLOT_KEYS,
                f"REASSIGN_LOST_SLOTS is set, but pod {pod.pod} holds keys in lost slots"
                f" {format_ranges(compact(holding))}: that data is not lost. Copy those"
                " keys elsewhere (e.g. redis-cli --rdb), then rerun the Job",
                [pod],
            )
    return None, None


def lost_shard_refusal(
    lost: Sequence[Ghost], naming: PodNaming | None, ghosts: Sequence[Ghost] = ()
) -> str:
    """The refusal for lost shards; `ghosts` (all of them) tell how far a scale in went."""
    shards = "; ".join(
        f"slots {format_ranges(g.slots)} were owned only by node {g.describe()}" for g in lost
    )
    removed = sorted({g.pod for g in [*lost, *ghosts] if g.removed})
    if any(g.removed for g in lost):
        # Scale in done in the wrong order: the pods went before the Job moved their slots.
        return (
            f"lost shard: {shards}. Its pod was removed (the StatefulSet scaled down) before the"
            " Job moved its slots to the staying masters, so no node serves them now. Its"
            " volume is normally still there: scale the StatefulSet back up to"
            f" {removed[-1] + 1} pods, wait for the pods to be ready, rerun the Job, and lower"
            " the StatefulSet's replicas only after the Job says so. If that volume is gone"
            f" too, accept the loss by rerunning the Job with REASSIGN_LOST_SLOTS=true: "
            + accept_loss_command(naming)
        )
    return (
        f"lost shard: {shards}, which failed with no surviving replica, so those slots have no"
        " copy of their data left. If the data is gone (a backup is the only copy), accept the"
        " loss by rerunning the Job with REASSIGN_LOST_SLOTS=true (or --reassign-lost-slots):"
        " it forgets the dead node and gives its slots, empty, to masters. On Kubernetes: "
        + accept_loss_command(naming)
    )


def lost_slot_set(ghosts: Sequence[Ghost]) -> set[int]:
    """Every slot of every lost shard (the Job counts their keys before reassigning)."""
    return {s for g in ghosts if g.is_lost_shard for r in g.slots for s in r.slots()}

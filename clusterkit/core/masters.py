"""Which pods are the masters: the shape asks for `Shape.masters` of them, whatever roles the
pods hold now (after a rolling update, failovers, or a resize that changes the count). Pure.

- Too many slot owners among the staying pods (a scale in, or a lower master count): the ones
  kept are spread over the failure domains, then by ordinal; the others are surplus: their
  slots move to the kept ones, and once empty each becomes a replica.
- Too few: fresh empty pods become masters, picked from the domain with the fewest masters;
  with none left, a staying replica of a leaving master takes over from it with a plain
  CLUSTER FAILOVER (no key moves, no acknowledged write lost), so the leaving pod ends a
  replica and drains like one. Still short, a spare replica (its master keeps another synced
  replica) is emptied with CLUSTER RESET, as a leaving replica is: only a third copy goes.
  That shape is what a scale in stopped half way leaves (its emptied masters turned replicas
  of the masters that took their slots) when a later Job asks for the old size back."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clusterkit.core.model import Failover, PodState
from clusterkit.core.reasons import Kind, Reason, about_pods


@dataclass(frozen=True)
class MasterChoice:
    masters: tuple[PodState, ...]
    """The staying pods that are or will be the masters, by ordinal."""
    surplus: tuple[PodState, ...] = ()
    """Staying masters that own slots but will not stay masters: they give every slot away."""
    takeovers: tuple[Failover, ...] = ()
    """Staying replicas of leaving masters to take over (before anything else moves)."""
    spares: tuple[PodState, ...] = ()
    """Staying replicas to empty (forget, CLUSTER RESET) so they can be fresh masters; each
    follows a master that keeps another synced replica."""
    short: int = 0
    """Masters missing that no pod can become: every pod left is a replica holding the only
    copy of its master's keys besides the master's own."""


def spread_pick(
    candidates: Sequence[PodState],
    count: int,
    domains: Mapping[int, str],
    taken: Sequence[PodState] = (),
) -> list[PodState]:
    """`count` of `candidates`, one by one from the domain with the fewest of `taken` and those
    picked so far, ties by the candidates' order."""
    per_domain = Counter(domains.get(p.ordinal) for p in taken)
    left = list(candidates)
    picked: list[PodState] = []
    while left and len(picked) < count:
        pick = min(left, key=lambda p: per_domain[domains.get(p.ordinal)])
        left.remove(pick)
        picked.append(pick)
        per_domain[domains.get(pick.ordinal)] += 1
    return picked


def choose_masters(
    wanted: int,
    pods: Sequence[PodState],
    domains: Mapping[int, str] | None = None,
    leaving: Sequence[PodState] = (),
) -> MasterChoice:
    """`pods` are the staying pods the plan may change; `leaving` the pods from CLUSTER_SIZE on."""
    where = domains or {}
    owners = sorted((p for p in pods if p.me.is_master and p.me.slots), key=lambda p: p.ordinal)
    if len(owners) > wanted:
        kept = spread_pick(owners, wanted, where)
        surplus = tuple(p for p in owners if p not in kept)
        return MasterChoice(tuple(sorted(kept, key=lambda p: p.ordinal)), surplus)
    # A replica never becomes a fresh master: Redis gives slots only to masters, and turning
    # it into one takes a failover (successors, below) or CLUSTER RESET, which drops its keys.
    candidates = [p for p in pods if p not in owners and not p.me.is_replica and not p.keys]
    candidates.sort(key=lambda p: (p.ordinal >= wanted, p.ordinal))
    chosen = [*owners, *spread_pick(candidates, wanted - len(owners), where, owners)]
    needed = wanted - len(chosen)
    heirs = successors(pods, leaving)
    takeovers = [h for h in heirs if h.master_link_up is True]
    picked = spread_pick(takeovers, needed, where, chosen)
    giving = {p.node_id: p.ordinal for p in leaving}
    still = max(0, needed - len(heirs))
    spares = spread_pick(spare_replicas(pods, heirs), still, where, [*chosen, *picked])
    return MasterChoice(
        tuple(sorted(chosen, key=lambda p: p.ordinal)),
        (),
        tuple(
            Failover(p.ordinal, giving[p.me.master_id or ""], p.me.master_id or "") for p in picked
        ),
        tuple(sorted(spares, key=lambda p: p.ordinal)),
        still - len(spares),
    )


def spare_replicas(pods: Sequence[PodState], heirs: Sequence[PodState]) -> list[PodState]:
    """Synced replicas beyond the first of each master (the lowest ordinal stays its copy),
    highest ordinals first: emptying one leaves the master with a synced replica."""
    followers: dict[str, list[PodState]] = {}
    for pod in sorted(pods, key=lambda p: p.ordinal):
        if pod.me.is_replica and pod.master_link_up is True and pod not in heirs:
            followers.setdefault(pod.me.master_id or "", []).append(pod)
    spare = [p for group in followers.values() for p in group[1:]]
    return sorted(spare, key=lambda p: -p.ordinal)


def successors(pods: Sequence[PodState], leaving: Sequence[PodState]) -> list[PodState]:
    """A staying replica (the lowest ordinal) for each leaving master that owns slots."""
    giving = {p.node_id for p in leaving if p.me.is_master and p.me.slots}
    heirs: dict[str, PodState] = {}
    for pod in sorted(pods, key=lambda p: p.ordinal):
        master_id = pod.me.master_id or ""
        if pod.me.is_replica and master_id in giving:
            heirs.setdefault(master_id, pod)
    return list(heirs.values())


def unreachable_shape(size: int, wanted: int, choice: MasterChoice) -> Reason:
    """Why a shape with more masters than pods that can be one is refused."""
    return Reason(
        Kind.SHAPE_UNREACHABLE,
        f"CLUSTER_SIZE={size} asks for {wanted} masters, but only"
        f" {len(choice.masters) + len(choice.spares)} pods can be masters: every other staying"
        " pod is the one synced replica of its master, and it becomes an empty master only"
        " through CLUSTER RESET, which would leave that master without a copy. Scale out by"
        f" {choice.short} empty pod(s) first, or ask for fewer masters (a larger"
        " REPLICAS_PER_MASTER)",
    )


def spare_reason(choice: MasterChoice) -> Reason:
    names = ", ".join(p.pod for p in choice.spares)
    return about_pods(
        Kind.SPARE,
        f"spare replicas {names} to be emptied (CLUSTER RESET), then become masters",
        choice.spares,
    )


def surplus_reason(choice: MasterChoice) -> tuple[Reason, ...]:
    """What the plan waits for while surplus masters still own slots."""
    if not choice.surplus:
        return ()
    names = ", ".join(p.pod for p in choice.surplus)
    return (
        about_pods(
            Kind.SURPLUS,
            f"surplus masters {names} to give their slots away, then follow a master",
            choice.surplus,
        ),
    )

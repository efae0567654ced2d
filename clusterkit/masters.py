"""Which pods are the masters: the shape asks for `Shape.masters` of them, whatever roles the
pods hold now (after a rolling update, failovers, or a resize that changes the count). Pure.

- Too many slot owners among the staying pods (a scale in, or a lower master count): the ones
  kept are spread over the failure domains, then by ordinal; the others are surplus: their
  slots move to the kept ones, and once empty each becomes a replica.
- Too few: fresh empty pods become masters, picked from the domain with the fewest masters;
  with none left, a staying replica of a leaving master takes over from it with a plain
  CLUSTER FAILOVER (no key moves, no acknowledged write lost), so the leaving pod ends a
  replica and drains like one. A replica can never become an empty master without
  CLUSTER RESET, which would drop its keys."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clusterkit.model import Failover, PodState


@dataclass(frozen=True)
class MasterChoice:
    masters: tuple[PodState, ...]
    """The staying pods that are or will be the masters, by ordinal."""
    surplus: tuple[PodState, ...] = ()
    """Staying masters that own slots but will not stay masters: they give every slot away."""
    takeovers: tuple[Failover, ...] = ()
    """Staying replicas of leaving masters to take over (before anything else moves)."""
    short: int = 0
    """Masters missing that no pod can become: every pod left is a replica holding copies
    of a master's keys, and becomes an empty master only through CLUSTER RESET."""


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
    return MasterChoice(
        tuple(sorted(chosen, key=lambda p: p.ordinal)),
        (),
        tuple(
            Failover(p.ordinal, giving[p.me.master_id or ""], p.me.master_id or "") for p in picked
        ),
        max(0, needed - len(heirs)),
    )


def successors(pods: Sequence[PodState], leaving: Sequence[PodState]) -> list[PodState]:
    """A staying replica (the lowest ordinal) for each leaving master that owns slots."""
    giving = {p.node_id for p in leaving if p.me.is_master and p.me.slots}
    heirs: dict[str, PodState] = {}
    for pod in sorted(pods, key=lambda p: p.ordinal):
        master_id = pod.me.master_id or ""
        if pod.me.is_replica and master_id in giving:
            heirs.setdefault(master_id, pod)
    return list(heirs.values())


def unreachable_shape(size: int, wanted: int, choice: MasterChoice) -> str:
    """Why a shape with more masters than pods that can be one is refused."""
    return (
        f"CLUSTER_SIZE={size} asks for {wanted} masters, but only {len(choice.masters)} pods"
        " can be masters: every other staying pod is a replica holding copies of its master's"
        " keys, and it becomes an empty master only through CLUSTER RESET, which the Job never"
        f" sends to a node holding keys. Scale out by {choice.short} empty pod(s) first, or ask"
        " for fewer masters (a larger REPLICAS_PER_MASTER)"
    )


def surplus_reason(choice: MasterChoice) -> tuple[str, ...]:
    """What the plan waits for while surplus masters still own slots."""
    if not choice.surplus:
        return ()
    names = ", ".join(p.pod for p in choice.surplus)
    return (f"surplus masters {names} to give their slots away, then follow a master",)

"""Failure domains: where each pod runs (zone, else Kubernetes node), and whether the layout of
masters and replicas survives losing any one domain. Pure: no I/O.

Redis fails a master over only with the votes of a majority of the slot-owning masters, so a
domain holding half or more of them takes the whole cluster down with it (the Redis Cluster
specification, "Replica election and promotion"); a domain holding every copy of a shard takes
that shard."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from clusterkit.core.model import PodState


@dataclass(frozen=True)
class Placement:
    """Where one pod runs, as its sidecar reports it on /node."""

    node: str
    """The Kubernetes node (spec.nodeName)."""
    zone: str = ""
    """The zone (label topology.kubernetes.io/zone); empty: unknown."""


def failure_domains(placements: Mapping[int, Placement]) -> dict[int, str]:
    """Pod ordinal -> its failure domain: the zone when every pod has one and two or more zones
    are known, else the node (a pod with neither is left out)."""
    zones = {p.zone for p in placements.values()}
    if "" not in zones and len(zones) >= 2:
        return {o: p.zone for o, p in placements.items()}
    return {o: p.node for o, p in placements.items() if p.node}


def quorum(masters: int) -> int:
    """Votes Redis needs to fail a master over: a majority of the slot-owning masters."""
    return masters // 2 + 1


def most_per_domain(masters: int) -> int:
    """The most masters one domain may hold so that losing it leaves a majority."""
    return masters - quorum(masters)


def achievable(masters: int, pods_per_domain: Mapping[str, int]) -> bool:
    """Whether some placement of `masters` masters on these domains (each holding at most as
    many masters as it has pods) survives the loss of any one domain."""
    limit = most_per_domain(masters)
    return limit > 0 and sum(min(n, limit) for n in pods_per_domain.values()) >= masters


def workable_masters(domains: int, around: int) -> list[int]:
    """Numbers of masters (3 or more) that `domains` equal domains can hold survivably, near
    `around`: the advice a warning gives."""
    found = [
        m
        for m in range(3, max(around, 3) + 4)
        if domains > 0 and -(-m // domains) <= most_per_domain(m)
    ]
    return found[:3]


@dataclass(frozen=True)
class Shard:
    """A slot-owning master and the replicas that follow it (pod ordinals)."""

    master: int
    replicas: tuple[int, ...]


def shards_of(pods: Sequence[PodState]) -> list[Shard]:
    """The shards as the pods report their own roles (each pod's own line: the truth about it)."""
    master_of_id = {p.node_id: p.ordinal for p in pods if p.me.is_master and p.me.slots}
    followers: dict[int, list[int]] = {o: [] for o in master_of_id.values()}
    for pod in pods:
        master = master_of_id.get(pod.me.master_id or "") if pod.me.is_replica else None
        if master is not None:
            followers[master].append(pod.ordinal)
    return [Shard(m, tuple(sorted(r))) for m, r in sorted(followers.items())]


@dataclass(frozen=True)
class Verdict:
    """Whether the layout survives the loss of any one failure domain, and what to change."""

    masters: int
    domains: dict[str, int] = field(default_factory=dict)
    """Domain -> pods in it."""
    masters_in: dict[str, int] = field(default_factory=dict)
    """Domain -> slot-owning masters in it."""
    fatal: dict[str, str] = field(default_factory=dict)
    """Domain -> why losing it takes the cluster down (`quorum`) or a shard (`shard`)."""
    possible: bool = True
    """Some placement of this many masters on these domains survives any one loss."""

    @property
    def survives(self) -> bool:
        return not self.fatal

    def sentence(self, kind: str = "domain") -> str:
        """One line for people: yes, or which loss would not be survived, why and what to do."""
        if not self.domains:
            return "failure domains unknown (no sidecar reported its node)"
        if self.survives:
            return f"survives the loss of any one {kind}: yes"
        parts = []
        for domain, reason in sorted(self.fatal.items()):
            if reason == "quorum":
                parts.append(
                    f"losing {domain} takes the cluster down ({self.masters_in.get(domain, 0)}"
                    f" of {self.masters} masters there: Redis needs {quorum(self.masters)} to"
                    " fail them over)"
                )
            else:
                parts.append(f"losing {domain} loses a shard (all its copies are there)")
        return f"survives the loss of any one {kind}: no; " + "; ".join(parts) + self.advice(kind)

    def advice(self, kind: str) -> str:
        if self.possible:
            return " (the sidecars repair this once the cluster is calm)"
        count = len(self.domains)
        workable = workable_masters(count, self.masters)
        if not workable:
            return (
                f"; no number of masters survives losing one of {count} {kind}s: run the pods"
                f" in 3 or more {kind}s"
            )
        choices = ", ".join(map(str, workable[:-1])) + f" or {workable[-1]}"
        return (
            f"; {self.masters} masters on {count} {kind}s cannot survive that: use {choices}"
            f" masters for {count} {kind}s, or more {kind}s"
        )


def judge(shards: Sequence[Shard], domains: Mapping[int, str]) -> Verdict:
    """The verdict on a layout; pods without a known domain are left out."""
    per_domain = Counter(domains.values())
    masters_in = Counter(domains[s.master] for s in shards if s.master in domains)
    total = len(shards)
    fatal: dict[str, str] = {}
    if total:
        for domain, count in masters_in.items():
            if total - count < quorum(total):
                fatal[domain] = "quorum"
    for shard in shards:
        copies = {domains.get(o) for o in (shard.master, *shard.replicas)}
        if shard.replicas and len(copies) == 1 and None not in copies:
            fatal.setdefault(str(copies.pop()), "shard")
    return Verdict(
        masters=total,
        domains=dict(per_domain),
        masters_in=dict(masters_in),
        fatal=fatal,
        possible=achievable(total, per_domain) if total else True,
    )


def domain_kind(placements: Mapping[int, Placement]) -> str:
    """`zone` or `node`: what failure_domains chose, for messages."""
    zones = {p.zone for p in placements.values()}
    return "zone" if "" not in zones and len(zones) >= 2 else "node"

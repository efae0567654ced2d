"""Drift repair: the one role swap or replica move that brings the layout closest to the
failure-domain rules. Pure: the Job and every sidecar compute the same step from the same
observation, and one pod, the repair's owner, carries it out.

The rules, in priority order (clusterkit.core.domains):
1. no shard keeps all of its copies in one domain (fixed by swapping two replicas' masters);
2. no domain holds half or more of the slot-owning masters, where the domains allow it
   (fixed by a plain CLUSTER FAILOVER to a replica in another domain: no acknowledged write
   is lost);
3. otherwise the masters spread as evenly as possible.
A change is chosen only if it makes the layout strictly better by these rules, so repairs
always end and never undo each other."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from clusterkit.core.domains import Shard, achievable, most_per_domain, shards_of
from clusterkit.core.model import Action, Failover, PodState, Replicate

Score = tuple[int, int, int]


@dataclass(frozen=True)
class Change:
    """A layout change on shards: `replica` takes over from `other` (kind failover), or
    replicas `replica` and `other` swap masters (kind swap)."""

    kind: str
    replica: int
    other: int


@dataclass(frozen=True)
class Repair:
    """The next layout repair: its steps (one shard's failover, or one replica swap), the pod
    that carries them all out, and why."""

    steps: tuple[Action, ...] = ()
    reason: str = ""
    owner: int | None = None
    """The ordinal of the pod whose sidecar runs the steps (the replica that takes over, or
    the lower-ordinal replica of a swap: one sender, so a swap is never left half done)."""
    kind: str = ""
    """failover or swap (the sidecar's repair counter label)."""


def unsettled(pods: Sequence[PodState]) -> str | None:
    """Why the cluster is not calm enough for a repair (None: calm): every pod answers with
    cluster_state ok, sees every node connected and healthy, no slot is open, and every
    replica's link is up."""
    for pod in sorted(pods, key=lambda p: p.ordinal):
        if not pod.cluster_ok:
            return f"{pod.pod} says cluster_state {pod.info.get('cluster_state', '?')}"
        if pod.me.migrations:
            return f"{pod.pod} has open slots"
        if pod.me.is_replica and pod.master_link_up is not True:
            return f"{pod.pod}'s replication link is down"
        for line in pod.nodes:
            if line.is_handshake or (not line.is_myself and line.is_down):
                return f"{pod.pod} sees node {line.node_id[:8]} unhealthy"
    known = {len(p.nodes) for p in pods}
    if len(known) != 1 or known.pop() != len(pods):
        return "the pods do not all know each other"
    return None


def score(shards: Sequence[Shard], domains: Mapping[int, str]) -> Score:
    """Lower is better: shards with every copy in one domain, masters over the per-domain
    limit (when some placement can meet it), then unevenness (sum of squares)."""
    together = sum(
        1
        for s in shards
        if s.replicas and len({domains.get(o, f"?{o}") for o in (s.master, *s.replicas)}) == 1
    )
    counts = Counter(domains.get(s.master, f"?{s.master}") for s in shards)
    for domain in set(domains.values()):
        counts.setdefault(domain, 0)
    limit = most_per_domain(len(shards))
    over = 0
    if achievable(len(shards), Counter(domains.values())):
        over = sum(max(0, n - limit) for n in counts.values())
    return together, over, sum(n * n for n in counts.values())


def best_change(
    shards: Sequence[Shard], domains: Mapping[int, str], may_lead: Collection[int]
) -> Change | None:
    """The change that improves the layout most (ties: failovers first, then by ordinals), or
    None when none improves it; only replicas in `may_lead` may take over."""
    if len(shards) < 2 or any(o not in domains for s in shards for o in (s.master, *s.replicas)):
        return None
    now = score(shards, domains)
    best: tuple[Score, tuple[int, ...], Change] | None = None

    def consider(after: list[Shard], key: tuple[int, ...], change: Change) -> None:
        nonlocal best
        new = score(after, domains)
        if new < now and (best is None or (new, key) < best[:2]):
            best = (new, key, change)

    for index, shard in enumerate(shards):
        for replica in shard.replicas:
            if domains[replica] == domains[shard.master] or replica not in may_lead:
                continue
            others = tuple(sorted({*shard.replicas, shard.master} - {replica}))
            after = [*shards[:index], Shard(replica, others), *shards[index + 1 :]]
            consider(after, (0, shard.master, replica), Change("failover", replica, shard.master))
    if now[0]:
        for i, a in enumerate(shards):
            for b in shards[i + 1 :]:
                for ra in a.replicas:
                    for rb in b.replicas:
                        after = [swapped(s, a, b, ra, rb) for s in shards]
                        low, high = sorted((ra, rb))
                        consider(after, (1, low, high), Change("swap", low, high))
    return best[2] if best is not None else None


def swapped(shard: Shard, a: Shard, b: Shard, ra: int, rb: int) -> Shard:
    """`shard` after replica `ra` (of `a`) and `rb` (of `b`) swap masters."""
    if shard is a:
        return Shard(a.master, tuple(sorted({*a.replicas} - {ra} | {rb})))
    if shard is b:
        return Shard(b.master, tuple(sorted({*b.replicas} - {rb} | {ra})))
    return shard


def plan_repair(pods: Sequence[PodState], domains: Mapping[int, str]) -> Repair:
    """The best single repair, or none when no step improves the layout. Call it only when the
    cluster is calm (`unsettled` gives None) and every pod's domain is known."""
    by_ordinal = {p.ordinal: p for p in pods}
    if any(p.ordinal not in domains for p in pods):
        return Repair()
    shards = shards_of(pods)
    may_lead = {p.ordinal for p in pods if "nofailover" not in p.me.flags}
    change = best_change(shards, domains, may_lead)
    if change is None:
        return Repair()
    master_of = {r: s.master for s in shards for r in s.replicas}
    if change.kind == "failover":
        master = by_ordinal[change.other]
        return Repair(
            (Failover(change.replica, master.ordinal, master.node_id),),
            f"{by_ordinal[change.replica].pod} takes over from {master.pod}: masters"
            f" {describe_counts(shards, domains)} by domain",
            owner=change.replica,
            kind="failover",
        )
    ra, rb = change.replica, change.other
    ma, mb = by_ordinal[master_of[ra]], by_ordinal[master_of[rb]]
    return Repair(
        (Replicate(ra, mb.ordinal, mb.node_id), Replicate(rb, ma.ordinal, ma.node_id)),
        f"{by_ordinal[ra].pod} and {by_ordinal[rb].pod} swap masters: a shard had every copy"
        " in one domain",
        owner=ra,
        kind="swap",
    )


def describe_counts(shards: Sequence[Shard], domains: Mapping[int, str]) -> str:
    counts = Counter(domains.get(s.master, "?") for s in shards)
    return ", ".join(f"{d}={n}" for d, n in sorted(counts.items()))

"""Drift repair: the one role swap or replica move that brings the layout closest to the
failure-domain rules. Pure: the Job and every sidecar compute the same step from the same
observation, and each carries out only its own pod's part.

The rules, in priority order (clusterkit.domains):
1. no shard keeps all of its copies in one domain (fixed by swapping two replicas' masters);
2. no domain holds half or more of the slot-owning masters, where the domains allow it
   (fixed by a plain CLUSTER FAILOVER to a replica in another domain: no acknowledged write
   is lost);
3. otherwise the masters spread as evenly as possible.
A step is chosen only if it makes the layout strictly better by these rules, so repairs
always end and never undo each other."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clusterkit.domains import Shard, achievable, most_per_domain, shards_of
from clusterkit.ghosts import is_down
from clusterkit.model import Action, Failover, PodState, Replicate

Score = tuple[int, int, int]


@dataclass(frozen=True)
class Repair:
    """The next layout repair: its steps (one shard's failover, or one replica swap) and why."""

    steps: tuple[Action, ...] = ()
    reason: str = ""


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
            if line.is_handshake or (not line.is_myself and is_down(line)):
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


def plan_repair(pods: Sequence[PodState], domains: Mapping[int, str]) -> Repair:
    """The best single repair, or none when no step improves the layout. Call it only when the
    cluster is calm (`unsettled` gives None) and every pod's domain is known."""
    by_ordinal = {p.ordinal: p for p in pods}
    shards = shards_of(pods)
    if len(shards) < 2 or any(p.ordinal not in domains for p in pods):
        return Repair()
    now = score(shards, domains)
    best: tuple[Score, tuple[int, ...], Repair] | None = None

    def consider(after: list[Shard], key: tuple[int, ...], repair: Repair) -> None:
        nonlocal best
        new = score(after, domains)
        if new < now and (best is None or (new, key) < best[:2]):
            best = (new, key, repair)

    for index, shard in enumerate(shards):
        for replica in shard.replicas:
            pod = by_ordinal[replica]
            if domains[replica] == domains[shard.master] or "nofailover" in pod.me.flags:
                continue
            others = tuple(sorted({*shard.replicas, shard.master} - {replica}))
            after = [*shards[:index], Shard(replica, others), *shards[index + 1 :]]
            consider(
                after,
                (0, shard.master, replica),
                Repair(
                    (Failover(replica, shard.master, by_ordinal[shard.master].node_id),),
                    f"{pod.pod} takes over from {by_ordinal[shard.master].pod}: masters"
                    f" {describe_counts(shards, domains)} by domain",
                ),
            )
    if now[0]:
        for i, a in enumerate(shards):
            for j, b in enumerate(shards):
                if i >= j:
                    continue
                for ra in a.replicas:
                    for rb in b.replicas:
                        after = list(shards)
                        after[i] = Shard(a.master, tuple(sorted({*a.replicas} - {ra} | {rb})))
                        after[j] = Shard(b.master, tuple(sorted({*b.replicas} - {rb} | {ra})))
                        pa, pb = by_ordinal[a.master], by_ordinal[b.master]
                        consider(
                            after,
                            (1, ra, rb),
                            Repair(
                                (
                                    Replicate(ra, b.master, pb.node_id),
                                    Replicate(rb, a.master, pa.node_id),
                                ),
                                f"{by_ordinal[ra].pod} and {by_ordinal[rb].pod} swap masters:"
                                " a shard had every copy in one domain",
                            ),
                        )
    return best[2] if best is not None else Repair()


def describe_counts(shards: Sequence[Shard], domains: Mapping[int, str]) -> str:
    counts = Counter(domains.get(s.master, "?") for s in shards)
    return ", ".join(f"{d}={n}" for d, n in sorted(counts.items()))

"""A pod that lost its volume comes back as a new Redis node; its sidecar brings it back.

The sidecar finds the formed cluster through its peers' pod names, observes every pod as the
Job does, and runs the Job's own planner (clusterkit.core.plan) with the shape the cluster has now.
It carries out only the steps about its own pod: forget its old identity on every node, meet
the cluster, replicate the master the planner assigns. It acts only when the cluster lists an
old identity of this pod (or it already started doing so), so a pod added by a resize, which
has none, is left to the Job. A lost shard is reported, never decided: that is the Job's,
with REASSIGN_LOST_SLOTS."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import redis
import structlog

from clusterkit.core.ghosts import Ghost, LostSlots, accept_loss_command, find_ghosts
from clusterkit.core.identity import members_and_old_ids
from clusterkit.core.model import Forget, PodState
from clusterkit.core.naming import PodNaming
from clusterkit.core.nodes import NodeLine, NodeLineError, parse_cluster_nodes
from clusterkit.core.plan import Plan, make_plan, observed_shape
from clusterkit.core.resize import claimed_slots
from clusterkit.core.slots import format_ranges
from clusterkit.core.steps import steps_for
from clusterkit.io.access import Access
from clusterkit.io.apply import apply_actions
from clusterkit.io.observe import observe_cluster
from clusterkit.io.placement import read_hosts
from clusterkit.io.redisio import PodConnector

log = structlog.get_logger()

RESOLVE_ATTEMPTS = 3
"""Rounds of resolving the pods whose names did not resolve (each round, those left)."""
RESOLVE_THREADS = 16

PROBE_AHEAD = 8
"""Ordinals probed past this pod's own when it knows no peer yet (0 .. own + this)."""
PROBE_PAUSE_SECONDS = 5.0
WATCH_SECONDS = 65.0
"""After a rejoin, how long the old identities are still looked for: a FORGET bans a node id
from gossip for 60 s only, and a node that joined while the forgets went out (another pod
replaced at the same time) may have learnt an old id after it was told to forget it; once the
ban ends, its gossip would spread that id to every node again."""
"""Between probes that found no formed cluster (a new cluster forms: the Job's work)."""
PEER_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class RejoinStatus:
    """What the rejoin step found this turn."""

    reason: str | None = None
    """Why this pod is not serving yet, for /readyz (None: nothing to say)."""
    lost: tuple[Ghost, ...] = ()
    """Lost shards seen in the cluster."""
    named: Mapping[str, str] = field(default_factory=dict)
    """Node id -> pod, as this turn's views named them: for the sidecar to keep, so an old id
    stays named once the views that gave its hostname forgot it and only a node that learnt
    it by gossip (without the hostname) still lists it."""


class Rejoin:
    def __init__(
        self,
        naming: PodNaming,
        *,
        ordinal: int,
        port: int,
        sidecar_port: int,
        access: Access,
        resolve: Callable[[str], str | None],
        count_forgets: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.count_forgets = count_forgets
        """Told how many FORGETs each turn sends (the sidecar's metric)."""
        self.naming = naming
        self.ordinal = ordinal
        self.port = port
        self.sidecar_port = sidecar_port
        self.access = access
        self.resolve = resolve
        self.connector = PodConnector(naming, port, access, PEER_TIMEOUT_SECONDS)
        self.rejoining = False
        """This pod's old identity was seen: keep going until it serves and no node lists it."""
        self.next_probe = 0.0
        self.watch_until = 0.0
        """Until then (after a rejoin), every PROBE_PAUSE_SECONDS: forget old ids seen again."""
        self.old_nodes: set[str] = set()
        """Old identities of this pod seen so far (for the final event)."""
        self.reported: set[str] = set()

    def wanted(self, alone_and_empty: bool) -> bool:
        """Whether to look at the cluster this turn."""
        if self.rejoining:
            return True
        watching = time.monotonic() < self.watch_until
        if not (alone_and_empty or watching) or time.monotonic() < self.next_probe:
            return False
        self.next_probe = time.monotonic() + PROBE_PAUSE_SECONDS
        return True

    def turn(self, my_id: str, serving: bool, pod_names: dict[str, str]) -> RejoinStatus:
        """One look at the cluster and, when this pod was replaced, the next steps."""
        addresses = self.find_cluster(my_id, pod_names)
        if addresses is None:
            return RejoinStatus("looking for the cluster" if self.rejoining else None)
        unresolved = [self.naming.pod_name(o) for o, ip in addresses.items() if ip is None]
        if unresolved:
            return RejoinStatus(f"pods {', '.join(unresolved)} do not resolve yet")
        found = {o: ip for o, ip in addresses.items() if ip is not None}
        clients = self.connector.connect_all(found)
        try:
            view = observe_cluster(found, self.port, clients, self.naming, pod_map=pod_names)
            if view is None:
                return RejoinStatus("cannot observe every pod of the cluster yet")
            status = self.decide(list(view.pods), view.pod_map, found, clients, serving)
            return replace(status, named=dict(view.pod_map))
        finally:
            for client in clients.values():
                client.close()

    def decide(
        self,
        pods: list[PodState],
        pod_map: Mapping[str, str],
        found: dict[int, str],
        clients: dict[int, redis.Redis],
        serving: bool,
    ) -> RejoinStatus:
        ghosts, _ = find_ghosts(pods, pod_map)
        mine = [g for g in ghosts if g.pod == self.ordinal]
        if not mine and not self.rejoining:
            return RejoinStatus()
        if not all(claimed_slots(pods)):
            # Slots without any owner: the Job is forming or reassigning; its shape rules.
            return RejoinStatus("some slots have no owner yet: waiting for the bootstrap Job")
        hosts = read_hosts(found, self.sidecar_port, self.naming)
        plan = make_plan(
            observed_shape(pods),
            pods,
            hosts,
            pod_names=dict(pod_map),
            lost_slots=LostSlots.KEEP,
        )
        return self.carry_out(plan, mine, pods, clients, serving)

    def carry_out(
        self,
        plan: Plan,
        mine: list[Ghost],
        pods: list[PodState],
        clients: dict[int, redis.Redis],
        serving: bool,
    ) -> RejoinStatus:
        if plan.refusal:
            refusal = plan.refusal.sentence
            self.report("rejoin_refused", refusal, reason=refusal, kind=plan.refusal.kind)
            return RejoinStatus(f"cannot rejoin: {plan.refusal}", plan.lost)
        lost_mine = [g for g in plan.lost if g.pod == self.ordinal]
        if lost_mine:
            reason = lost_reason(lost_mine[0], self.naming)
            self.report(
                "lost_shard",
                reason,
                lost_node=lost_mine[0].node_id,
                slots=format_ranges(lost_mine[0].slots),
                reason=reason,
                command=accept_loss_command(self.naming),
            )
            return RejoinStatus(reason, plan.lost)
        old = {g.node_id for g in mine}
        steps = steps_for(plan, self.ordinal, old_ids=old, serving=serving)
        if not steps:
            if serving and not mine:
                if self.rejoining:
                    log.info("rejoined", old_nodes=sorted(self.old_nodes))
                    self.watch_until = time.monotonic() + WATCH_SECONDS
                self.rejoining = False
            waiting = [w.sentence for w in plan.waiting if w.concerns(old)]
            return RejoinStatus("; ".join(waiting) or None, plan.lost)
        if mine and not self.rejoining:
            log.info(
                "replaced_pod_detected",
                old_nodes=sorted(old),
                listed_by=sorted({self.naming.pod_name(o) for g in mine for o in g.listed_by}),
            )
        self.rejoining = True
        self.old_nodes |= old
        apply_actions(steps, clients, self.naming)
        self.count_forgets(sum(isinstance(a, Forget) for a in steps))
        return RejoinStatus("rejoining the cluster as a new node", plan.lost)

    def report(self, event: str, key: str, **fields: object) -> None:
        """Log each distinct finding once (the loop turns every second)."""
        if key not in self.reported:
            self.reported.add(key)
            log.error(event, **fields)

    def find_cluster(
        self, my_id: str, pod_names: Mapping[str, str]
    ) -> dict[int, str | None] | None:
        """Pod ordinal -> address (None: does not resolve) for every pod the formed cluster
        names, this one included; None when no probed peer is part of a formed cluster, or
        (unless rejoining already) when no view lists another identity of this pod: a new
        cluster forming must not cost every pod a look at every other."""
        probed = [o for o in range(self.ordinal + PROBE_AHEAD + 1) if o != self.ordinal]
        with ThreadPoolExecutor(max_workers=len(probed)) as pool:
            views = [v for v in pool.map(self.view_of, probed) if v is not None and len(v) > 1]
        if not views:
            return None
        members, old = members_and_old_ids(views, self.naming, self.ordinal, my_id, pod_names)
        watching = self.rejoining or time.monotonic() < self.watch_until
        if not watching and not old:
            return None
        found: dict[int, str | None] = {}
        pending = sorted(members | {self.ordinal})
        # A name that times out is asked again: on a cluster of 90 pods, some of the queries of
        # one burst time out on a busy nameserver, and one in every turn kept the rejoin waiting
        # for good (measured on devcluster). A missing record answers at once either way.
        for _ in range(RESOLVE_ATTEMPTS):
            with ThreadPoolExecutor(max_workers=min(RESOLVE_THREADS, len(pending))) as pool:
                found.update(zip(pending, pool.map(self.resolve_pod, pending), strict=True))
            pending = [o for o in pending if found[o] is None]
            if not pending:
                break
        return dict(sorted(found.items()))

    def resolve_pod(self, ordinal: int) -> str | None:
        return self.resolve(self.naming.pod_fqdn(ordinal))

    def view_of(self, ordinal: int) -> list[NodeLine] | None:
        """Pod `ordinal`'s CLUSTER NODES, or None when it does not resolve or answer."""
        ip = self.resolve_pod(ordinal)
        if ip is None:
            return None
        client = self.connector.connect(ordinal, ip)
        try:
            return parse_cluster_nodes(str(client.execute_command("CLUSTER", "NODES")))
        except (redis.RedisError, OSError, NodeLineError):
            return None
        finally:
            client.close()


def lost_reason(ghost: Ghost, naming: PodNaming) -> str:
    return (
        f"lost shard: slots {format_ranges(ghost.slots)} belonged to node {ghost.node_id}"
        f" (this pod, {naming.pod_name(ghost.pod)}, before its volume was lost), which had no"
        " surviving replica. To accept the loss run the bootstrap Job with"
        " REASSIGN_LOST_SLOTS=true ("
        + accept_loss_command(naming)
        + "); the data of those slots can"
        " then only come back from a backup"
    )

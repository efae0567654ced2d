"""The sidecar's part in the failure-domain layout, each turn from this node's own view:
report the layout and a lost quorum, point a replica at its master's new address, and carry
out the planner's drift repair when this pod owns it and the cluster has been quiet.

Deciding stays with clusterkit: the view's verdict (clusterkit.core.viewlayout), the repair
(clusterkit.core.drift, through clusterkit.core.plan). Every pod is read only when this view says a
repair is due and that this pod would carry it out, so a calm cluster costs no extra reads."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence

import redis
import structlog

from clusterkit.core.domains import Placement, Verdict, domain_kind, failure_domains, judge
from clusterkit.core.drift import best_change
from clusterkit.core.ghosts import LostSlots
from clusterkit.core.identity import pod_label
from clusterkit.core.naming import PodNaming
from clusterkit.core.nodes import NodeLine
from clusterkit.core.plan import make_plan, observed_shape
from clusterkit.core.viewlayout import (
    Signature,
    failing_masters,
    ordinals_in_view,
    quorum_lost,
    relink_reason,
    shards_in_view,
    signature,
    takeover_candidates,
)
from clusterkit.io.access import Access
from clusterkit.io.apply import apply_actions
from clusterkit.io.observe import observe_cluster
from clusterkit.io.placement import read_placements
from clusterkit.io.redisio import PodConnector
from sidecar.metrics import Metrics
from sidecar.settings import SidecarSettings

log = structlog.get_logger()

RELINK_AFTER_SECONDS = 5.0
"""How long a replica's link must stay down towards a stale address before it is relinked
(Redis itself repoints it on the first PING from the moved master, when it does)."""
HOUR_SECONDS = 3600.0
PEER_TIMEOUT_SECONDS = 1.0


class LayoutWatch:
    def __init__(
        self,
        settings: SidecarSettings,
        access: Access,
        metrics: Metrics,
        ordinal: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.naming: PodNaming = settings.cluster.naming
        self.access = access
        self.metrics = metrics
        self.ordinal = ordinal
        self.clock = clock
        self.stopping = False
        """Set by the preStop hook: a pod being stopped starts no repair."""
        self.seen: Signature | None = None
        self.changed_at = clock()
        """When the roles, replica links or down flags last changed (or the sidecar started)."""
        self.next_check = 0.0
        self.repairs: deque[float] = deque()
        self.placements: dict[tuple[int, str], Placement] = {}
        """(ordinal, ip) -> where that pod runs (dropped when its node is seen down)."""
        self.domains: dict[str, str] = {}
        """Node id -> failure domain as last checked (the preStop handover ranks by it)."""
        self.failing_since: dict[str, float] = {}
        self.stale_since: float | None = None
        self.last_note = ""

    def turn(
        self,
        own: redis.Redis,
        nodes: Sequence[NodeLine],
        pod_map: Mapping[str, str],
        replication: Mapping[str, object],
    ) -> None:
        now = self.clock()
        current = signature(nodes)
        if current != self.seen:
            self.seen, self.changed_at = current, now
        self.track_failing(nodes, now)
        self.relink(own, nodes, replication, now)
        if now < self.next_check:
            return
        self.next_check = now + self.settings.drift_check_seconds
        ordinals = ordinals_in_view(nodes, self.naming, pod_map)
        shards = shards_in_view(nodes, ordinals)
        addresses = {ordinals[n.node_id]: n.address.ip for n in nodes if n.node_id in ordinals}
        placements = self.where(nodes, ordinals) if shards is not None else {}
        domains = failure_domains(placements)
        if shards is None or not domains or len(domains) != len(nodes):
            return
        self.domains = {n.node_id: domains[ordinals[n.node_id]] for n in nodes}
        verdict = judge(shards, domains)
        self.report(verdict, domain_kind(placements))
        me = next(n for n in nodes if n.is_myself)
        quiet_for = now - self.changed_at
        if self.stopping or not me.is_replica or quiet_for < self.settings.drift_quiet_seconds:
            return
        may_lead = {
            ordinals[n.node_id] for n in nodes if n.is_replica and "nofailover" not in n.flags
        }
        change = best_change(shards, domains, may_lead)
        if change is None or change.replica != self.ordinal:
            return
        while self.repairs and now - self.repairs[0] > HOUR_SECONDS:
            self.repairs.popleft()
        if len(self.repairs) >= self.settings.drift_max_steps_per_hour:
            self.note("drift_repair_budget_spent", per_hour=self.settings.drift_max_steps_per_hour)
            return
        self.repair(addresses, domains, pod_map, now)

    def repair(
        self,
        addresses: dict[int, str],
        domains: dict[int, str],
        pod_map: Mapping[str, str],
        now: float,
    ) -> None:
        """Read every pod, plan with the one planner, and run the repair if it is this pod's."""
        port = self.settings.cluster.redis_port
        clients = PodConnector(self.naming, port, self.access, PEER_TIMEOUT_SECONDS).connect_all(
            addresses
        )
        try:
            view = observe_cluster(
                addresses, port, clients, self.naming, pod_map=pod_map, hosts=domains
            )
            if view is None:
                return
            pods = list(view.pods)
            plan = make_plan(
                observed_shape(pods),
                pods,
                dict(view.hosts),
                pod_names=dict(view.pod_map),
                lost_slots=LostSlots.KEEP,
                naming=self.naming,
            )
            if plan.repair.owner != self.ordinal:
                reasons = [*([plan.refusal] if plan.refusal else []), *plan.waiting]
                why = plan.unsettled or "; ".join(map(str, reasons)) or "planned otherwise"
                self.note("drift_repair_deferred", reason=why)
                return
            log.info("drift_repair", kind=plan.repair.kind, reason=plan.repair.reason)
            apply_actions(plan.repair.steps, clients, self.naming, access=self.access)
            self.metrics.drift_repairs.labels(plan.repair.kind).inc()
            self.repairs.append(now)
            self.changed_at = now
        finally:
            for client in clients.values():
                client.close()

    def where(self, nodes: Sequence[NodeLine], ordinals: Mapping[str, int]) -> dict[int, Placement]:
        """Every pod's placement (cached per address; asked of its sidecar's /node), or {}."""
        for line in nodes:
            if line.is_down and not line.is_myself:
                self.placements.pop((ordinals.get(line.node_id, -1), line.address.ip), None)
        wanted = {(ordinals[n.node_id], n.address.ip) for n in nodes if n.node_id in ordinals}
        missing = {o: ip for o, ip in wanted if (o, ip) not in self.placements}
        if missing:
            found = read_placements(missing, self.settings.http_port, self.naming, quiet=True)
            self.placements.update({(o, missing[o]): p for o, p in found.items()})
        self.placements = {k: v for k, v in self.placements.items() if k in wanted}
        if len(self.placements) != len(wanted):
            return {}
        return {o: p for (o, _), p in self.placements.items()}

    def report(self, verdict: Verdict, kind: str) -> None:
        gauge = self.metrics.layout_fatal_domain
        gauge.clear()
        for domain, reason in verdict.fatal.items():
            gauge.labels(domain, reason).set(1)
        self.metrics.layout_achievable.set(1 if verdict.possible else 0)
        if verdict.survives:
            self.last_note = ""
        else:
            self.note("layout_not_survivable", verdict=verdict.sentence(kind))

    def note(self, event: str, **fields: object) -> None:
        """Log a finding when it changes (the check runs every few seconds)."""
        key = f"{event} {sorted(fields.items())}"
        if key != self.last_note:
            self.last_note = key
            log.warning(event, **fields)

    def relink(
        self,
        own: redis.Redis,
        nodes: Sequence[NodeLine],
        replication: Mapping[str, object],
        now: float,
    ) -> None:
        port = replication.get("master_port")
        reason = relink_reason(
            nodes,
            str(replication.get("master_host") or "") or None,
            int(str(port)) if port is not None else None,
            replication.get("master_link_status") == "up",
        )
        if reason is None:
            self.stale_since = None
            return
        if self.stale_since is None:
            self.stale_since = now
        if now - self.stale_since < RELINK_AFTER_SECONDS:
            return
        me = next(n for n in nodes if n.is_myself)
        own.execute_command("CLUSTER", "REPLICATE", me.master_id)
        self.metrics.drift_repairs.labels("relink").inc()
        self.stale_since = now
        log.warning("relinked", master_node=me.master_id, reason=reason)

    def track_failing(self, nodes: Sequence[NodeLine], now: float) -> None:
        failing = {n.node_id: n for n in failing_masters(nodes)}
        self.failing_since = {i: self.failing_since.get(i, now) for i in failing}
        gauge = self.metrics.unreachable_master_seconds
        gauge.clear()
        for node_id, line in failing.items():
            pod = self.naming.ordinal_of(line.address.hostname) if line.address.hostname else None
            owner = self.naming.pod_name(pod) if pod is not None else ""
            gauge.labels(node_id, owner).set(round(now - self.failing_since[node_id], 1))
        self.metrics.quorum_lost.set(1 if quorum_lost(nodes) else 0)

    def quorum_reason(self, nodes: Sequence[NodeLine]) -> str | None:
        """The /readyz reason while the quorum is lost (None: it is not)."""
        if not quorum_lost(nodes):
            return None
        now = self.clock()
        parts = []
        for line in failing_masters(nodes):
            since = now - self.failing_since.get(line.node_id, now)
            could = [
                pod_label(c) or c.node_id[:8] for c in takeover_candidates(nodes, line.node_id)
            ]
            name = pod_label(line) or line.node_id[:8]
            takers = ", ".join(could) or "none"
            parts.append(f"{name} unreachable for {since:.0f}s (could take over: {takers})")
        return (
            "quorum lost: half or more of the masters are unreachable, Redis cannot fail them"
            " over: " + "; ".join(parts) + ". Bring their node back; or, accepting that writes"
            " those masters took alone are lost if they return, run the Job once with"
            " TAKEOVER_LOST_MASTERS=true (docs/operations.md: Lost quorum)"
        )

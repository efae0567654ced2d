"""The Job from start to end: discover -> observe -> plan -> apply, until converged."""

from __future__ import annotations

import time

import redis
import structlog

from bootstrap.carryout import carry_out
from bootstrap.discover import wait_for_dns, wait_for_ping
from bootstrap.errors import BadSettings, NotConverged
from bootstrap.finish import Outcome, finish
from bootstrap.layout import LayoutRepair
from bootstrap.lease import JobLease, Superseded
from bootstrap.leaving import LeavingPods
from bootstrap.observeround import observe_round
from bootstrap.openwatch import OpenSlotWatch
from bootstrap.podclients import PodClients
from bootstrap.refusal import Refusal
from bootstrap.settings import Settings
from bootstrap.settle import Convergence, wait_converged
from bootstrap.stopping import StoppingPods
from bootstrap.takeover import take_over_lost_masters
from clusterkit.core.converge import planned_slot_map, waiting_for
from clusterkit.core.domains import domain_kind, failure_domains
from clusterkit.core.ghosts import LostSlots
from clusterkit.core.plan import Plan, Shape, make_plan
from clusterkit.core.reasons import sentences
from clusterkit.core.slots import compact, format_ranges
from clusterkit.io.access import Access
from clusterkit.io.dnsio import make_resolver
from clusterkit.io.placement import read_placements
from clusterkit.io.redisio import PodConnector
from clusterkit.io.waiting import Deadline

log = structlog.get_logger()

POLL_SECONDS = 0.1
"""Pause between full rounds: short, since each round is one pipelined round trip per node."""
REOBSERVE_SECONDS = 10.0
"""How long node-by-node confirmation may run before everything is observed and planned again
(a node that changed under us, e.g. a failover, may need new steps)."""
NODE_TIMEOUT_SECONDS = 5.0
"""Socket timeout per node: generous, since a forming cluster of hundreds of nodes on few cores
answers slowly; a node that stays silent only costs its round, which is retried."""


def run(settings: Settings) -> Outcome:
    deadline = Deadline(settings.timeout_seconds)
    cluster = settings.cluster
    structlog.contextvars.bind_contextvars(
        statefulset=cluster.statefulset_name, namespace=cluster.namespace
    )
    log.info(
        "bootstrap_started",
        cluster_size=settings.cluster_size,
        masters=settings.masters,
        replicas_per_master=settings.replicas_per_master,
        timeout_seconds=settings.timeout_seconds,
    )
    access = cluster.read_access()
    try:
        resolver = make_resolver(cluster.nameserver_address())
    except ValueError as exc:
        raise BadSettings(f"DNS_NAMESERVER: {exc}") from None
    addresses = wait_for_dns(settings, resolver, deadline)
    log.info(
        "dns_resolved",
        pods={cluster.naming.pod_name(i): ip for i, ip in sorted(addresses.items())},
    )
    connector = PodConnector(cluster.naming, cluster.redis_port, access, NODE_TIMEOUT_SECONDS)
    clients = connector.connect_all(addresses)
    if settings.takeover_lost_masters and take_over_lost_masters(settings, clients, deadline):
        return Outcome(already_formed=False, rounds=0, seconds=deadline.elapsed())
    wait_for_ping(addresses, clients, settings, deadline)
    log.info("nodes_answering", count=len(clients))
    shape = Shape(settings.cluster_size, settings.masters)
    leaving = LeavingPods(
        resolver,
        cluster.naming,
        settings.cluster_size,
        port=cluster.redis_port,
        access=access,
        timeout=NODE_TIMEOUT_SECONDS,
    )
    leaving.probe()
    placements = read_placements(addresses, settings.sidecar_port, cluster.naming)
    hosts = failure_domains(placements)
    lease = JobLease(clients, addresses, cluster.naming)
    staying = PodClients(
        resolver,
        cluster.naming,
        port=cluster.redis_port,
        access=access,
        timeout=NODE_TIMEOUT_SECONDS,
        addresses=addresses,
        clients=clients,
    )
    try:
        outcome = converge(
            settings,
            shape=shape,
            addresses=addresses,
            clients=clients,
            hosts=hosts,
            deadline=deadline,
            access=access,
            leaving=leaving,
            layout=LayoutRepair(
                shape.masters, domain_kind(placements), carrying_out=lease.carrying_out
            ),
            lease=lease,
            staying=staying,
            stopping=StoppingPods(settings.sidecar_port),
        )
    except Superseded as superseded:
        # Not a failure: a failed Job would be retried, and take the lead back.
        log.info(
            "superseded",
            generation=superseded.mine,
            latest=superseded.latest,
            next_step="a Job started later carries on with its own settings: follow that one",
        )
        return Outcome(already_formed=False, rounds=0, seconds=deadline.elapsed())
    finally:
        lease.release()
    if leaving.seen:
        if failed := leaving.confirm_emptied():
            raise NotConverged(
                "the leaving pods are out of the cluster, but the empty dataset of"
                f" {'; '.join(failed)} could not be written to disk, so a restart would load"
                " its old keys: do not scale down yet. The Job's ACL user needs BGREWRITEAOF"
                " and BGSAVE (docs/security.md); fix what the error names, then rerun the Job"
            )
        # The last event: what the person resizing waits for.
        size = settings.cluster_size
        log.info(
            "ready_to_scale_down",
            pods=[cluster.naming.pod_name(o) for o in sorted(leaving.seen)],
            replicas=size,
            next_step=(
                f"the pods from {cluster.naming.pod_name(size)} on are out of the cluster:"
                f" scale the StatefulSet down to {size} replicas"
                f" (kubectl scale statefulset {cluster.statefulset_name} --replicas={size})"
            ),
        )
    return outcome


def converge(
    settings: Settings,
    *,
    shape: Shape,
    addresses: dict[int, str],
    clients: dict[int, redis.Redis],
    hosts: dict[int, str],
    deadline: Deadline,
    access: Access | None = None,
    leaving: LeavingPods | None = None,
    layout: LayoutRepair,
    lease: JobLease,
    staying: PodClients | None = None,
    stopping: StoppingPods | None = None,
) -> Outcome:
    naming = settings.cluster.naming
    lost_slots = LostSlots.REASSIGN if settings.reassign_lost_slots else LostSlots.REFUSE
    last_reasons: list[str] = ["no complete observation yet"]
    acted = False
    rounds = 0
    progress = Convergence()
    refusal = Refusal()
    open_watch = OpenSlotWatch()
    # Node id -> pod, from every hostname seen in this run: a node that learnt an old identity
    # through gossip only (no hostname), after the nodes that named it forgot it, still knows
    # whose it was (else it would look like a foreign node and stop the Job).
    pod_map: dict[str, str] = {}
    while True:
        rounds += 1
        everyone = {**clients, **(leaving.clients if leaving else {})}
        view, fixing = observe_round(
            settings,
            addresses,
            everyone,
            lost_slots,
            leaving,
            pod_map=pod_map,
            staying=staying,
            hosts=hosts,
        )
        lease.reach(everyone, {**addresses, **(leaving.addresses if leaving else {})})
        lease.announce()  # first of all: an earlier Job's moves stop at their next chunk
        if fixing:
            last_reasons = [f"open slots {format_ranges(compact(fixing))} not closed yet"]
            if view is not None and not open_watch.settled(list(view.pods), fixing):
                # Maybe another Job's move in progress: close them only once they stand still.
                view = None
        if view is not None:
            pods = list(view.pods)
            plan = make_plan(
                shape,
                pods,
                dict(view.hosts),
                pod_names=dict(view.pod_map),
                lost_slots=lost_slots,
                naming=naming,
            )
            if refusal.pending(plan.refusal, acted=acted, deadline=deadline):
                time.sleep(POLL_SECONDS)
                continue
            if (plan.actions or plan.repair.steps) and not lease.may_act():
                time.sleep(POLL_SECONDS)  # another Job finishes its step, or we just took over
                continue
            if plan.actions:
                acted = True
                # A step Redis did not accept needs a new observation and plan at once; so does
                # a round that closed open slots (the rest of the plan comes next round).
                failed = carry_out(
                    plan,
                    everyone,
                    naming,
                    access,
                    lease,
                    stopping=stopping,
                    move_parallelism=settings.move_parallelism,
                )
                progress = Convergence(*settle_shape(plan))
                # So does a plan that waits for something before its next steps (new masters to be
                # known by all before slots move): what it planned so far is not the end.
                formed, confirm = False, not (failed or fixing or plan.waiting)
            else:
                kept = [p for p in pods if p.ordinal < shape.size]
                reasons = [*sentences(plan.waiting), *waiting_for(kept, shape.size)]
                if reasons and reasons != last_reasons:
                    log.info("waiting", reasons=reasons)
                last_reasons = reasons or last_reasons
                if (progress.masters, progress.replicas) != settle_shape(plan):
                    progress = Convergence(*settle_shape(plan))
                # While the plan waits for Redis (a failover), observe again rather than confirm.
                formed, confirm = not reasons, bool(reasons) and not plan.waiting
            # Every step accepted: confirm node by node (cheaply, only the nodes not there yet)
            # instead of re-reading every node's whole view, which on a new cluster of hundreds
            # of nodes costs seconds in the middle of its gossip storm.
            if (
                formed
                or (
                    confirm
                    and wait_converged(
                        clients,
                        planned_slot_map(plan, pods),
                        addresses,
                        progress,
                        limit_seconds=min(REOBSERVE_SECONDS, deadline.remaining()),
                    )
                )
            ) and (
                done := finish(
                    plan,
                    pods,
                    everyone,
                    formed=formed,
                    acted=acted,
                    rounds=rounds,
                    deadline=deadline,
                    layout=layout,
                    hosts=hosts,
                    naming=naming,
                    access=access,
                )
            ):
                return done
        if deadline.expired:
            raise NotConverged(
                f"the cluster did not converge within {settings.timeout_seconds:.0f}s:"
                f" {'; '.join(last_reasons)}. Inspect with redis-cli cluster nodes on the pods"
                " named; rerunning the Job is safe"
            )
        time.sleep(POLL_SECONDS)


def settle_shape(plan: Plan) -> tuple[int, dict[int, int]]:
    """(masters serving slots, replica -> planned master) every settled node must show."""
    serving = sum(1 for master in plan.masters if plan.slots.get(master))
    return serving, dict(plan.replica_of)

"""The Job from start to end: discover -> observe -> plan -> apply, until converged."""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis
import structlog

from bootstrap.apply import apply_actions
from bootstrap.converge import waiting_for
from bootstrap.discover import Deadline, wait_for_dns, wait_for_ping
from bootstrap.errors import BadSettings, NotConverged, RefusedUnsafe
from bootstrap.model import PodState
from bootstrap.observe import observe_all, wait_settled
from bootstrap.placement import read_hosts, warn_colocated
from bootstrap.plan import Plan, Shape, make_plan
from bootstrap.settings import Settings
from clusterkit.dnsio import make_resolver
from clusterkit.redisio import connect
from clusterkit.slots import format_ranges

log = structlog.get_logger()

POLL_SECONDS = 0.1
"""Pause between rounds: short, since each round is one pipelined round trip per node."""
NODE_TIMEOUT_SECONDS = 5.0
"""Socket timeout per node: generous, since a forming cluster of hundreds of nodes on few cores
answers slowly; a node that stays silent only costs its round, which is retried."""


@dataclass(frozen=True)
class Outcome:
    already_formed: bool
    rounds: int
    seconds: float


def run(settings: Settings) -> Outcome:
    deadline = Deadline(settings.timeout_seconds)
    structlog.contextvars.bind_contextvars(
        statefulset=settings.statefulset_name, namespace=settings.namespace
    )
    log.info(
        "bootstrap_started",
        cluster_size=settings.cluster_size,
        masters=settings.masters,
        replicas_per_master=settings.replicas_per_master,
        timeout_seconds=settings.timeout_seconds,
    )
    password = settings.read_password()
    try:
        resolver = make_resolver(settings.nameserver_address())
    except ValueError as exc:
        raise BadSettings(f"DNS_NAMESERVER: {exc}") from None
    addresses = wait_for_dns(settings, resolver, deadline)
    log.info(
        "dns_resolved",
        pods={settings.naming.pod_name(i): ip for i, ip in sorted(addresses.items())},
    )
    clients = {
        i: connect(ip, settings.redis_port, password, timeout=NODE_TIMEOUT_SECONDS)
        for i, ip in addresses.items()
    }
    wait_for_ping(addresses, clients, settings, deadline)
    log.info("nodes_answering", count=len(clients))
    shape = Shape(settings.cluster_size, settings.masters)
    hosts = read_hosts(addresses, settings.sidecar_port, settings.naming)
    return converge(
        settings,
        shape=shape,
        addresses=addresses,
        clients=clients,
        hosts=hosts,
        deadline=deadline,
    )


def converge(
    settings: Settings,
    *,
    shape: Shape,
    addresses: dict[int, str],
    clients: dict[int, redis.Redis],
    hosts: dict[int, str],
    deadline: Deadline,
) -> Outcome:
    naming = settings.naming
    last_reasons: list[str] = ["no complete observation yet"]
    acted = False
    rounds = 0
    while True:
        rounds += 1
        round_started = time.monotonic()
        pods = observe_all(addresses, settings.redis_port, clients, naming)
        if pods is not None:
            plan = make_plan(shape, pods, hosts)
            if plan.refusal:
                if acted:
                    # Our own steps can't make a cluster unsafe; a change by someone else can.
                    log.error("refused_mid_run", reason=plan.refusal)
                raise RefusedUnsafe(plan.refusal + "; nothing was changed" * (not acted))
            if plan.actions:
                acted = True
                apply_actions(plan.actions, clients, naming)
            else:
                reasons = waiting_for(pods, shape.size)
                if not reasons:
                    warn_colocated(plan, hosts, naming)
                    summarize(plan, pods, naming.pod_name, acted, deadline)
                    return Outcome(not acted, rounds, deadline.elapsed())
                if reasons != last_reasons:
                    log.info("waiting", reasons=reasons)
                last_reasons = reasons
                wait_settled(clients, limit_seconds=min(2.0, deadline.remaining()))
        if deadline.remaining() <= 0:
            raise NotConverged(
                f"the cluster did not converge within {settings.timeout_seconds:.0f}s:"
                f" {'; '.join(last_reasons)}. Inspect with redis-cli cluster nodes on the pods"
                " named; rerunning the Job is safe"
            )
        # Back off as far as a round costs: polling must not starve the nodes it waits for.
        time.sleep(max(POLL_SECONDS, min(2.0, time.monotonic() - round_started)))


def summarize(
    plan: Plan, pods: list[PodState], pod_name: object, acted: bool, deadline: Deadline
) -> None:
    by_ordinal = {p.ordinal: p for p in pods}
    masters = {by_ordinal[m].pod: format_ranges(plan.slots[m]) for m in plan.masters}
    replicas = {by_ordinal[r].pod: by_ordinal[m].pod for r, m in plan.replica_of.items()}
    log.info(
        "already_formed" if not acted else "cluster_formed",
        masters=masters,
        replicas=replicas,
        seconds=round(deadline.elapsed(), 3),
    )

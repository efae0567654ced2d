"""The Job's part in the failure-domain layout: say when it cannot survive the loss of a
domain, and carry out the planner's drift repair (the same steps the sidecars run) once the
cluster is formed and calm."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager

import redis
import structlog

from clusterkit.core.domains import Shard, judge
from clusterkit.core.model import Failover
from clusterkit.core.naming import PodNaming
from clusterkit.core.plan import Plan
from clusterkit.io.access import Access
from clusterkit.io.apply import apply_actions
from clusterkit.io.waiting import WaitTimeout, wait_until

log = structlog.get_logger()

FAILOVER_SECONDS = 10.0
"""A plain CLUSTER FAILOVER ends within 5 s or is given up by Redis (manual failover timeout)."""


def is_master(client: redis.Redis) -> bool:
    return str(client.execute_command("ROLE")[0]) == "master"


class LayoutRepair:
    def __init__(
        self,
        masters: int,
        kind: str,
        carrying_out: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
    ) -> None:
        self.kind = kind
        self.carrying_out = carrying_out
        """Held around the repair's steps (bootstrap.lease: no other Job acts meanwhile)."""
        """zone or node: what the failure domains are, for messages."""
        self.budget = masters + 2
        """Each repair strictly improves the layout, so a few per master always suffice; the
        bound only stops a Job racing sidecars that undo nothing."""
        self.done = 0

    def step(
        self,
        plan: Plan,
        clients: dict[int, redis.Redis],
        naming: PodNaming,
        access: Access | None,
    ) -> bool:
        """Run the plan's repair, if any (True: the Job acted and must observe again)."""
        if not plan.repair.steps or self.done >= self.budget:
            return False
        self.done += 1
        log.info("drift_repair", kind=plan.repair.kind, reason=plan.repair.reason)
        with self.carrying_out():
            apply_actions(plan.repair.steps, clients, naming, access=access)
        for step in plan.repair.steps:
            if isinstance(step, Failover):
                # Observe again only once the roles switched: before that, the next plan would
                # see the old layout, calm, and ask for the same failover.
                try:
                    wait_until(
                        functools.partial(is_master, clients[step.ordinal]),
                        timeout=FAILOVER_SECONDS,
                        what=f"{naming.pod_name(step.ordinal)} to take over",
                        interval=0.1,
                        retry_on=(redis.RedisError,),
                    )
                except WaitTimeout as exc:
                    log.warning("drift_repair_not_taken", error=str(exc))
        return True

    def warn(self, plan: Plan, domains: Mapping[int, str]) -> None:
        """One warning event when the planned layout (the one the cluster has once this run's
        steps are done) does not survive the loss of a domain."""
        if not domains:
            return
        shards = [
            Shard(m, tuple(sorted(r for r, master in plan.replica_of.items() if master == m)))
            for m in plan.masters
        ]
        verdict = judge(shards, domains)
        if verdict.survives:
            return
        log.warning(
            "layout_not_survivable",
            verdict=verdict.sentence(self.kind),
            fatal_domains=verdict.fatal,
            achievable=verdict.possible,
            waiting=plan.unsettled,
        )

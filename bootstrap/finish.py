"""The end of a Job run: the layout's last word (its repair, its warnings), then the summary
event."""

from __future__ import annotations

from dataclasses import dataclass

import redis
import structlog

from bootstrap.layout import LayoutRepair
from clusterkit.core.model import PodState
from clusterkit.core.naming import PodNaming
from clusterkit.core.plan import Plan
from clusterkit.core.slots import format_ranges
from clusterkit.io.access import Access
from clusterkit.io.placement import warn_colocated
from clusterkit.io.waiting import Deadline

log = structlog.get_logger()


@dataclass(frozen=True)
class Outcome:
    already_formed: bool
    rounds: int
    seconds: float


def finish(
    plan: Plan,
    pods: list[PodState],
    clients: dict[int, redis.Redis],
    *,
    formed: bool,
    acted: bool,
    rounds: int,
    deadline: Deadline,
    layout: LayoutRepair,
    hosts: dict[int, str],
    naming: PodNaming,
    access: Access | None,
) -> Outcome | None:
    """The end of the run once the cluster is formed, or None when the layout repair acted and
    the Job must observe again."""
    if formed and layout.step(plan, clients, naming, access):
        return None
    acted = acted or layout.done > 0
    warn_colocated(plan, hosts, naming)
    layout.warn(plan, hosts)
    summarize(plan, pods, acted, deadline)
    return Outcome(not acted, rounds, deadline.elapsed())


def summarize(plan: Plan, pods: list[PodState], acted: bool, deadline: Deadline) -> None:
    by_ordinal = {p.ordinal: p for p in pods}
    masters = {by_ordinal[m].pod: format_ranges(plan.slots[m]) for m in plan.masters}
    replicas = {by_ordinal[r].pod: by_ordinal[m].pod for r, m in plan.replica_of.items()}
    log.info(
        "already_formed" if not acted else "cluster_formed",
        masters=masters,
        replicas=replicas,
        seconds=round(deadline.elapsed(), 3),
    )

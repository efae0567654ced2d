"""Observe every node in one round: its cluster view, CLUSTER INFO, key count, replication."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis
import structlog

from bootstrap.converge import SlotMap, settled, view_matches, view_worth_reading
from bootstrap.model import PodState
from clusterkit.naming import PodNaming
from clusterkit.nodes import NodeLineError, parse_cluster_nodes
from clusterkit.redisio import Command, Reply, info_fields, scatter
from clusterkit.waiting import WaitTimeout, wait_until

log = structlog.get_logger()

SWEEP_SECONDS = 0.05
"""Pause between sweeps of the nodes not yet settled."""
VIEWS_PER_SWEEP = 16
"""Full views parsed per sweep: 200 of them at once would take most of a second."""

OBSERVE: tuple[Command, ...] = (
    ("CLUSTER", "NODES"),
    ("CLUSTER", "INFO"),
    ("DBSIZE",),
    ("INFO", "replication"),
)
PROBE: tuple[Command, ...] = (("CLUSTER", "INFO"), ("INFO", "replication"))


def pod_state(
    ordinal: int, ip: str, port: int, naming: PodNaming, replies: list[Reply]
) -> PodState:
    """A PodState from the replies to OBSERVE; raises on error replies or bad node lines."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    nodes_text, info_text, keys, replication = replies
    link = info_fields(replication).get("master_link_status")
    return PodState(
        ordinal=ordinal,
        pod=naming.pod_name(ordinal),
        ip=ip,
        port=port,
        nodes=tuple(parse_cluster_nodes(str(nodes_text))),
        info=info_fields(info_text),
        keys=int(str(keys)),
        master_link_up=None if link is None else link == "up",
    )


def observe_all(
    addresses: dict[int, str], port: int, clients: dict[int, redis.Redis], naming: PodNaming
) -> list[PodState] | None:
    """Every pod's state, or None when some pod could not be observed this round."""
    ordinals = sorted(addresses)
    results = scatter([(clients[o], OBSERVE) for o in ordinals])
    states: list[PodState] = []
    for ordinal, result in zip(ordinals, results, strict=True):
        try:
            if isinstance(result, Exception):
                raise result
            states.append(pod_state(ordinal, addresses[ordinal], port, naming, result))
        except (redis.RedisError, OSError, NodeLineError, ValueError) as exc:
            log.warning(
                "observe_failed",
                pod=naming.pod_name(ordinal),
                ip=addresses[ordinal],
                error=str(exc),
            )
    return states if len(states) == len(ordinals) else None


@dataclass
class Convergence:
    """Per node, what is already confirmed while the cluster settles after the last step."""

    views_ok: set[int] = field(default_factory=set)
    """Nodes whose CLUSTER NODES showed every node and the planned slot map."""
    settled: set[int] = field(default_factory=set)
    """Nodes also confirmed ok, knowing every node, with a replica's link up: polled no more."""


def probe_fields(result: list[Reply] | Exception) -> tuple[dict[str, str], dict[str, str]] | None:
    if isinstance(result, Exception) or any(isinstance(r, Exception) for r in result):
        return None
    info, replication = result
    return info_fields(info), info_fields(replication)


def wait_converged(
    clients: dict[int, redis.Redis],
    naming: PodNaming,
    expected: SlotMap,
    progress: Convergence,
    limit_seconds: float,
) -> bool:
    """True once every node is confirmed converged; False after `limit_seconds` (the caller
    then observes everything again). Only nodes not yet settled are polled, with two cheap
    commands; a node's full view is read (at most VIEWS_PER_SWEEP per sweep, so parsing never
    delays a sweep much) as soon as CLUSTER INFO says it may be complete, which is typically
    seconds before Redis's rejoin delay lets it say cluster_state:ok."""
    size = len(clients)

    def sweep() -> bool:
        pending = [o for o in sorted(clients) if o not in progress.settled]
        probes = scatter([(clients[o], PROBE) for o in pending])
        now_settled: set[int] = set()
        to_view: list[int] = []
        for ordinal, result in zip(pending, probes, strict=True):
            fields = probe_fields(result)
            if fields is None:
                continue
            if settled(*fields, size):
                now_settled.add(ordinal)
            if ordinal not in progress.views_ok and view_worth_reading(fields[0], size):
                to_view.append(ordinal)
        to_view = to_view[:VIEWS_PER_SWEEP]
        views = scatter([(clients[o], (("CLUSTER", "NODES"),)) for o in to_view])
        for ordinal, view in zip(to_view, views, strict=True):
            if isinstance(view, Exception) or isinstance(view[0], Exception):
                continue
            try:
                nodes = parse_cluster_nodes(str(view[0]))
            except NodeLineError as exc:
                log.warning("observe_failed", pod=naming.pod_name(ordinal), error=str(exc))
                continue
            if view_matches(nodes, size, expected):
                progress.views_ok.add(ordinal)
        progress.settled |= now_settled & progress.views_ok
        return len(progress.settled) == size

    try:
        wait_until(
            sweep, timeout=limit_seconds, what="every node to settle", interval=SWEEP_SECONDS
        )
    except WaitTimeout:
        return False
    return True

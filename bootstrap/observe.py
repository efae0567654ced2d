"""Observe every node in one round: its cluster view, CLUSTER INFO, key count, replication."""

from __future__ import annotations

import time

import redis
import structlog

from bootstrap.model import PodState
from clusterkit.naming import PodNaming
from clusterkit.nodes import NodeLineError, parse_cluster_nodes
from clusterkit.redisio import Command, Reply, parse_info, scatter

log = structlog.get_logger()

SETTLE_POLL_SECONDS = 0.05

OBSERVE: tuple[Command, ...] = (
    ("CLUSTER", "NODES"),
    ("CLUSTER", "INFO"),
    ("DBSIZE",),
    ("INFO", "replication"),
)
SETTLE: tuple[Command, ...] = (("CLUSTER", "INFO"), ("INFO", "replication"))


def pod_state(
    ordinal: int, ip: str, port: int, naming: PodNaming, replies: list[Reply]
) -> PodState:
    """A PodState from the replies to OBSERVE; raises on error replies or bad node lines."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    nodes_text, info_text, keys, replication = replies
    link = parse_info(str(replication)).get("master_link_status")
    return PodState(
        ordinal=ordinal,
        pod=naming.pod_name(ordinal),
        ip=ip,
        port=port,
        nodes=tuple(parse_cluster_nodes(str(nodes_text))),
        info=parse_info(str(info_text)),
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


def settled(replies: list[Reply] | Exception, size: int) -> bool:
    """Cheap check of one node: cluster ok, knows `size` nodes, and a replica's link is up."""
    if isinstance(replies, Exception) or any(isinstance(r, Exception) for r in replies):
        return False
    info, replication = (parse_info(str(r)) for r in replies)
    return (
        info.get("cluster_state") == "ok"
        and info.get("cluster_known_nodes") == str(size)
        and replication.get("master_link_status", "up") == "up"
    )


def wait_settled(clients: dict[int, redis.Redis], limit_seconds: float) -> None:
    """Poll cheap replies until every node looks settled or `limit_seconds` pass, so that the
    heavier full observation (every node's whole CLUSTER NODES) runs only when it can succeed."""
    pending = sorted(clients)
    deadline = time.monotonic() + limit_seconds
    while pending and time.monotonic() < deadline:
        sweep_started = time.monotonic()
        results = scatter([(clients[o], SETTLE) for o in pending])
        pending = [o for o, r in zip(pending, results, strict=True) if not settled(r, len(clients))]
        if pending:
            # Slow replies mean busy nodes: poll no more often than a sweep takes.
            time.sleep(max(SETTLE_POLL_SECONDS, time.monotonic() - sweep_started))

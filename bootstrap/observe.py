"""Observe every node in one round: its cluster view, CLUSTER INFO, key count, replication."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import redis
import structlog

from bootstrap.model import PodState
from clusterkit.naming import PodNaming
from clusterkit.nodes import NodeLineError, parse_cluster_nodes
from clusterkit.redisio import parse_info

log = structlog.get_logger()

SETTLE_POLL_SECONDS = 0.05


def observe_pod(
    ordinal: int, ip: str, port: int, client: redis.Redis, naming: PodNaming
) -> PodState:
    """One round trip: CLUSTER NODES, CLUSTER INFO, DBSIZE and INFO replication, pipelined."""
    pipe = client.pipeline(transaction=False)
    pipe.execute_command("CLUSTER", "NODES")
    pipe.execute_command("CLUSTER", "INFO")
    pipe.execute_command("DBSIZE")
    pipe.execute_command("INFO", "replication")
    nodes_text, info_text, keys, replication = pipe.execute()
    replication = dict(replication)
    link = replication.get("master_link_status")
    return PodState(
        ordinal=ordinal,
        pod=naming.pod_name(ordinal),
        ip=ip,
        port=port,
        nodes=tuple(parse_cluster_nodes(str(nodes_text))),
        info=parse_info(str(info_text)),
        keys=int(keys),
        master_link_up=None if link is None else link == "up",
    )


def observe_all(
    addresses: dict[int, str],
    port: int,
    clients: dict[int, redis.Redis],
    naming: PodNaming,
    pool: ThreadPoolExecutor,
) -> list[PodState] | None:
    """Every pod's state, or None when some pod could not be observed this round."""

    def one(ordinal: int) -> PodState | None:
        try:
            return observe_pod(ordinal, addresses[ordinal], port, clients[ordinal], naming)
        except (redis.RedisError, OSError, NodeLineError, ValueError) as exc:
            log.warning(
                "observe_failed",
                pod=naming.pod_name(ordinal),
                ip=addresses[ordinal],
                error=str(exc),
            )
            return None

    states = list(pool.map(one, sorted(addresses)))
    if any(state is None for state in states):
        return None
    return [state for state in states if state is not None]


def settled(client: redis.Redis, size: int) -> bool:
    """Cheap check of one node: cluster ok, knows `size` nodes, and a replica's link is up."""
    pipe = client.pipeline(transaction=False)
    pipe.execute_command("CLUSTER", "INFO")
    pipe.execute_command("INFO", "replication")
    info_text, replication = pipe.execute()
    info = parse_info(str(info_text))
    link_ok = dict(replication).get("master_link_status", "up") == "up"
    return (
        info.get("cluster_state") == "ok" and info.get("cluster_known_nodes") == str(size)
    ) and link_ok


def wait_settled(
    clients: dict[int, redis.Redis], pool: ThreadPoolExecutor, limit_seconds: float
) -> None:
    """Poll cheap replies until every node looks settled or `limit_seconds` pass, so that the
    heavier full observation (every node's whole CLUSTER NODES) runs only when it can succeed."""
    pending = set(clients)
    deadline = time.monotonic() + limit_seconds
    while pending and time.monotonic() < deadline:
        sweep_started = time.monotonic()

        def check(ordinal: int) -> bool:
            try:
                return settled(clients[ordinal], len(clients))
            except (redis.RedisError, OSError):
                return False

        done = [
            o for o, ok in zip(sorted(pending), pool.map(check, sorted(pending)), strict=True) if ok
        ]
        pending.difference_update(done)
        if pending:
            # Slow replies mean busy nodes: poll no more often than a sweep takes.
            time.sleep(max(SETTLE_POLL_SECONDS, time.monotonic() - sweep_started))

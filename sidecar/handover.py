"""A planned handover before the pod stops (the redis container's preStop hook calls the sidecar).

A master with slots sends `CLUSTER FAILOVER` to its best replica: Redis pauses the master's
clients, lets the replica catch up to the exact offset and switches roles, so no acknowledged
write is lost and clients wait a moment instead of failing for cluster-node-timeout plus an
election. A replica, or a master without a healthy replica, has nothing to hand over.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import redis
import structlog

from clusterkit.access import Access
from clusterkit.nodes import NodeLine, myself, parse_cluster_nodes
from clusterkit.redisio import connect
from clusterkit.waiting import Deadline

log = structlog.get_logger()

FAILOVER_ATTEMPT_SECONDS = 6.0
"""Redis gives a manual failover up to 5 s; after that, nothing changed and we may ask again."""
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Handover:
    """What the preStop hook did, for its answer and its log event."""

    outcome: str
    """handed_over, replica (nothing to do), no_slots, no_healthy_replica, timed_out, failed."""
    detail: str
    replica: str = ""
    """The replica that took over (or was asked to), `ip:port`."""
    seconds: float = 0.0


def online_offsets(replication: Mapping[str, object]) -> dict[tuple[str, int], int]:
    """(ip, port) -> replication offset of every replica INFO replication lists as online."""
    found: dict[tuple[str, int], int] = {}
    for key, value in replication.items():
        if not key.startswith("slave") or not isinstance(value, Mapping):
            continue
        if value.get("state") != "online":
            continue
        try:
            found[str(value["ip"]), int(str(value["port"]))] = int(str(value.get("offset", 0)))
        except (KeyError, ValueError):
            continue
    return found


def ranked_replicas(
    nodes: Sequence[NodeLine],
    replication: Mapping[str, object],
    domains: Mapping[str, str] | None = None,
) -> list[NodeLine]:
    """This master's replicas that can take over, best first: linked to the cluster (connected,
    not failing, not `nofailover`) and online on the replication link; first those whose
    failure domain (`domains`: node id -> zone or Kubernetes node) holds the fewest other
    masters, so that handovers do not drift the masters onto one domain; then by highest offset
    (a plain CLUSTER FAILOVER waits for any of them to catch up, so no write is lost either way)."""
    me = myself(list(nodes))
    offsets = online_offsets(replication)
    where = domains or {}
    masters_in = Counter(
        where.get(n.node_id)
        for n in nodes
        if n.is_master and n.slots and n.node_id != me.node_id and not n.is_failing
    )
    usable = [
        n
        for n in nodes
        if n.master_id == me.node_id
        and n.connected
        and not n.is_failing
        and "nofailover" not in n.flags
        and (n.address.ip, n.address.port) in offsets
    ]
    return sorted(
        usable,
        key=lambda n: (
            masters_in[where[n.node_id]] if n.node_id in where else 0,
            -offsets[n.address.ip, n.address.port],
        ),
    )


def hand_over(
    ip: str,
    port: int,
    access: Access,
    timeout: float,
    node_timeout: float = 2.0,
    *,
    server_name: str | None = None,
    domains: Mapping[str, str] | None = None,
) -> Handover:
    """Hand this node's slots to its best replica, waiting up to `timeout` until this node is a
    replica. Never raises: the pod stops anyway, and the answer says what happened."""
    deadline = Deadline(timeout)
    own = connect(ip, port, access, node_timeout, server_name=server_name)
    try:
        return _hand_over(own, access, deadline, node_timeout, domains or {})
    except (redis.RedisError, OSError, ValueError) as exc:
        return Handover("failed", f"{type(exc).__name__}: {exc}", seconds=deadline.elapsed())
    finally:
        own.close()


def _hand_over(
    own: redis.Redis,
    access: Access,
    deadline: Deadline,
    node_timeout: float,
    domains: Mapping[str, str],
) -> Handover:
    nodes = parse_cluster_nodes(str(own.execute_command("CLUSTER", "NODES")))
    me = myself(nodes)
    if not me.is_master:
        return Handover("replica", "this node is a replica: nothing to hand over")
    if not me.slots:
        return Handover("no_slots", "this master owns no slots: nothing to hand over")
    replicas = ranked_replicas(nodes, own.info("replication"), domains)
    if not replicas:
        return Handover(
            "no_healthy_replica",
            "no replica with its link up: stopping without a handover (Redis fails over"
            " after cluster-node-timeout if a replica catches up)",
        )
    attempt = 0
    while not deadline.expired:
        # The best replica first; if it does not take over in time, the next one.
        replica = replicas[attempt % len(replicas)]
        attempt += 1
        where = f"{replica.address.ip}:{replica.address.port}"
        address = replica.address
        peer = connect(address.ip, address.port, access, node_timeout, server_name=address.hostname)
        try:
            peer.execute_command("CLUSTER", "FAILOVER")
        finally:
            peer.close()
        log.info("handover_requested", replica=where, attempt=attempt)
        until = time.monotonic() + min(FAILOVER_ATTEMPT_SECONDS, deadline.remaining())
        while time.monotonic() < until:
            if role(own) == "slave":
                return Handover(
                    "handed_over", "a replica took over", where, round(deadline.elapsed(), 3)
                )
            time.sleep(POLL_SECONDS)
    return Handover(
        "timed_out",
        f"no replica took over within {deadline.seconds:.0f}s: stopping anyway",
        seconds=round(deadline.elapsed(), 3),
    )


def role(client: redis.Redis) -> str:
    """`master` or `slave` (ROLE), or "" when the node did not answer in time (paused)."""
    try:
        return str(client.execute_command("ROLE")[0])
    except (redis.TimeoutError, redis.ConnectionError):
        return ""

"""A planned handover before the pod stops (the redis container's preStop hook calls the sidecar).

A master with slots sends `CLUSTER FAILOVER` to its best replica: Redis pauses the master's
clients, lets the replica catch up to the exact offset and switches roles, so no acknowledged
write is lost and clients wait a moment instead of failing for cluster-node-timeout plus an
election. A replica, or a master without a healthy replica, has nothing to hand over.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import redis
import structlog

from clusterkit.core.handoff import Reopen, attaching, ranked_replicas, reopen_after_failover
from clusterkit.core.nodes import NodeLine, myself, parse_cluster_nodes
from clusterkit.io.access import Access
from clusterkit.io.redisio import Command, Reply, connect, pipelined
from clusterkit.io.waiting import Deadline, WaitTimeout, wait_until

log = structlog.get_logger()

FAILOVER_ATTEMPT_SECONDS = 6.0
"""Redis gives a manual failover up to 5 s; after that, nothing changed and we may ask again."""
POLL_SECONDS = 0.05
CALM_GRACE_SECONDS = 0.3
"""A chunk of moves the Job began just before it heard that this pod is stopping opens its slots
within this time."""
CALM_MAX_SECONDS = 10.0
"""At most this long (and half the handover's timeout) waiting for slot moves to end."""
REPLICA_WAIT_SECONDS = 10.0
"""At most this long (and half the handover's timeout) waiting for a replica that is half
attached (online on the replication link but not yet this master's replica in its view, or the
other way round) to be both: a replica's new role reaches its master by gossip, up to half of
cluster-node-timeout after it attached (seen on Valkey 8.0, a pod stopped right after the Job
formed the cluster: no handover)."""


@dataclass(frozen=True)
class Handover:
    """What the preStop hook did, for its answer and its log event."""

    outcome: str
    """handed_over, replica (nothing to do), no_slots, no_healthy_replica, timed_out, failed."""
    detail: str
    replica: str = ""
    """The replica that took over (or was asked to), `ip:port`."""
    seconds: float = 0.0


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
    replication = own.info("replication")
    replicas = ranked_replicas(nodes, replication, domains)
    if not replicas and attaching(nodes, replication):
        replicas = wait_for_replica(own, domains, deadline)
    if not replicas:
        return Handover(
            "no_healthy_replica",
            "no replica with its link up: stopping without a handover (Redis fails over"
            " after cluster-node-timeout if a replica catches up)",
        )
    wait_for_calm(own, replicas[0], access, node_timeout, deadline)
    attempt = 0
    while not deadline.expired:
        # The best replica first; if it does not take over in time, the next one.
        replica = replicas[attempt % len(replicas)]
        attempt += 1
        where = f"{replica.address.ip}:{replica.address.port}"
        # The open slots as they are now: Redis 7.0 closes them all once this node turns replica.
        before = parse_cluster_nodes(str(own.execute_command("CLUSTER", "NODES")))
        asked = send(replica, [("CLUSTER", "FAILOVER")], access, node_timeout)
        failure = asked if isinstance(asked, Exception) else asked[0]
        if isinstance(failure, Exception):
            raise failure
        log.info("handover_requested", replica=where, attempt=attempt)
        until = time.monotonic() + min(FAILOVER_ATTEMPT_SECONDS, deadline.remaining())
        while time.monotonic() < until:
            if role(own) == "slave":
                reopened = reopen_open_slots(own, before, replica, access, node_timeout)
                return Handover(
                    "handed_over",
                    "a replica took over"
                    + (f"; {reopened} open slot states carried over" if reopened else ""),
                    where,
                    round(deadline.elapsed(), 3),
                )
            time.sleep(POLL_SECONDS)
    return Handover(
        "timed_out",
        f"no replica took over within {deadline.seconds:.0f}s: stopping anyway",
        seconds=round(deadline.elapsed(), 3),
    )


def wait_for_replica(
    own: redis.Redis, domains: Mapping[str, str], deadline: Deadline
) -> list[NodeLine]:
    """The ranked replicas once one is both online and listed, or [] after the bounded wait."""

    def ranked() -> list[NodeLine]:
        nodes = parse_cluster_nodes(str(own.execute_command("CLUSTER", "NODES")))
        return ranked_replicas(nodes, own.info("replication"), domains)

    limit = min(REPLICA_WAIT_SECONDS, deadline.remaining() / 2)
    log.info("handover_waits_for_replica", seconds=round(limit, 1))
    try:
        return wait_until(ranked, timeout=limit, what="a replica to attach", interval=POLL_SECONDS)
    except WaitTimeout:
        return []


def wait_for_calm(
    own: redis.Redis,
    replica: NodeLine,
    access: Access,
    timeout: float,
    deadline: Deadline,
) -> None:
    """Wait, bounded, until no slot of this master is open and the replica lists this master's
    slots as this master does. While slots move off a master, its replicas' views lag, and the
    other masters refuse a lagging replica their vote ("slot N epoch > reqEpoch"): the manual
    failover times out again and again. The Job starts no new move from or to a stopping pod
    (its /node says stopping), so the chunk in flight ends and the views catch up."""
    time.sleep(CALM_GRACE_SECONDS)
    mine = myself(parse_cluster_nodes(str(own.execute_command("CLUSTER", "NODES"))))
    seen: list[str] = []

    def calm() -> bool:
        me = myself(parse_cluster_nodes(str(own.execute_command("CLUSTER", "NODES"))))
        reply = send(replica, [("CLUSTER", "NODES")], access, timeout)
        if isinstance(reply, Exception) or isinstance(reply[0], Exception):
            seen[:] = [f"replica did not answer: {reply}"]
            return False
        theirs = {n.node_id: n for n in parse_cluster_nodes(str(reply[0]))}.get(me.node_id)
        seen[:] = [f"open: {' '.join(me.migrations) or '-'}"]
        return not me.migrations and theirs is not None and theirs.slots == me.slots

    limit = Deadline(min(CALM_MAX_SECONDS, deadline.remaining() / 2))
    try:
        wait_until(
            calm,
            timeout=limit,
            what="slot moves to end",
            interval=POLL_SECONDS * 2,
            retry_on=(redis.RedisError, OSError, ValueError),
            last_seen=lambda: "; ".join(seen),
        )
    except WaitTimeout as exc:
        log.warning("handover_not_calm", reason=str(exc), next_step="hands over anyway")
        return
    if limit.elapsed() > 0.1 or mine.migrations:
        log.info("handover_waited_for_moves", seconds=round(limit.elapsed(), 3))


def send(
    node: NodeLine, commands: Sequence[Command], access: Access, timeout: float
) -> list[Reply] | Exception:
    """Commands to the node a line names, in one round trip (its hostname checks its
    certificate); error replies stay in their places."""
    address = node.address
    peer = connect(address.ip, address.port, access, timeout, server_name=address.hostname)
    try:
        return pipelined(peer, commands)
    finally:
        peer.close()


def reopen_open_slots(
    own: redis.Redis,
    before: Sequence[NodeLine],
    asked: NodeLine,
    access: Access,
    timeout: float,
) -> int:
    """Give the new master the slots this node had open (clusterkit.core.handoff); how many SETSLOTs
    Redis took. A refusal (the Job closed the slot meanwhile) is logged and skipped: the Job
    closes whatever is left open."""
    now = parse_cluster_nodes(str(own.execute_command("CLUSTER", "NODES")))
    new_master = myself(now).master_id or asked.node_id
    lines = {n.node_id: n for n in [*before, *now]}
    by_node: dict[str, list[Reopen]] = {}
    for step in reopen_after_failover(before, new_master):
        by_node.setdefault(step.node_id, []).append(step)
    done = 0
    # The new master first: a source told to migrate to it before it imports would send ASKs
    # it refuses.
    for node_id in sorted(by_node, key=lambda n: n != new_master):
        steps, node = by_node[node_id], lines.get(node_id)
        if node is None:
            continue
        commands = [("CLUSTER", "SETSLOT", s.slot, s.state, s.peer) for s in steps]
        replies = send(node, commands, access, timeout)
        for index, step in enumerate(steps):
            reply = replies if isinstance(replies, Exception) else replies[index]
            if isinstance(reply, Exception):
                log.warning(
                    "open_slot_not_carried", slot=step.slot, state=step.state, error=str(reply)
                )
            else:
                done += 1
    if done:
        log.info("open_slots_carried", count=done, new_master=new_master)
    return done


def role(client: redis.Redis) -> str:
    """`master` or `slave` (ROLE), or "" when the node did not answer in time (paused)."""
    try:
        return str(client.execute_command("ROLE")[0])
    except (redis.TimeoutError, redis.ConnectionError):
        return ""

"""TAKEOVER_LOST_MASTERS: when half or more of the masters are unreachable, Redis cannot fail
them over (a failover needs a majority of the slot-owning masters to vote) and the cluster stays
down until their node returns. With the setting, the Job sends CLUSTER FAILOVER TAKEOVER to the
best reachable replica of each, once every reachable node has flagged them failing for
TAKEOVER_AFTER_SECONDS. Writes those masters accepted after their replicas' last copy are lost;
when they return, Redis sees their slots owned at a higher epoch and they become replicas."""

from __future__ import annotations

import time

import redis
import structlog

from bootstrap.settings import Settings
from clusterkit.core.identity import pod_label
from clusterkit.core.nodes import NodeLine, NodeLineError, parse_cluster_nodes
from clusterkit.core.viewlayout import best_taker, lost_in_every_view
from clusterkit.io.redisio import info_fields, scatter
from clusterkit.io.waiting import Deadline, WaitTimeout, wait_until

log = structlog.get_logger()

POLL_SECONDS = 0.5
PROMOTED_SECONDS = 30.0
"""A bound that stops a hang: a TAKEOVER promotes the replica at once, without a vote."""
READS = (("CLUSTER", "NODES"), ("INFO", "replication"))


def reachable_views(
    clients: dict[int, redis.Redis],
) -> tuple[dict[int, list[NodeLine]], dict[int, int]]:
    """Each answering pod's CLUSTER NODES and replication offset (the others are left out)."""
    ordinals = sorted(clients)
    views: dict[int, list[NodeLine]] = {}
    offsets: dict[int, int] = {}
    for ordinal, result in zip(
        ordinals, scatter([(clients[o], READS) for o in ordinals]), strict=True
    ):
        if isinstance(result, Exception) or any(isinstance(r, Exception) for r in result):
            continue
        try:
            views[ordinal] = parse_cluster_nodes(str(result[0]))
        except NodeLineError:
            continue
        offsets[ordinal] = int(info_fields(result[1]).get("slave_repl_offset", "-1"))
    return views, offsets


def take_over_lost_masters(
    settings: Settings, clients: dict[int, redis.Redis], deadline: Deadline
) -> bool:
    """Replace the masters every reachable view has lost; True once each replacement leads.
    False (the Job goes on as usual) when every pod answers, or no view flags a lost quorum
    within twice TAKEOVER_AFTER_SECONDS."""
    naming = settings.cluster.naming
    since: float | None = None
    flagged: list[str] = []
    # Right after a crash no view flags anything yet (cluster-node-timeout): wait that long
    # for the flags before going on as usual.
    unflagged = Deadline(2 * settings.takeover_after_seconds)
    while not deadline.expired:
        views, offsets = reachable_views(clients)
        if len(views) == len(clients):
            return False
        lost = lost_in_every_view(list(views.values()))
        if lost != flagged:
            since, flagged = (time.monotonic() if lost else None), lost
            if lost:
                log.warning(
                    "quorum_lost",
                    masters=[pod_of(views, m) for m in lost],
                    takeover_after_seconds=settings.takeover_after_seconds,
                    risk="writes the unreachable masters took alone are lost if they return",
                )
            else:
                log.info("takeover_withdrawn", reason="a view no longer flags the lost masters")
        if since is not None and time.monotonic() - since >= settings.takeover_after_seconds:
            break
        if not lost and unflagged.expired:
            return False
        time.sleep(POLL_SECONDS)
    else:
        return False
    takers: dict[int, str] = {}
    for master_id in flagged:
        taker = best_taker(views, master_id, offsets)
        if taker is None:
            log.error("takeover_impossible", master=master_id, reason="no reachable replica")
            continue
        clients[taker].execute_command("CLUSTER", "FAILOVER", "TAKEOVER")
        takers[taker] = master_id
        log.warning(
            "takeover_sent",
            replica=naming.pod_name(taker),
            lost_master=pod_of(views, master_id),
            replica_offset=offsets.get(taker),
            risk="writes the lost master took after this offset are gone if it returns",
        )
    try:
        wait_until(
            lambda: all(leads(clients[o]) for o in takers),
            timeout=min(PROMOTED_SECONDS, max(deadline.remaining(), 1.0)),
            what="the replicas sent TAKEOVER to lead",
            interval=POLL_SECONDS,
            retry_on=(redis.RedisError, OSError),
        )
    except WaitTimeout as exc:
        log.error("takeover_not_confirmed", error=str(exc))
        return False
    log.info(
        "took_over",
        replicas=[naming.pod_name(o) for o in sorted(takers)],
        next_step="when the lost node returns, its pods rejoin as replicas by themselves",
    )
    return True


def leads(client: redis.Redis) -> bool:
    me = next(
        n
        for n in parse_cluster_nodes(str(client.execute_command("CLUSTER", "NODES")))
        if n.is_myself
    )
    return me.is_master and bool(me.slots)


def pod_of(views: dict[int, list[NodeLine]], node_id: str) -> str:
    """The pod a node id belongs to, as the views announce it (else the id)."""
    for nodes in views.values():
        for line in nodes:
            if line.node_id == node_id and line.address.hostname:
                return pod_label(line)
    return node_id

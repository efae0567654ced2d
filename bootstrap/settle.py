"""Wait for a cluster to settle once every step is applied, confirming node by node.

A new cluster of hundreds of nodes spends its first seconds in a gossip storm (every node
handshakes with every other and fsyncs nodes.conf each time), and no master can say
cluster_state:ok before Redis's rejoin delay has passed since it got its slots. Polling every
node all that time only slows the storm down, and on two cores reading every node's whole view
costs seconds (measured: 200 views of 200 lines, 2-3 s to parse; 200 CLUSTER SLOTS replies, 3-4 s
for redis-py to read). So:

- each node is read with CLUSTER INFO only (plus INFO replication on replicas): ok, knows every
  node, every slot served, by as many masters as planned;
- until some node says ok, only a few sentinel nodes are read every sweep, and all the others
  once a second; after that, every node not yet confirmed is read every sweep;
- a sweep waits at most SWEEP_BUDGET_SECONDS: a node still busy with the storm answers in a
  later sweep and never holds up the others;
- a replica is confirmed by its own INFO replication: link up to its planned master (its role
  reaches other nodes' views by gossip seconds later on hundreds of nodes: not waited for);
- once every node is confirmed, the whole views of a few nodes must show the planned slot map
  (a failover during formation would change it: then everything is observed again), and each
  node must be listed by its hostname in one of them besides its own (a pod lost before any
  peer knew its hostname leaves an old identity no sidecar can tell from a foreign node).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass, field

import redis
import structlog

from clusterkit.core.converge import SlotMap, settled, unnamed_nodes, view_matches
from clusterkit.core.nodes import NodeLineError, parse_cluster_nodes
from clusterkit.io.redisio import Command, Reply, info_fields, scatter, submit
from clusterkit.io.waiting import WaitTimeout, wait_until

log = structlog.get_logger()

SWEEP_SECONDS = 0.05
"""Pause between sweeps."""
FULL_SWEEP_SECONDS = 1.0
"""Before any node says ok: how often every node not yet confirmed is read."""
SENTINELS = 3
"""Before any node says ok: how many nodes are read every sweep (the first pending ones)."""
VIEWS_CHECKED = 3
"""At the end: how many nodes' whole views must show the planned slot map and replicas."""
SWEEP_BUDGET_SECONDS = 0.3
"""How long one sweep waits for replies."""
MAX_PACING_SECONDS = 0.25
"""Sweeps are spaced by their own duration (busy nodes answer slowly), up to this."""
PROGRESS_SECONDS = 1.0
"""How often a long wait logs how far it got."""

INFO: Command = ("CLUSTER", "INFO")
REPLICATION: Command = ("INFO", "replication")
VIEW: tuple[Command, ...] = (("CLUSTER", "NODES"),)


@dataclass
class Convergence:
    """Per node, what is already confirmed while the cluster settles after the last step."""

    masters: int = 0
    """Masters the plan has: each settled node must count this many serving slots."""
    replicas: Mapping[int, int] = field(default_factory=dict)
    """Replica -> its planned master (ordinals): a replica's own INFO replication must show
    its link up to that master."""
    settled: set[int] = field(default_factory=set)
    """Nodes confirmed: read no more."""
    any_ok: bool = False
    """Some node said cluster_state:ok: from now on every pending node is read every sweep."""
    last_full_sweep: float = 0.0
    last_report: float = field(default_factory=time.monotonic)
    last_seen: dict[int, str] = field(default_factory=dict)
    """Pending node -> what kept it from being confirmed when it was last read."""
    in_flight: dict[int, Future[list[Reply] | Exception]] = field(default_factory=dict)
    """Requests to slow nodes, collected by a later sweep."""


def read_nodes(
    clients: dict[int, redis.Redis], ordinals: list[int], progress: Convergence
) -> dict[int, list[Reply] | Exception]:
    """The replies of those nodes that answer within SWEEP_BUDGET_SECONDS. A slower node keeps
    its request in flight (and gets no second one) until a later sweep collects it."""
    for ordinal in ordinals:
        if ordinal not in progress.in_flight:
            probe = (INFO, REPLICATION) if ordinal in progress.replicas else (INFO,)
            progress.in_flight[ordinal] = submit(clients[ordinal], probe)
    waiting = {progress.in_flight[o]: o for o in ordinals}
    done, _ = futures.wait(waiting, timeout=SWEEP_BUDGET_SECONDS)
    replies = {}
    for future in done:
        ordinal = waiting[future]
        del progress.in_flight[ordinal]
        replies[ordinal] = future.result()
    return replies


def take_replies(
    replies: dict[int, list[Reply] | Exception],
    progress: Convergence,
    size: int,
    addresses: Mapping[int, str],
) -> None:
    for ordinal, result in replies.items():
        if isinstance(result, Exception) or any(isinstance(r, Exception) for r in result):
            progress.last_seen[ordinal] = str(result)[:80]
            continue
        info = info_fields(result[0])
        replication = info_fields(result[1]) if len(result) > 1 else {}
        progress.any_ok |= info.get("cluster_state") == "ok"
        master = progress.replicas.get(ordinal)
        master_ip = None if master is None else addresses.get(master)
        if settled(info, replication, size, progress.masters, master_ip):
            progress.settled.add(ordinal)
            progress.last_seen.pop(ordinal, None)
        else:
            progress.last_seen[ordinal] = (
                f"state={info.get('cluster_state')} known={info.get('cluster_known_nodes')}"
                f" slots_ok={info.get('cluster_slots_ok')} masters={info.get('cluster_size')}"
                f" link={replication.get('master_link_status', '-')}"
            )


def check_views(clients: dict[int, redis.Redis], expected: SlotMap) -> str:
    """Read the whole views of a few nodes: `ok` when each shows every node and the planned
    slot map, and every node is listed by hostname in one of them besides its own; `changed`
    when a slot map is not the planned one (a failover under us); `not_yet` otherwise."""
    sample = sorted(clients)[:VIEWS_CHECKED]
    views = []
    for ordinal, result in zip(sample, scatter([(clients[o], VIEW) for o in sample]), strict=True):
        try:
            if isinstance(result, Exception) or isinstance(result[0], Exception):
                return "not_yet"
            nodes = parse_cluster_nodes(str(result[0]))
        except NodeLineError:
            return "not_yet"
        if not view_matches(nodes, len(clients), expected):
            log.info("slot_map_changed", pod_ordinal=ordinal)
            return "changed"
        views.append(nodes)
    return "not_yet" if unnamed_nodes(views) else "ok"


def wait_converged(
    clients: dict[int, redis.Redis],
    expected: SlotMap,
    addresses: Mapping[int, str],
    progress: Convergence,
    limit_seconds: float,
) -> bool:
    """True once every node is confirmed and a few whole views show the planned slot map.
    False after `limit_seconds` or when the slot map changed: the caller then observes
    everything again."""
    size = len(clients)
    changed = [False]

    def sweep() -> bool:
        started = time.monotonic()
        pending = [o for o in sorted(clients) if o not in progress.settled]
        if progress.any_ok or started - progress.last_full_sweep >= FULL_SWEEP_SECONDS:
            progress.last_full_sweep = started
        else:
            pending = pending[:SENTINELS]
        take_replies(read_nodes(clients, pending, progress), progress, size, addresses)
        if len(progress.settled) == size:
            verdict = check_views(clients, expected)
            changed[0] = verdict == "changed"
            if verdict != "not_yet":
                return True
        if started - progress.last_report >= PROGRESS_SECONDS:
            progress.last_report = started
            log.info(
                "settling",
                settled=len(progress.settled),
                total=size,
                sweep_seconds=round(time.monotonic() - started, 3),
                waiting=sorted(progress.last_seen.items())[:3],
            )
        # Slow replies mean busy nodes: poll no more often than a sweep takes.
        took = time.monotonic() - started
        time.sleep(min(MAX_PACING_SECONDS, max(0.0, took - SWEEP_SECONDS)))
        return False

    try:
        wait_until(
            sweep, timeout=limit_seconds, what="every node to settle", interval=SWEEP_SECONDS
        )
    except WaitTimeout:
        waiting = sorted(progress.last_seen.items())[:5]
        log.info("settle_incomplete", settled=len(progress.settled), total=size, waiting=waiting)
        return False
    if changed[0]:
        progress.settled.clear()  # confirmed against a map that no longer holds
    return not changed[0]

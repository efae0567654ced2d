"""Wait for a cluster to settle once every step is applied, confirming node by node.

A new cluster of hundreds of nodes spends its first seconds in a gossip storm (every node
handshakes with every other and fsyncs nodes.conf each time), and no master can say
cluster_state:ok before Redis's rejoin delay has passed since it got its slots. Polling every
node all that time only slows the storm down. So: a few sentinel nodes are polled every 50 ms,
and every node not yet confirmed once a second; as soon as any node says ok, every node not yet
confirmed is polled every sweep, so the Job exits within about one sweep of the last node
getting there. A sweep waits at most SWEEP_BUDGET_SECONDS for replies: a node still busy with
the storm answers in a later sweep and never holds up the others.
"""

from __future__ import annotations

import time
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass, field

import redis
import structlog

from bootstrap.converge import SlotMap, settled, slots_reply_map, view_worth_reading
from clusterkit.redisio import Command, Reply, info_fields, submit
from clusterkit.waiting import WaitTimeout, wait_until

log = structlog.get_logger()

SWEEP_SECONDS = 0.05
"""Pause between sweeps."""
FULL_SWEEP_SECONDS = 1.0
"""Before any node says ok: how often every node not yet confirmed is read."""
SENTINELS = 3
"""Before any node says ok: how many nodes are read every sweep (the first pending ones)."""
MAX_PACING_SECONDS = 0.25
"""Sweeps are spaced by their own duration (busy nodes answer slowly), up to this."""
SWEEP_BUDGET_SECONDS = 0.3
"""How long one sweep waits for replies: a node in the middle of its gossip storm may take
seconds to answer, and must not hold up the news from all the others."""
PROGRESS_SECONDS = 1.0
"""How often a long wait logs how far it got."""

INFO: Command = ("CLUSTER", "INFO")
REPLICATION: Command = ("INFO", "replication")
SLOTS: Command = ("CLUSTER", "SLOTS")


@dataclass
class Convergence:
    """Per node, what is already confirmed while the cluster settles after the last step."""

    replicas: frozenset[int] = frozenset()
    """Nodes the plan makes replicas: only their replication link is read."""
    complete: set[int] = field(default_factory=set)
    """Nodes whose CLUSTER INFO said they know every node and see every slot owned."""
    slot_maps_ok: set[int] = field(default_factory=set)
    """Nodes whose CLUSTER SLOTS showed the planned slot map."""
    settled: set[int] = field(default_factory=set)
    """Nodes also ok, knowing every node, with a replica's link up: read no more."""
    any_ok: bool = False
    """Some node said cluster_state:ok: from now on every pending node is read every sweep."""
    last_full_sweep: float = 0.0
    last_seen: dict[int, str] = field(default_factory=dict)
    in_flight: dict[int, Future[list[Reply] | Exception]] = field(default_factory=dict)
    """Requests to slow nodes, collected by a later sweep."""
    """Pending node -> what kept it from being confirmed at the last full sweep."""
    last_report: float = field(default_factory=time.monotonic)


def probe_for(ordinal: int, progress: Convergence) -> tuple[Command, ...]:
    """CLUSTER INFO always; INFO replication for replicas only; CLUSTER SLOTS (the one reply
    that costs some parsing) only once CLUSTER INFO said the node knows every node."""
    commands = [INFO]
    if ordinal in progress.replicas:
        commands.append(REPLICATION)
    if ordinal in progress.complete and ordinal not in progress.slot_maps_ok:
        commands.append(SLOTS)
    return tuple(commands)


def read_nodes(
    clients: dict[int, redis.Redis], ordinals: list[int], progress: Convergence
) -> dict[int, list[Reply] | Exception]:
    """The probe replies of those nodes that answer within SWEEP_BUDGET_SECONDS. A slower node
    keeps its request in flight (and gets no second one) until a later sweep collects it."""
    for ordinal in ordinals:
        if ordinal not in progress.in_flight:
            progress.in_flight[ordinal] = submit(clients[ordinal], probe_for(ordinal, progress))
    waiting = {progress.in_flight[o]: o for o in ordinals}
    done, _ = futures.wait(waiting, timeout=SWEEP_BUDGET_SECONDS)
    replies = {}
    for future in done:
        ordinal = waiting[future]
        del progress.in_flight[ordinal]
        replies[ordinal] = future.result()
    return replies


def take_replies(
    replies: dict[int, list[Reply] | Exception], expected: SlotMap, progress: Convergence, size: int
) -> None:
    """Confirm slot maps and settled nodes from the replies one sweep collected."""
    for ordinal, result in replies.items():
        if isinstance(result, Exception) or any(isinstance(r, Exception) for r in result):
            progress.last_seen[ordinal] = str(result)[:80]
            continue
        info = info_fields(result[0])
        replication = info_fields(result[1]) if ordinal in progress.replicas else {}
        progress.any_ok |= info.get("cluster_state") == "ok"
        if view_worth_reading(info, size):
            progress.complete.add(ordinal)
            read_slots = len(result) > 1 + (ordinal in progress.replicas)
            if read_slots and slots_reply_map(result[-1]) == expected:
                progress.slot_maps_ok.add(ordinal)
        if settled(info, replication, size) and ordinal in progress.slot_maps_ok:
            progress.settled.add(ordinal)
            progress.last_seen.pop(ordinal, None)
        else:
            progress.last_seen[ordinal] = (
                f"state={info.get('cluster_state')} known={info.get('cluster_known_nodes')}"
                f" link={replication.get('master_link_status', '-')}"
                f" slot_map={'ok' if ordinal in progress.slot_maps_ok else 'not yet'}"
            )


def wait_converged(
    clients: dict[int, redis.Redis],
    expected: SlotMap,
    progress: Convergence,
    limit_seconds: float,
) -> bool:
    """True once every node is confirmed: cluster_state ok, knowing every node, a replica's
    link up, and its CLUSTER SLOTS equal to the planned slot map (far cheaper to read than a
    whole CLUSTER NODES). False after `limit_seconds`: the caller then observes everything
    again, in case something changed under it."""
    size = len(clients)

    def sweep() -> bool:
        started = time.monotonic()
        pending = [o for o in sorted(clients) if o not in progress.settled]
        if progress.any_ok or started - progress.last_full_sweep >= FULL_SWEEP_SECONDS:
            progress.last_full_sweep = started
        else:
            pending = pending[:SENTINELS]
        take_replies(read_nodes(clients, pending, progress), expected, progress, size)
        if len(progress.settled) == size:
            return True
        if started - progress.last_report >= PROGRESS_SECONDS:
            progress.last_report = started
            log.info(
                "settling",
                settled=len(progress.settled),
                slot_maps_confirmed=len(progress.slot_maps_ok),
                total=size,
                sweep_seconds=round(time.monotonic() - started, 3),
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
    return True

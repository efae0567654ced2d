"""A planned failover's decisions: which replica takes over (ranked_replicas), and the open
slots carried across it.

Open slots carried across a planned failover. Redis 7.0 keeps a slot's MIGRATING/IMPORTING
state on the master only: a replica that takes over in the middle of a move owns the slot with
no MIGRATING state, so clients asking it for a key already moved get nil; the node on the other
side of a move into the old master still points at it. Right after the switch, the old master's
sidecar re-opens each slot on the new master (and on the source of a move into it), so that
clients are redirected (ASK) to wherever each key is, until the Job finishes or undoes the move
(clusterkit.core.openslots). Valkey 8 replicates the states already; the same steps change nothing.

Pure: from the old master's own view, taken just before the failover.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clusterkit.core.nodes import NodeLine, myself
from clusterkit.core.openslots import parse_migrations


@dataclass(frozen=True)
class Reopen:
    """`CLUSTER SETSLOT slot state peer` sent to the node `node_id`."""

    node_id: str
    slot: int
    state: str
    """MIGRATING or IMPORTING."""
    peer: str


def reopen_after_failover(nodes: Sequence[NodeLine], new_master: str) -> list[Reopen]:
    """The SETSLOTs that give `new_master` (the replica taking over) the open slots of the
    master whose view `nodes` is: a slot it migrates stays migrating to the same target; a slot
    it imports is imported by the new master, and its source migrates it there instead."""
    me = myself(list(nodes))
    known = {n.node_id for n in nodes}
    steps: list[Reopen] = []
    for slot, state in sorted(parse_migrations(me.migrations).items()):
        if state.peer not in known or state.peer == new_master:
            continue  # a peer it does not know (or the new master itself): nothing to point at
        if state.migrating:
            steps.append(Reopen(new_master, slot, "MIGRATING", state.peer))
        else:
            steps.append(Reopen(new_master, slot, "IMPORTING", state.peer))
            steps.append(Reopen(state.peer, slot, "MIGRATING", new_master))
    return steps


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


def attaching(nodes: Sequence[NodeLine], replication: Mapping[str, object]) -> bool:
    """Some replica is on its way: online on the link, or listed as this master's and up."""
    me = myself(list(nodes))
    listed = any(n.master_id == me.node_id and n.connected and not n.is_failing for n in nodes)
    return listed or bool(online_offsets(replication))


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

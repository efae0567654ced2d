"""Open slots carried across a planned failover. Redis 7.0 keeps a slot's MIGRATING/IMPORTING
state on the master only: a replica that takes over in the middle of a move owns the slot with
no MIGRATING state, so clients asking it for a key already moved get nil; the node on the other
side of a move into the old master still points at it. Right after the switch, the old master's
sidecar re-opens each slot on the new master (and on the source of a move into it), so that
clients are redirected (ASK) to wherever each key is, until the Job finishes or undoes the move
(clusterkit.core.openslots). Valkey 8 replicates the states already; the same steps change nothing.

Pure: from the old master's own view, taken just before the failover.
"""

from __future__ import annotations

from collections.abc import Sequence
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

"""Carry out a plan's steps. Every step is idempotent: a reply saying it is already done counts
as done, a reply saying "not yet" is retried briefly, and anything else is left for the next
round, which observes and plans again."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import redis
import structlog

from clusterkit.core.model import (
    STEP_NAMES,
    STEP_ORDER,
    Action,
    AddSlots,
    CloseSlot,
    Failover,
    Forget,
    Meet,
    MoveSlot,
    Replicate,
    Reset,
    SetConfigEpoch,
    SetSlotNode,
)
from clusterkit.core.naming import PodNaming
from clusterkit.io.access import Access
from clusterkit.io.migrate import MOVE_THREADS, move_slots
from clusterkit.io.redisio import Command, Reply, scatter
from clusterkit.io.resetnode import reset_nodes
from clusterkit.io.waiting import WaitTimeout, wait_until

log = structlog.get_logger()

# Error replies that mean "this step is already done" (or was done by a concurrent Job).
ALREADY_DONE = (
    "already busy",  # ADDSLOTS: the slot has an owner (we planned only unowned)
    "already non-zero",  # SET-CONFIG-EPOCH on a node that has an epoch
    "does not know any other node",  # SET-CONFIG-EPOCH after MEET
    "Unknown node",  # FORGET of an id this node no longer knows
    "Please use SETSLOT only with masters",  # SETSLOT on a master that became a replica since
    "CLUSTER FAILOVER to a replica",  # FAILOVER on a node that took over already
)
# Replies that mean "not yet": REPLICATE sent before the replica's handshake with its master ends.
NOT_YET = ("Unknown node",)
NOT_YET_STEPS: tuple[type[Action], ...] = (Replicate,)
RETRY_SECONDS = 5.0
"""How long a step answered "not yet" is retried before it is left to the next round."""
RETRY_PAUSE_SECONDS = 0.05
RETRY_PAUSE_PER_STEP_SECONDS = 0.0025
"""Retries pause longer the more steps wait (100 REPLICATEs: 0.25 s): every retry is a command
to a node in the middle of the gossip storm, and on 200 pods a 0.05 s pause slowed the storm
(all nodes ok 9.9 s against 8.5 s, one run each)."""


def command_for(action: Action) -> Command:
    command: Command
    match action:
        case Forget(node_id=node_id):
            command = ("CLUSTER", "FORGET", node_id)
        case SetConfigEpoch(epoch=epoch):
            command = ("CLUSTER", "SET-CONFIG-EPOCH", epoch)
        case Failover():
            command = ("CLUSTER", "FAILOVER")
        case AddSlots(ranges=ranges):
            command = ("CLUSTER", "ADDSLOTSRANGE", *[b for r in ranges for b in (r.start, r.end)])
        case Meet(ip=ip, port=port, bus_port=bus_port):
            command = ("CLUSTER", "MEET", ip, port, bus_port)
        case Replicate(master_id=master_id):
            command = ("CLUSTER", "REPLICATE", master_id)
        case CloseSlot() | SetSlotNode():
            command = setslot_command(action)
        case _:
            # Many commands each: clusterkit.io.migrate (MoveSlot), clusterkit.io.resetnode (Reset).
            raise TypeError(action)
    return command


def setslot_command(action: CloseSlot | SetSlotNode) -> Command:
    if isinstance(action, CloseSlot):
        return ("CLUSTER", "SETSLOT", action.slot, "STABLE")
    return ("CLUSTER", "SETSLOT", action.slot, "NODE", action.owner_id)


def outcome_of(action: Action, reply: Reply | Exception, naming: PodNaming) -> str:
    """done, already_done, not_yet or failed, from the node's reply to one step."""
    if not isinstance(reply, Exception):
        return "done"
    text = str(reply)
    context = {"pod": naming.pod_name(action.ordinal), "step": STEP_NAMES[type(action)]}
    if isinstance(reply, redis.ResponseError):
        if isinstance(action, NOT_YET_STEPS) and any(marker in text for marker in NOT_YET):
            return "not_yet"
        if any(marker in text for marker in ALREADY_DONE):
            log.debug("step_already_done", reply=text, **context)
            return "already_done"
    log.warning("step_failed", error=text, action=repr(action), **context)
    return "failed"


def apply_actions(
    actions: Sequence[Action],
    clients: dict[int, redis.Redis],
    naming: PodNaming,
    *,
    access: Access | None = None,
    keep_going: Callable[[], bool] = lambda: True,
    may_move: Callable[[MoveSlot], bool] = lambda move: True,
    move_parallelism: int = MOVE_THREADS,
) -> dict[str, int]:
    """Run the steps kind by kind in STEP_ORDER, each kind in parallel over the pods. Slot moves
    go to io.migrate (MIGRATE authenticates to the target as `access`'s user) and may raise
    its KeyConflict: a key with different values on both sides stops the run. `keep_going` is
    asked before each kind and each chunk of moves; once it says no, the rest is counted
    "stopped". `may_move` is asked before each chunk of moves between one pair of masters.
    Moves left without an outcome are counted "stopped"."""
    counts: dict[str, int] = {}
    for kind in STEP_ORDER:
        batch = [a for a in actions if isinstance(a, kind)]
        if not batch:
            continue
        if not keep_going():
            counts["stopped"] = counts.get("stopped", 0) + len(batch)
            continue
        if kind is MoveSlot:
            moves = [a for a in batch if isinstance(a, MoveSlot)]
            moved = move_slots(
                moves,
                clients,
                naming,
                access,
                keep_going,
                may_move=may_move,
                parallelism=move_parallelism,
            )
            outcomes: dict[Action, str] = dict(moved.items())
            if len(moved) < len(moves):
                counts["stopped"] = counts.get("stopped", 0) + len(moves) - len(moved)
        elif kind is Reset:
            resets = [a for a in batch if isinstance(a, Reset)]
            outcomes = dict(reset_nodes(resets, clients, naming).items())
        else:
            outcomes = run_batch(batch, clients, naming)
        for action, outcome in outcomes.items():
            counts[outcome] = counts.get(outcome, 0) + 1
            # A move logs itself (slot_moved, with its keys), progress included.
            if outcome == "done" and kind is not MoveSlot:
                log.info(STEP_NAMES[kind], **describe(action, naming))
        tally = list(outcomes.values())
        log.info(
            "step_applied",
            step=STEP_NAMES[kind],
            count=len(batch),
            done=tally.count("done"),
            already_done=tally.count("already_done"),
            not_yet=tally.count("not_yet"),
            failed=tally.count("failed"),
        )
    return counts


def run_batch(
    batch: Sequence[Action], clients: dict[int, redis.Redis], naming: PodNaming
) -> dict[Action, str]:
    """Send a batch to all its nodes at once; steps answered "not yet" are retried for
    RETRY_SECONDS, then left to the next round."""
    outcomes: dict[Action, str] = {}
    pending = list(batch)

    def attempt() -> bool:
        # One pipeline per node: a second connection to a node would need its own AUTH round
        # trip, and a busy node makes those add up to seconds.
        by_node: dict[int, list[Action]] = {}
        for action in pending:
            by_node.setdefault(action.ordinal, []).append(action)
        calls = [(clients[o], [command_for(a) for a in acts]) for o, acts in by_node.items()]
        for acts, result in zip(by_node.values(), scatter(calls), strict=True):
            for index, action in enumerate(acts):
                reply = result if isinstance(result, Exception) else result[index]
                outcomes[action] = outcome_of(action, reply, naming)
        pending[:] = [a for a in pending if outcomes[a] == "not_yet"]
        return not pending

    with contextlib.suppress(WaitTimeout):
        wait_until(
            attempt,
            timeout=RETRY_SECONDS,
            what="steps answered 'not yet'",
            interval=max(RETRY_PAUSE_SECONDS, len(batch) * RETRY_PAUSE_PER_STEP_SECONDS),
        )
    return outcomes


def describe(action: Action, naming: PodNaming) -> dict[str, object]:
    """Event fields for one step, pod context first."""
    fields: dict[str, object] = {"pod": naming.pod_name(action.ordinal)}
    match action:
        case Forget(node_id=node_id, pod=pod):
            fields.update(forgotten_node=node_id, forgotten_pod=naming.pod_name(pod))
        case Reset(node_id=node_id):
            fields["node"] = node_id
        case SetConfigEpoch(epoch=epoch):
            fields["epoch"] = epoch
        case AddSlots(ranges=ranges):
            fields["slots"] = ",".join(str(r) for r in ranges)
        case Meet(target=target, ip=ip, port=port):
            fields.update(peer=naming.pod_name(target), peer_address=f"{ip}:{port}")
        case (
            Replicate(master=master, master_id=master_id)
            | Failover(master=master, master_id=master_id)
        ):
            fields.update(master=naming.pod_name(master), master_node=master_id)
        case CloseSlot(slot=slot):
            fields["slot"] = slot
        case SetSlotNode(slot=slot, owner=owner, owner_id=owner_id):
            fields.update(slot=slot, owner=naming.pod_name(owner), owner_node=owner_id)
    return fields

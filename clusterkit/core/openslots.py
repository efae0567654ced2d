"""Open slots: slots a master left MIGRATING or IMPORTING (a resize interrupted by a crash, a
`redis-cli --cluster reshard` killed midway). They block every later change, so the Job closes
them first, the way `redis-cli --cluster fix` does, and never drops a key:

- the owner migrates the slot to a master that imports it or already holds some of its keys:
  finish the move (every key to the target, then the target owns it);
- otherwise the owner keeps the slot: keys another master holds in it go to the owner, and every
  node that has the slot open is set STABLE (and told the owner).

Pure: a function of the observed PodStates, whose `slot_keys` must count the open slots.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

from clusterkit.core.model import Action, CloseSlot, MoveSlot, PodState, SetSlotNode
from clusterkit.core.slots import SlotRange

# Redis writes `[slot->-target-id]` (migrating) and `[slot-<-source-id]` (importing).
MIGRATION_RE = re.compile(r"^\[(\d+)(->-|-<-)([0-9a-f]{40})\]$")
HOW_TO_FIX = "close it by hand (redis-cli --cluster fix, or CLUSTER SETSLOT), then rerun the Job"


@dataclass(frozen=True)
class OpenState:
    """One master's open state for one slot, from its own (`myself`) line."""

    slot: int
    migrating: bool
    """True for `[slot->-peer]` (gives the slot away), False for `[slot-<-peer]` (receives it)."""
    peer: str
    """The node id on the other side."""


def open_states(pod: PodState) -> Mapping[int, OpenState]:
    """Slot -> open state on this pod; entries in another format are not Redis's and ignored."""
    return parse_migrations(pod.me.migrations)


@functools.lru_cache(maxsize=256)
def parse_migrations(migrations: tuple[str, ...]) -> Mapping[int, OpenState]:
    # Cached: closing N open slots asks every master about each of them, and a move cut short
    # under load leaves hundreds open (parsing them per slot took seconds per round).
    states: dict[int, OpenState] = {}
    for text in migrations:
        match = MIGRATION_RE.match(text)
        if match:
            slot = int(match[1])
            states[slot] = OpenState(slot, match[2] == "->-", match[3])
    return MappingProxyType(states)


def open_slots(pods: Sequence[PodState]) -> set[int]:
    """Slots some master has open. Replicas are skipped: they refuse SETSLOT, and what they show
    is their master's (Valkey 8 replicates SETSLOT) or nothing (Redis closes every slot of a
    master that becomes a replica)."""
    return {slot for pod in pods if pod.me.is_master for slot in open_states(pod)}


def as_if_closed(pods: Sequence[PodState]) -> list[PodState]:
    """The pods as they would be with every open slot closed where it is owned now: what the
    plan of the steps that touch no slot (a replaced pod's rejoin) is made from."""
    return [
        replace(
            p,
            nodes=tuple(
                replace(n, migrations=()) if n.is_myself and n.migrations else n for n in p.nodes
            ),
        )
        if p.me.migrations
        else p
        for p in pods
    ]


def close_open_slots(pods: Sequence[PodState]) -> tuple[Action, ...] | str:
    """The steps that close every open slot, or why that can't be done safely (a refusal)."""
    actions: list[Action] = []
    for slot in sorted(open_slots(pods)):
        fix = close_slot(slot, sorted(pods, key=lambda p: p.ordinal))
        if isinstance(fix, str):
            return fix
        actions.extend(fix)
    return tuple(actions)


def covers(ranges: Sequence[SlotRange], slot: int) -> bool:
    return any(r.start <= slot <= r.end for r in ranges)


@dataclass(frozen=True)
class SlotFacts:
    """What the masters say about one open slot."""

    slot: int
    masters: list[PodState]
    """Every master, by ordinal."""
    opened: dict[str, OpenState]
    """Node id -> its open state, for the masters that have the slot open."""
    keys: dict[str, int]
    """Node id -> keys it holds in the slot."""
    claimants: list[PodState]
    """Masters whose own line lists the slot."""

    def is_open(self, pod: PodState) -> bool:
        return pod.node_id in self.opened

    def has_keys(self, pod: PodState) -> bool:
        return self.keys[pod.node_id] > 0

    def refuse(self, why: str) -> str:
        return f"slot {self.slot} is open ({describe(self.masters, self.opened)}) {why}"


def close_slot(slot: int, pods: Sequence[PodState]) -> list[Action] | str:
    """Steps that close one open slot, or a refusal. `pods` sorted by ordinal."""
    masters = [p for p in pods if p.me.is_master]
    uncounted = [p.pod for p in masters if slot not in p.slot_keys]
    if uncounted:
        return f"slot {slot} is open but its keys were not counted on {', '.join(uncounted)}"
    facts = SlotFacts(
        slot,
        masters,
        opened={p.node_id: s for p in masters if (s := open_states(p).get(slot))},
        keys={p.node_id: p.slot_keys[slot] for p in masters},
        claimants=[p for p in masters if covers(p.me.slots, slot)],
    )
    if not facts.claimants:
        named = sorted(
            {n.node_id for p in pods for n in p.nodes if n.is_master and covers(n.slots, slot)}
        )
        return facts.refuse(
            "but no reachable master owns it"
            + (f"; the cluster names {', '.join(named)} as its owner" if named else "")
            + f": its keys may be on a node that is down. Bring that node back, or {HOW_TO_FIX}"
        )
    # Two claimants: the higher config epoch wins in Redis too (a move's SETSLOT NODE bumps the
    # target's epoch), so the other one's claim is stale; equal epochs leave no safe choice.
    top = max(p.me.config_epoch for p in facts.claimants)
    leaders = [p for p in facts.claimants if p.me.config_epoch == top]
    if len(leaders) > 1:
        return facts.refuse(
            f"and {', '.join(p.pod for p in leaders)} all claim it with config epoch {top}:"
            f" no owner can be chosen safely; {HOW_TO_FIX}"
        )
    owner = leaders[0]
    stale = [p for p in facts.claimants if p is not owner]
    if any(facts.has_keys(p) for p in stale):
        return facts.refuse(
            f"and {owner.pod} owns it, but {', '.join(p.pod for p in stale)} still claim it"
            f" and hold keys of it; {HOW_TO_FIX}"
        )
    state = facts.opened.get(owner.node_id)
    by_id = {p.node_id: p for p in masters}
    target = by_id.get(state.peer) if state and state.migrating else None
    if target is not None and target is not owner:
        target_state = facts.opened.get(target.node_id)
        if (target_state and not target_state.migrating) or facts.has_keys(target):
            return finish_move(facts, owner, target, stale)
    return keep_owner(facts, owner, stale)


def finish_move(
    facts: SlotFacts, owner: PodState, target: PodState, stale: list[PodState]
) -> list[Action] | str:
    """The owner migrates the slot to `target`, which imports it or holds some of its keys:
    move the rest, make the target the owner, set the slot STABLE on the other open nodes."""
    bystanders = [p for p in facts.masters if p not in (owner, target)]
    strays = [p.pod for p in bystanders if facts.has_keys(p)]
    if strays:
        return facts.refuse(f"and {', '.join(strays)} also hold keys of it: {HOW_TO_FIX}")
    if target in stale:
        # SETSLOT IMPORTING would fail there ("already the owner"); not a state a move leaves.
        return facts.refuse(f"and its target {target.pod} claims it too: {HOW_TO_FIX}")
    return [
        move(
            facts.slot, owner, target, handover=True, announce=tuple(p.ordinal for p in bystanders)
        ),
        *(CloseSlot(p.ordinal, facts.slot) for p in bystanders if facts.is_open(p)),
    ]


def keep_owner(facts: SlotFacts, owner: PodState, stale: list[PodState]) -> list[Action]:
    """No move to finish: every open node holding no keys it does not own is set STABLE (the
    owner first of all: a MIGRATING owner answers the keys sent back to it with ASK), keys held
    by other masters go to the owner (each such move ends with STABLE on the holder), and the
    nodes that had the slot open are told the owner."""
    others = [p for p in facts.masters if p is not owner]
    holders = [p for p in others if facts.has_keys(p)]
    actions: list[Action] = [move(facts.slot, p, owner, handover=False) for p in holders]
    actions += [
        CloseSlot(p.ordinal, facts.slot)
        for p in facts.masters
        if facts.is_open(p) and p not in holders
    ]
    actions += [
        SetSlotNode(p.ordinal, facts.slot, owner.ordinal, owner.node_id)
        for p in others
        if p not in holders and (facts.is_open(p) or p in stale)
    ]
    return actions


def move(
    slot: int,
    source: PodState,
    target: PodState,
    *,
    handover: bool,
    announce: tuple[int, ...] = (),
) -> MoveSlot:
    return MoveSlot(
        ordinal=source.ordinal,
        slot=slot,
        target=target.ordinal,
        source_id=source.node_id,
        target_id=target.node_id,
        source_ip=source.ip,
        source_port=source.port,
        target_ip=target.ip,
        target_port=target.port,
        handover=handover,
        announce=announce,
    )


def describe(masters: Sequence[PodState], opened: dict[str, OpenState]) -> str:
    """`migrating on redis-0 to redis-3, importing on redis-3 from redis-0` (ids when unknown)."""
    names = {p.node_id: p.pod for p in masters}
    parts = []
    for pod in masters:
        state = opened.get(pod.node_id)
        if state:
            peer = names.get(state.peer, state.peer)
            way = "migrating on {} to {}" if state.migrating else "importing on {} from {}"
            parts.append(way.format(pod.pod, peer))
    return ", ".join(parts)

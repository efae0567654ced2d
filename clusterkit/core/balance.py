"""Which slots move where when masters are added or leave: every staying master ends with its
even share, as `redis-cli --cluster rebalance` aims for, and a leaving one with none. Pure: a
function of who owns what now, and stable under its own progress: with any of its moves done,
it plans exactly the others. So a rerun after a crash, and a second Job observing halfway
through the first one's moves, send every slot to the same target (two targets for one slot
would split its keys between them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clusterkit.core.model import PodState
from clusterkit.core.slots import even_split


@dataclass(frozen=True)
class SlotMove:
    """One slot, from the master that owns it to the one that should."""

    slot: int
    source: int
    """Ordinal of the master giving the slot."""
    target: int
    """Ordinal of the master receiving it."""


TOLERANCE = 0.01
"""A cluster whose masters all own their share within 1% is balanced: nothing moves."""


def shares(masters: Sequence[PodState]) -> dict[int, int]:
    """Master ordinal -> the number of slots it should own: the even split's counts (which
    differ by one at most) by ordinal, as a fresh cluster has them; never by how many a master
    owns now, which changes as moves progress."""
    counts = [r.count for r in even_split(len(masters))]
    ordered = sorted(masters, key=lambda p: p.ordinal)
    return {m.ordinal: count for m, count in zip(ordered, counts, strict=True)}


def balance_moves(masters: Sequence[PodState], leaving: Sequence[PodState] = ()) -> list[SlotMove]:
    """The moves that give every master its share and every `leaving` master (scale in) none, or
    no moves when all are within TOLERANCE and nothing leaves. Each donor gives the highest of
    its slots, lowest of those first; donors and receivers go by ordinal, receivers taking
    consecutive runs of the donors' slots in turn. Done moves leave exactly the other moves to
    plan (each done slot came out of its receiver's own run). Slots nobody owns are not moves
    (the plan assigns those with ADDSLOTS)."""
    want = {**shares(masters), **{m.ordinal: 0 for m in leaving}}
    owned = {
        m.ordinal: sorted(s for r in m.me.slots for s in r.slots()) for m in [*masters, *leaving]
    }
    spare = {o: len(owned[o]) - want[o] for o in owned}
    if all(abs(spare[o]) <= want[o] * TOLERANCE for o in owned):
        return []
    donors = sorted(o for o in spare if spare[o] > 0)
    giving = {o: owned[o][len(owned[o]) - spare[o] :][::-1] for o in donors}
    moves: list[SlotMove] = []
    for receiver in sorted(o for o in spare if spare[o] < 0):
        needed = -spare[receiver]
        for donor in donors:
            while needed and giving[donor]:
                moves.append(SlotMove(giving[donor].pop(), donor, receiver))
                needed -= 1
    return moves

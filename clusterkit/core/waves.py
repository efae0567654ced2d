"""Which slot moves may run at the same time. Pure.

A target's `SETSLOT NODE` bumps its config epoch (Redis does so for a node that was importing
the slot). If that node is at the same moment the source of another move, it still claims the
slot it is giving away, now with the highest epoch: gossip hands that slot back to it, and the
node that had just received it drops the slot's keys as "dirty" (Redis deletes keys in a slot
it loses while it owns others). Moves therefore run in waves: within a wave no master is both a
source and a target, and each wave ends before the next begins.
"""

from __future__ import annotations

from collections.abc import Sequence

from clusterkit.core.model import MoveSlot

Pair = tuple[int, int]
"""(source ordinal, target ordinal)."""


def move_waves(moves: Sequence[MoveSlot]) -> list[dict[Pair, list[MoveSlot]]]:
    """The moves grouped by source/target pair, and the pairs in waves: each pair, in order of
    first appearance, joins the first wave in which its source is nobody's target and its
    target nobody's source. A scale out or in is one wave (no master both gives and takes)."""
    by_pair: dict[Pair, list[MoveSlot]] = {}
    for move in moves:
        by_pair.setdefault((move.ordinal, move.target), []).append(move)
    waves: list[dict[Pair, list[MoveSlot]]] = []
    for pair, group in by_pair.items():
        source, target = pair
        for wave in waves:
            sources = {s for s, _ in wave}
            targets = {t for _, t in wave}
            if source not in targets and target not in sources:
                wave[pair] = group
                break
        else:
            waves.append({pair: group})
    return waves

"""Open slots are closed only once they stand still. Another Job may be moving them right now
(two Jobs at once, or a rerun beside a Job still running): its slots are open for a moment
with the target importing and the source not yet migrating, and closing them then would undo
its move halfway (measured on Valkey 8: two scale-in Jobs, one closing the other's slots, left
544 slots without an owner). A Job that died leaves its open slots as they were."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from clusterkit.core.model import PodState
from clusterkit.core.openslots import open_states

SETTLE_SECONDS = 3.0
"""How long open slots must show the same states and key counts before the Job closes them."""

Signature = tuple[tuple[int, str, int], ...]


def signature(pods: Sequence[PodState], slots: set[int]) -> Signature:
    """Every master's open state and key count in `slots`: what a running move changes."""
    return tuple(
        sorted(
            (p.ordinal, repr(open_states(p).get(slot)), p.slot_keys.get(slot, -1))
            for p in pods
            if p.me.is_master
            for slot in slots
        )
    )


@dataclass
class OpenSlotWatch:
    """Since when the open slots have looked the same."""

    seen: Signature = ()
    since: float = field(default_factory=time.monotonic)

    def settled(self, pods: Sequence[PodState], slots: set[int]) -> bool:
        now = time.monotonic()
        current = signature(pods, slots)
        if current != self.seen:
            self.seen, self.since = current, now
        return bool(slots) and now - self.since >= SETTLE_SECONDS

"""Carrying out a plan's steps under the Job's lease, and what a key conflict tells the user."""

from __future__ import annotations

import redis

from bootstrap.errors import RefusedUnsafe
from bootstrap.lease import JobLease
from bootstrap.stopping import StoppingPods
from clusterkit.core.naming import PodNaming
from clusterkit.core.plan import Plan
from clusterkit.io.access import Access
from clusterkit.io.apply import apply_actions
from clusterkit.io.keycopies import KeyConflict
from clusterkit.io.migrate import MOVE_THREADS


def carry_out(
    plan: Plan,
    clients: dict[int, redis.Redis],
    naming: PodNaming,
    access: Access | None,
    lease: JobLease,
    *,
    stopping: StoppingPods | None = None,
    move_parallelism: int = MOVE_THREADS,
) -> bool:
    """The plan's steps, while this Job holds the lease; whether some step was not done."""
    try:
        with lease.carrying_out():
            counts = apply_actions(
                plan.actions,
                clients,
                naming,
                access=access,
                keep_going=lease.keep_going,
                may_move=stopping.may_move if stopping else lambda move: True,
                move_parallelism=move_parallelism,
            )
    except KeyConflict as conflict:
        raise RefusedUnsafe(conflict_message(conflict)) from None
    return bool(counts.get("failed") or counts.get("not_yet") or counts.get("stopped"))


def conflict_message(conflict: KeyConflict) -> str:
    return (
        f"{conflict}: the Job moves a key only when both copies are the same, so it left both"
        f" copies and slot {conflict.slot} open (no key was dropped). Decide which value is"
        " right and delete the other copy (on a node importing the slot, send ASKING before"
        " DEL), then rerun the Job"
    )

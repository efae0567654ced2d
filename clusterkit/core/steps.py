"""Which of a plan's steps a pod's sidecar carries out: the Job carries out all of them; a
sidecar only those that are its own, so that sidecars never run one step twice."""

from __future__ import annotations

from collections.abc import Collection

from clusterkit.core.model import Action, Forget
from clusterkit.core.plan import Plan


def steps_for(
    plan: Plan, ordinal: int, *, old_ids: Collection[str] = (), serving: bool = False
) -> tuple[Action, ...]:
    """The steps pod `ordinal` carries out: the FORGETs of its own old identities on every node
    that lists them (no other sidecar knows they were this pod's), and, until it serves, its own
    other steps (MEET, REPLICATE, ...). Once it serves, its role is settled: a step the plan
    gives it then (a new master to follow, say) is the Job's to carry out."""
    return tuple(
        action
        for action in plan.actions
        if (isinstance(action, Forget) and action.node_id in old_ids)
        or (not isinstance(action, Forget) and action.ordinal == ordinal and not serving)
    )

"""Why a plan waits or refuses, as data: a kind that callers act on, the nodes and pods it
concerns, and the sentence for people, built from them where the planner decides.

Callers choose by kind and by node id (the sidecar shows a replaced pod only the waits that
concern its old identities), never by matching words in the sentence."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum

from clusterkit.core.model import PodState


class Kind(StrEnum):
    """Every reason the planner gives."""

    # The plan waits for Redis or for steps in flight:
    GHOST_CONNECTED = "ghost_connected"
    """An old identity still looks connected to some node: not flagged failing yet."""
    GHOST_PROMOTION = "ghost_promotion"
    """A dead old identity owns slots: Redis promotes its replica first."""
    LOST_UNFLAGGED = "lost_unflagged"
    """A lost shard's owner is not flagged fail everywhere yet."""
    LOST_COUNTING = "lost_counting"
    """The keys in the lost slots are not counted yet."""
    LEAVING_SLOTS = "leaving_slots"
    """Leaving pods still own slots."""
    LEAVING_FOLLOWERS = "leaving_followers"
    """Staying replicas still follow a leaving master."""
    LEAVING_KEYS = "leaving_keys"
    """A leaving pod still holds keys that exist nowhere else."""
    REPLICAS_SYNC = "replicas_sync"
    """Staying replicas sync before leaving ones are reset."""
    TAKEOVER = "takeover"
    """Staying replicas take over from leaving masters."""
    SPARE = "spare"
    """Spare replicas are emptied, then become masters."""
    SURPLUS = "surplus"
    """Surplus masters give their slots away, then follow a master."""
    STRANGERS = "strangers"
    """Masters do not all know each other yet: slots move after."""
    NOT_OK = "not_ok"
    """A master of a move does not see cluster_state ok yet."""
    # The plan refuses, changing nothing:
    PODS_MISSING = "pods_missing"
    SAME_NODE_ID = "same_node_id"
    DATA_OUTSIDE = "data_outside"
    TWO_CLUSTERS = "two_clusters"
    FOREIGN_NODE = "foreign_node"
    SHAPE_UNREACHABLE = "shape_unreachable"
    OPEN_SLOT = "open_slot"
    """An open slot that no rule closes safely (keys on both sides, uncounted keys)."""
    LOST_SHARD = "lost_shard"
    LOST_SLOT_KEYS = "lost_slot_keys"
    """Lost slots to reassign while some node holds keys in them."""


@dataclass(frozen=True)
class Reason:
    kind: Kind
    sentence: str
    """What people read: in logs, /readyz, the Job's error."""
    nodes: tuple[str, ...] = ()
    """Node ids this reason is about."""
    pods: tuple[str, ...] = ()
    """Pod names this reason is about."""

    def __str__(self) -> str:
        return self.sentence

    def concerns(self, node_ids: Collection[str]) -> bool:
        return any(node in node_ids for node in self.nodes)


def about_pods(kind: Kind, sentence: str, pods: Sequence[PodState]) -> Reason:
    """A reason about these pods (their current nodes)."""
    return Reason(
        kind, sentence, nodes=tuple(p.node_id for p in pods), pods=tuple(p.pod for p in pods)
    )


def sentences(reasons: Collection[Reason]) -> list[str]:
    return [reason.sentence for reason in reasons]

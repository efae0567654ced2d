"""What the Job observed of each pod, and the steps it can take: plain data, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from clusterkit.core.nodes import NodeLine, myself
from clusterkit.core.slots import SlotRange


@dataclass(frozen=True)
class PodState:
    """One pod as observed in one round: its address and what its Redis reported."""

    ordinal: int
    pod: str
    ip: str
    port: int
    nodes: tuple[NodeLine, ...]
    """This node's `CLUSTER NODES` view."""
    info: dict[str, str] = field(default_factory=dict)
    """`CLUSTER INFO` fields (cluster_state, cluster_known_nodes, cluster_current_epoch, ...)."""
    keys: int = 0
    master_link_up: bool | None = None
    """For replicas: INFO replication's master_link_status is `up`; None for masters."""
    fqdn: str = ""
    """The pod's DNS name, which its Redis announces as hostname (so its old identities too)."""
    slot_keys: Mapping[int, int] = field(default_factory=dict)
    """Keys this node holds per slot, observed only for slots that need a decision (open or
    lost slots); a slot missing here was not counted."""

    @cached_property
    def me(self) -> NodeLine:
        return myself(list(self.nodes))

    @property
    def node_id(self) -> str:
        return self.me.node_id

    @property
    def cluster_ok(self) -> bool:
        return self.info.get("cluster_state") == "ok"

    @property
    def current_epoch(self) -> int:
        return int(self.info.get("cluster_current_epoch", "0"))

    def view_of(self, node_id: str) -> NodeLine | None:
        """How this node sees `node_id` (None when it does not know it, or only in handshake)."""
        for line in self.nodes:
            if line.node_id == node_id and not line.is_handshake:
                return line
        return None

    def knows(self, other: PodState) -> bool:
        """Knows `other` by id at its current address (a handshake there counts: one is running)."""
        if other.node_id == self.node_id:
            return True
        for line in self.nodes:
            at_address = line.address.ip == other.ip and line.address.port == other.port
            if line.is_handshake and at_address:
                return True
            if line.node_id == other.node_id and at_address and "noaddr" not in line.flags:
                return True
        return False


@dataclass(frozen=True)
class SetConfigEpoch:
    """`CLUSTER SET-CONFIG-EPOCH` on a fresh master, so masters never start with equal epochs."""

    ordinal: int
    epoch: int


@dataclass(frozen=True)
class AddSlots:
    """`CLUSTER ADDSLOTSRANGE` on a master for slots nobody owns yet."""

    ordinal: int
    ranges: tuple[SlotRange, ...]


@dataclass(frozen=True)
class Meet:
    """`CLUSTER MEET ip port bus-port` sent to pod `ordinal`, introducing pod `target`."""

    ordinal: int
    target: int
    ip: str
    port: int
    bus_port: int


@dataclass(frozen=True)
class Replicate:
    """`CLUSTER REPLICATE master-id` on pod `ordinal`."""

    ordinal: int
    master: int
    master_id: str


@dataclass(frozen=True)
class Failover:
    """Plain `CLUSTER FAILOVER` on replica `ordinal`: it takes over from its master, which
    pauses its clients until the replica has every write, so no acknowledged write is lost
    (a layout repair; Redis gives up after 5 s and changes nothing then)."""

    ordinal: int
    master: int
    """The master it takes over from."""
    master_id: str


@dataclass(frozen=True)
class Forget:
    """`CLUSTER FORGET node_id` on pod `ordinal`: drop a replaced pod's old identity."""

    ordinal: int
    node_id: str
    pod: int
    """The pod this identity belonged to."""


@dataclass(frozen=True)
class Reset:
    """`CLUSTER RESET HARD` on pod `ordinal`, leaving the cluster (scale in): it forgets every
    node and becomes an empty master of its own. Redis refuses it on a master holding keys.
    Hard, so that it gets a new id: the staying nodes refuse to relearn a forgotten id by
    gossip for 60 s, which would stall a scale out soon after with this pod's volume."""

    ordinal: int
    node_id: str
    """Its id until the reset."""


@dataclass(frozen=True)
class MoveSlot:
    """Move one slot's keys from pod `ordinal` (the source) to pod `target` with MIGRATE.

    With `handover` the slot changes owner, as `redis-cli --cluster reshard` moves it: IMPORTING
    on the target, MIGRATING on the source, every key, then `SETSLOT NODE target` on the target,
    the source, and the masters in `announce`. Without it the target already owns the slot and
    only stray keys go home: the slot is opened on the source (IMPORTING, so that MIGRATE runs
    there), emptied, set STABLE and assigned to the target. Every step may be repeated: a crash
    at any point leaves at most open slots, which the next round closes."""

    ordinal: int
    """The source pod."""
    slot: int
    target: int
    """The target pod."""
    source_id: str
    target_id: str
    source_ip: str
    source_port: int
    target_ip: str
    """Where the source sends MIGRATE to."""
    target_port: int
    handover: bool = True
    """True: the slot's owner becomes the target. False: the target owns it already."""
    announce: tuple[int, ...] = ()
    """Other masters told the slot's owner last (`SETSLOT NODE`), so they redirect at once."""


@dataclass(frozen=True)
class CloseSlot:
    """`CLUSTER SETSLOT slot STABLE` on pod `ordinal`: it owns the slot or holds no keys in it."""

    ordinal: int
    slot: int


@dataclass(frozen=True)
class SetSlotNode:
    """`CLUSTER SETSLOT slot NODE owner_id` on pod `ordinal`, which still names another owner."""

    ordinal: int
    slot: int
    owner: int
    """The owner's pod."""
    owner_id: str


Action = (
    Forget
    | Reset
    | MoveSlot
    | CloseSlot
    | SetSlotNode
    | SetConfigEpoch
    | AddSlots
    | Meet
    | Replicate
    | Failover
)

# The order steps run in within a round: slots before MEET, so that Redis's rejoin delay (a master
# is writable only ~5 s after it last saw itself in a minority) runs while the rest is done.
# Forgets first: a replaced pod's old identity must be gone before its new one joins. Open slots
# are closed in a round of their own (see core.openslots): STABLE first (a MIGRATING owner
# would answer the keys sent back to it with ASK; CloseSlot never targets a node holding keys it
# does not own), then the keys move, and a node is told the owner last (SETSLOT NODE alone leaves
# IMPORTING set). A leaving node is reset right after the staying ones forget it, so that it
# can't introduce itself to them again (see clusterkit.core.drain).
STEP_ORDER: tuple[type[Action], ...] = (
    Forget,
    Reset,
    CloseSlot,
    MoveSlot,
    SetSlotNode,
    AddSlots,
    SetConfigEpoch,
    Meet,
    Replicate,
    Failover,
)
STEP_NAMES: dict[type[Action], str] = {
    Forget: "forget",
    Reset: "reset",
    MoveSlot: "move_slot",
    CloseSlot: "close_slot",
    SetSlotNode: "set_slot_owner",
    SetConfigEpoch: "set_config_epoch",
    AddSlots: "assign_slots",
    Meet: "meet",
    Replicate: "replicate",
    Failover: "failover",
}

"""What the Job observed of each pod, and the steps it can take: plain data, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from clusterkit.nodes import NodeLine, myself
from clusterkit.slots import SlotRange


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
class Forget:
    """`CLUSTER FORGET node_id` on pod `ordinal`: drop a replaced pod's old identity."""

    ordinal: int
    node_id: str
    pod: int
    """The pod this identity belonged to."""


Action = Forget | SetConfigEpoch | AddSlots | Meet | Replicate

# The order steps run in within a round: slots before MEET, so that Redis's rejoin delay (a master
# is writable only ~5 s after it last saw itself in a minority) runs while the rest is done.
# Forgets first: a replaced pod's old identity must be gone before its new one joins.
STEP_ORDER: tuple[type[Action], ...] = (Forget, AddSlots, SetConfigEpoch, Meet, Replicate)
STEP_NAMES: dict[type[Action], str] = {
    Forget: "forget",
    SetConfigEpoch: "set_config_epoch",
    AddSlots: "assign_slots",
    Meet: "meet",
    Replicate: "replicate",
}

"""Test data for the pure unit tests: node lines, PodStates, and a simulated cluster.

`SimCluster` keeps the truth about every node (role, epochs, slots, which nodes it knows) and
renders each node's `CLUSTER NODES` view as text, which the product parser reads back. Applying a
plan's actions follows what Redis does with each command, in pure Python:

- SET-CONFIG-EPOCH: only on a node that knows nobody else and has epoch 0, else Redis errors;
- ADDSLOTSRANGE: errors when a slot already has an owner in that node's view;
- MEET: both nodes know each other, and gossip then makes the two groups one (all know all);
- FORGET: errors for the node itself or its own master; an id it does not know is a no-op
  (Redis says "Unknown node", which the Job counts as done);
- REPLICATE: "Unknown node" while the node does not know the master yet (clusterkit.io.apply
  retries that briefly, then leaves it to the next round: here it is recorded in `not_yet` and
  has no effect); errors unless the master is a master and not the node itself, and the node is
  empty; then the node is a replica (`slave` flag, master id) in everyone's view.

Any other command Redis would reject raises `Rejected`, so a property test fails when the plan
asks for something impossible.
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter
from dataclasses import dataclass, field, replace

from clusterkit.core.converge import waiting_for
from clusterkit.core.ghosts import LostSlots, find_ghosts, lost_slot_set
from clusterkit.core.model import (
    STEP_ORDER,
    Action,
    AddSlots,
    Failover,
    Forget,
    Meet,
    MoveSlot,
    PodState,
    Replicate,
    Reset,
    SetConfigEpoch,
)
from clusterkit.core.naming import PodNaming
from clusterkit.core.nodes import NodeLine, parse_node_line
from clusterkit.core.plan import Plan, Shape, make_plan
from clusterkit.core.slots import SLOT_COUNT, SlotRange, compact

PORT = 6379
BUS_PORT = 16379
FIXED_POINT_ROUNDS = 10


def node_id(seed: object) -> str:
    """A stable, realistic 40-hex node id."""
    return hashlib.blake2b(repr(seed).encode(), digest_size=20).hexdigest()


def pod_ip(ordinal: int) -> str:
    return f"10.1.{ordinal // 250}.{ordinal % 250 + 1}"


def node_line(
    nid: str,
    address: str = f"10.0.0.1:{PORT}@{BUS_PORT}",
    flags: str = "master",
    *,
    master: str = "-",
    config_epoch: int = 0,
    link: str = "connected",
    slots: str = "",
    ping: int = 0,
    pong: int = 0,
) -> str:
    """One node line in the CLUSTER NODES grammar."""
    line = f"{nid} {address} {flags} {master} {ping} {pong} {config_epoch} {link}"
    return f"{line} {slots}" if slots else line


@functools.lru_cache(maxsize=200_000)
def parsed(line: str) -> NodeLine:
    """Parse once: in a simulated cluster every peer renders the same line for a node."""
    return parse_node_line(line)


def pod_state(
    ordinal: int,
    lines: list[str],
    *,
    ip: str | None = None,
    keys: int = 0,
    info: dict[str, str] | None = None,
    master_link_up: bool | None = None,
) -> PodState:
    return PodState(
        ordinal=ordinal,
        pod=f"redis-{ordinal}",
        fqdn=f"redis-{ordinal}",
        ip=pod_ip(ordinal) if ip is None else ip,
        port=PORT,
        nodes=tuple(parsed(line) for line in lines),
        info={} if info is None else info,
        keys=keys,
        master_link_up=master_link_up,
    )


NAMING = PodNaming("redis", "redis-headless", "default")
"""Names the pods' hostnames (`redis-N`) by ordinal, as the Job does for removed pods."""


class Rejected(AssertionError):
    """Redis would answer this command with an error."""


@dataclass
class SimNode:
    ordinal: int
    node_id: str
    ip: str
    master_id: str | None = None
    config_epoch: int = 0
    current_epoch: int = 0
    slots: set[int] = field(default_factory=set)
    keys: int = 0
    known: set[str] = field(default_factory=set)
    """Ids of the other nodes this one knows."""
    extra_lines: list[str] = field(default_factory=list)
    """Lines added verbatim to this node's view (handshakes, foreign nodes)."""
    dead: bool = False
    """A replaced pod's old identity: peers show it `fail` and disconnected."""


class SimCluster:
    """A simulated StatefulSet of Redis nodes."""

    def __init__(self, size: int, seed: object = 0) -> None:
        self.seed = seed
        self.nodes = [SimNode(i, node_id((seed, i)), pod_ip(i)) for i in range(size)]
        self.by_id = {n.node_id: n for n in self.nodes}
        """Every node ever, old identities of replaced pods included."""
        self.not_yet: list[int] = []
        """Ordinals whose REPLICATE was answered "Unknown node"."""

    @property
    def size(self) -> int:
        return len(self.nodes)

    # --- rendering ---------------------------------------------------------------------------

    def line(self, node: SimNode, me: bool) -> str:
        ip = node.ip if (node.known or not me) else ""  # a fresh node does not know its own IP
        role = "slave" if node.master_id else "master"
        return node_line(
            node.node_id,
            address=f"{ip}:{PORT}@{BUS_PORT},redis-{node.ordinal}",
            flags=f"myself,{role}" if me else role + ",fail" * node.dead,
            master=node.master_id or "-",
            config_epoch=node.config_epoch,
            link="disconnected" if node.dead else "connected",
            slots=" ".join(str(r) for r in compact(node.slots)),
        )

    def view(self, viewer: SimNode) -> list[SimNode]:
        return [viewer, *(self.by_id[i] for i in sorted(viewer.known))]

    def states(self) -> list[PodState]:
        """Every node's observation; each node's line is rendered once, as all peers see it."""
        peer_line = {n.node_id: self.line(n, me=False) for n in self.by_id.values()}
        return [self.state(n, peer_line) for n in self.nodes]

    def state(self, node: SimNode, peer_line: dict[str, str] | None = None) -> PodState:
        view = self.view(node)
        covered = sum(len(n.slots) for n in view if not n.master_id)
        info = {
            "cluster_state": "ok" if covered == SLOT_COUNT else "fail",
            "cluster_known_nodes": str(len(view)),
            "cluster_current_epoch": str(node.current_epoch),
        }
        peers = [peer_line[n.node_id] if peer_line else self.line(n, me=False) for n in view[1:]]
        lines = [self.line(node, me=True), *peers, *node.extra_lines]
        link = None if node.master_id is None else node.master_id in node.known
        return pod_state(
            node.ordinal, lines, ip=node.ip, keys=node.keys, info=info, master_link_up=link
        )

    # --- commands ----------------------------------------------------------------------------

    def owners_in_view(self, node: SimNode) -> dict[int, str]:
        return {slot: n.node_id for n in self.view(node) for slot in n.slots}

    def set_config_epoch(self, node: SimNode, epoch: int) -> None:
        if node.known:
            raise Rejected(f"{node.ordinal}: the node knows other nodes")
        if node.config_epoch:
            raise Rejected(f"{node.ordinal}: config epoch is already non-zero")
        node.config_epoch = epoch
        node.current_epoch = max(node.current_epoch, epoch)

    def add_slots(self, node: SimNode, ranges: tuple[SlotRange, ...]) -> None:
        owners = self.owners_in_view(node)
        wanted = {slot for r in ranges for slot in r.slots()}
        busy = wanted & owners.keys()
        if busy:
            raise Rejected(f"{node.ordinal}: slot {min(busy)} is already busy")
        if node.master_id:
            raise Rejected(f"{node.ordinal}: a replica cannot own slots")
        node.slots |= wanted

    def meet(self, node: SimNode, ip: str, port: int, bus_port: int) -> None:
        targets = [n for n in self.nodes if n.ip == ip]
        if len(targets) != 1 or port != PORT or bus_port != BUS_PORT:
            raise Rejected(f"{node.ordinal}: nobody listens at {ip}:{port}@{bus_port}")
        group = {node.node_id, targets[0].node_id} | node.known | targets[0].known
        epoch = max(self.by_id[i].current_epoch for i in group)
        for member in group:
            self.by_id[member].known = group - {member}
            self.by_id[member].current_epoch = epoch

    def move_slot(self, source: SimNode, target: SimNode, slot: int) -> None:
        """The whole protocol at once: the target owns the slot with a new epoch (SETSLOT NODE
        bumps it), as every node then agrees."""
        if slot not in source.slots or source.master_id or target.master_id:
            raise Rejected(f"{source.ordinal}: cannot move slot {slot} to {target.ordinal}")
        if target.node_id not in source.known:
            raise Rejected(f"{source.ordinal}: I don't know about node {target.node_id}")
        source.slots.discard(slot)
        target.slots.add(slot)
        target.config_epoch = max(n.current_epoch for n in self.nodes) + 1
        for n in self.nodes:
            n.current_epoch = max(n.current_epoch, target.config_epoch)

    def forget(self, node: SimNode, forgotten: str) -> None:
        if forgotten == node.node_id:
            raise Rejected(f"{node.ordinal}: I tried hard but I can't forget myself")
        if forgotten == node.master_id:
            raise Rejected(f"{node.ordinal}: Can't forget my master!")
        node.known.discard(forgotten)

    def reset(self, node: SimNode) -> None:
        """CLUSTER RESET: refused on a master holding keys; a replica is emptied."""
        if not node.master_id and node.keys:
            raise Rejected(
                f"{node.ordinal}: CLUSTER RESET can't be called with master nodes containing keys"
            )
        if node.master_id:
            node.keys = 0
        node.master_id, node.slots, node.known = None, set(), set()

    def replicate(self, node: SimNode, master_id: str) -> None:
        master = self.by_id.get(master_id)
        if master is None or master_id not in node.known:
            self.not_yet.append(node.ordinal)  # ERR Unknown node
            return
        if master is node:
            raise Rejected(f"{node.ordinal}: can't replicate myself")
        if master.master_id:
            raise Rejected(f"{node.ordinal}: can only replicate a master, not a replica")
        if not node.master_id and (node.slots or node.keys):
            raise Rejected(f"{node.ordinal}: to set a master the node must be empty")
        node.master_id = master_id

    def apply(self, action: Action) -> None:
        node = self.nodes[action.ordinal]
        match action:
            case Forget(node_id=forgotten):
                self.forget(node, forgotten)
            case Reset():
                self.reset(node)
            case MoveSlot(slot=slot, target=target):
                self.move_slot(node, self.nodes[target], slot)
            case SetConfigEpoch(epoch=epoch):
                self.set_config_epoch(node, epoch)
            case AddSlots(ranges=ranges):
                self.add_slots(node, ranges)
            case Meet(ip=ip, port=port, bus_port=bus_port):
                self.meet(node, ip, port, bus_port)
            case Replicate(master_id=master_id):
                self.replicate(node, master_id)
            case Failover(master_id=master_id):
                if node.master_id != master_id:
                    raise Rejected(f"{node.ordinal}: not a replica of {master_id}")
                self.failover(action.ordinal)

    def apply_plan(self, plan: Plan, keep: list[bool] | None = None) -> None:
        """Run the plan's steps kind by kind, as clusterkit.io.apply does; `keep[i]` False drops
        action i (the command failed or the Job crashed before sending it)."""
        chosen = [a for i, a in enumerate(plan.actions) if keep is None or keep[i % len(keep)]]
        for kind in STEP_ORDER:
            for action in chosen:
                if isinstance(action, kind):
                    self.apply(action)
        self.check_slots_unique()

    def check_slots_unique(self) -> None:
        seen: dict[int, int] = {}
        for n in self.nodes:
            for slot in n.slots:
                assert seen.setdefault(slot, n.ordinal) == n.ordinal, f"slot {slot} owned twice"

    # --- scenarios ---------------------------------------------------------------------------

    def add_pods(self, count: int) -> None:
        """The StatefulSet scaled out: fresh pods with the next ordinals."""
        for ordinal in range(self.size, self.size + count):
            node = SimNode(ordinal, node_id((self.seed, ordinal)), pod_ip(ordinal))
            self.nodes.append(node)
            self.by_id[node.node_id] = node

    def remove_pods(self, count: int, *, dead: bool = False) -> list[SimNode]:
        """The StatefulSet scaled in: the highest ordinals go. With `dead`, peers still list them,
        failed (they were removed before being drained)."""
        removed, self.nodes = self.nodes[-count:], self.nodes[:-count]
        for node in removed:
            node.dead = dead
        return removed

    def replace(self, ordinal: int) -> SimNode:
        """The pod comes back with an empty volume: a new node at a new address; every peer
        keeps the old identity, failed."""
        old = self.nodes[ordinal]
        old.dead = True
        new = SimNode(
            ordinal, node_id((self.seed, ordinal, len(self.by_id))), f"10.9.0.{ordinal + 1}"
        )
        self.nodes[ordinal] = new
        self.by_id[new.node_id] = new
        return new

    def ghosts_listed(self) -> set[str]:
        """Old identities some live node still lists."""
        return {i for n in self.nodes for i in n.known if self.by_id[i].dead}

    def failover(self, replica_ordinal: int) -> None:
        """A replica takes over its master's slots with a new epoch; the old master and its
        other replicas follow the new master."""
        replica = self.nodes[replica_ordinal]
        assert replica.master_id is not None
        old = self.by_id[replica.master_id]
        replica.slots, old.slots = old.slots, set()
        epoch = max(n.current_epoch for n in self.nodes) + 1
        replica.config_epoch = epoch
        for n in self.by_id.values():
            n.current_epoch = epoch
            if n.master_id == old.node_id:
                n.master_id = replica.node_id
        replica.master_id = None
        old.master_id = replica.node_id


def converge(
    sim: SimCluster,
    shape: Shape,
    rounds: int = FIXED_POINT_ROUNDS,
    lost_slots: LostSlots = LostSlots.REFUSE,
) -> list[Plan]:
    """Plan -> apply until a plan has no actions; returns every plan made (the last is empty).
    Lost slots are counted as the Job does (the simulation holds no keys: zero everywhere)."""
    plans: list[Plan] = []
    for _ in range(rounds):
        states = sim.states()
        lost = lost_slot_set(find_ghosts(states, naming=NAMING)[0])
        if lost:
            states = [replace(s, slot_keys=dict.fromkeys(lost, 0)) for s in states]
        plan = make_plan(shape, states, lost_slots=lost_slots, naming=NAMING)
        plans.append(plan)
        assert plan.refusal is None, plan.refusal
        if not plan.actions:
            return plans
        sim.apply_plan(plan)
    raise AssertionError(f"no fixed point after {rounds} rounds: {plans[-1].actions[:5]}")


def formed_cluster(masters: int, replicas_per_master: int, seed: object = 0) -> SimCluster:
    """A cluster formed from fresh nodes by iterating the plan."""
    sim = SimCluster(masters * (1 + replicas_per_master), seed)
    converge(sim, Shape(sim.size, masters))
    return sim


def topology(sim: SimCluster) -> tuple[dict[int, tuple[SlotRange, ...]], dict[int, int]]:
    """Who owns which slots, and who replicates whom, by ordinal."""
    slots = {n.ordinal: tuple(compact(n.slots)) for n in sim.nodes if n.master_id is None}
    replica_of = {n.ordinal: sim.by_id[n.master_id].ordinal for n in sim.nodes if n.master_id}
    return slots, replica_of


def assert_formed(sim: SimCluster, masters: int, replicas: int) -> None:
    owner = Counter(slot for n in sim.nodes for slot in n.slots)
    assert sorted(owner) == list(range(SLOT_COUNT))
    assert set(owner.values()) == {1}
    owning = [len(n.slots) for n in sim.nodes if n.master_id is None]
    assert len(owning) == masters
    assert max(owning) - min(owning) <= 1
    followers = Counter(n.master_id for n in sim.nodes if n.master_id)
    for n in sim.nodes:
        if n.master_id is not None:
            assert n.master_id != n.node_id
            assert sim.by_id[n.master_id].master_id is None, "replica of a replica"
        else:
            assert followers[n.node_id] == replicas
    assert waiting_for(sim.states(), sim.size) == []


def shape_of(masters: int, replicas: int) -> Shape:
    return Shape(masters * (1 + replicas), masters)


def replicate_round(sim: SimCluster, shape: Shape) -> dict[int, Replicate]:
    """The Replicate steps the next plan holds, by replica ordinal."""
    plan = make_plan(shape, sim.states())
    return {a.ordinal: a for a in plan.actions if isinstance(a, Replicate)}

"""Where the simulated Kubernetes scheduler puts devcluster's pods: pure, so unit tests pin it.

The StatefulSet spreads its pods softly (topologySpreadConstraints maxSkew 1 on the zone, then
on the hostname, ScheduleAnyway), so each new pod goes to the zone with the fewest of its pods,
then to that zone's node with the fewest. Ties are broken by a shuffle seeded with
(placement seed, ordinal), never by ordinal: a real scheduler's order among equal nodes says
nothing about ordinals. With podManagementPolicy Parallel the scheduler also takes a batch of new
pods in no particular order, so the batch is shuffled too: pods 0, 1 and 2 (the Job's first
masters by ordinal) may share a node, as they may on a real cluster.

Nodes are `devnode-0` .. `devnode-{N-1}`; with Z zones node i is in zone `devzone-{i % Z}`; with
no zones (Z = 0) nodes carry no zone label and every pod's zone is "". Node health is not
considered: a crashed node still receives new pods (devcluster has no NotReady taint)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    node: str
    zone: str
    """"" when the nodes have no zone label (zones = 0)."""


def node_name(index: int) -> str:
    return f"devnode-{index}"


def zone_name(node_index: int, zones: int) -> str:
    """Zone of node `node_index`: round robin over `zones` zones, "" without zones."""
    return f"devzone-{node_index % zones}" if zones > 0 else ""


def layout(nodes: int, zones: int) -> dict[str, str]:
    """Every node and its zone."""
    if nodes < 1:
        raise ValueError(f"a devcluster needs at least one node, not {nodes}")
    if not 0 <= zones <= nodes:
        raise ValueError(f"zones must be between 0 and the node count ({nodes}), not {zones}")
    return {node_name(i): zone_name(i, zones) for i in range(nodes)}


BY_ORDINAL = -1
"""The seed that places pod N on node N % nodes, as devcluster did before it simulated a
scheduler: the layout the older integration tests were written against."""


def place(
    ordinals: Sequence[int],
    *,
    nodes: int,
    zones: int = 0,
    seed: int = 0,
    placed: Iterable[str] = (),
) -> dict[int, Placement]:
    """Places the pods `ordinals` (a batch the StatefulSet creates at once) beside the pods
    already on `placed` (one node name per existing pod): each new pod counts the ones before
    it. Deterministic for a seed."""
    zone_of = layout(nodes, zones)
    if seed == BY_ORDINAL:
        names = list(zone_of)
        return {o: Placement(names[o % nodes], zone_of[names[o % nodes]]) for o in ordinals}
    per_node = Counter({name: 0 for name in zone_of})
    per_node.update(name for name in placed if name in zone_of)
    order = list(ordinals)
    batch = random.Random(f"{seed}/batch/{','.join(map(str, order))}")  # noqa: S311 - layouts
    batch.shuffle(order)
    result: dict[int, Placement] = {}
    for ordinal in order:
        rng = random.Random(f"{seed}/{ordinal}")  # noqa: S311 - a layout, never a secret
        per_zone: Counter[str] = Counter()
        for name, count in per_node.items():
            per_zone[zone_of[name]] += count
        zone = fewest(per_zone, rng)
        node = fewest(Counter({n: c for n, c in per_node.items() if zone_of[n] == zone}), rng)
        per_node[node] += 1
        result[ordinal] = Placement(node, zone)
    return result


def fewest(counts: Mapping[str, int], rng: random.Random) -> str:
    """The key with the lowest count; among equals, the first of a seeded shuffle."""
    low = min(counts.values())
    tied = sorted(k for k, c in counts.items() if c == low)
    rng.shuffle(tied)
    return tied[0]


def masters_share_a_domain(layout_of: Mapping[int, Placement], masters: int = 3) -> bool:
    """Whether two of pods 0..masters-1 (the Job's masters by ordinal) share a zone, or a node
    when there are no zones: a layout where masters by ordinal cannot survive a domain loss."""
    domains = [p.zone or p.node for o, p in layout_of.items() if o < masters]
    return len(set(domains)) < len(domains)


def find_seed(
    wanted: Callable[[dict[int, Placement]], bool],
    *,
    pods: int = 6,
    nodes: int = 3,
    zones: int = 0,
    limit: int = 10_000,
) -> int:
    """The smallest seed whose fresh layout of `pods` pods satisfies `wanted`."""
    for seed in range(limit):
        if wanted(place(range(pods), nodes=nodes, zones=zones, seed=seed)):
            return seed
    raise LookupError(f"no seed below {limit} gives the wanted layout")


def ordinal_trap_seed(pods: int = 6, nodes: int = 3, zones: int = 0, masters: int = 3) -> int:
    """A seed whose layout puts two of the masters by ordinal in one domain (tests that must
    not rely on ordinals pass it to `DevCluster.up`)."""
    return find_seed(
        lambda lay: masters_share_a_domain(lay, masters), pods=pods, nodes=nodes, zones=zones
    )


ORDINAL_TRAP_SEED = 0
"""`ordinal_trap_seed()` for 6 pods on 3 nodes without zones (a unit test checks it)."""

"""Resizes end in the shape the settings ask for, whatever roles the pods held before (after a
rolling update, failovers, in any mix): exactly CLUSTER_SIZE / (1 + REPLICAS_PER_MASTER)
masters with even slots, each with REPLICAS_PER_MASTER replicas. Planned and applied on the
simulated cluster until nothing is left to do."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import event, given, settings
from hypothesis import strategies as st

from clusterkit.core.model import Failover, MoveSlot, Replicate, Reset
from clusterkit.core.plan import Plan, Shape, make_plan
from tests.unit.factories import NAMING, SimCluster, assert_formed, converge, formed_cluster

ROUNDS = 30
"""Rounds until the fixed point: a resize takes a takeover, moves, replicas, then the drain."""


def shuffled_roles(sim: SimCluster, failovers: int, seed: int) -> None:
    """Replicas take over from their masters, as rollouts and node losses leave them."""
    rnd = random.Random(seed)
    for _ in range(failovers):
        replicas = [n.ordinal for n in sim.nodes if n.master_id]
        if not replicas:
            return
        sim.failover(rnd.choice(replicas))


def can_be_masters(sim: SimCluster, size: int) -> int:
    """How many staying pods can be masters: the slot owners, the empty masters, one staying
    replica of each leaving master (it takes over), and every staying replica of a master
    beyond the first (emptied, it leaves the master a synced copy)."""
    staying, leaving = sim.nodes[:size], sim.nodes[size:]
    masters = sum(1 for n in staying if n.master_id is None)
    giving = {n.node_id for n in leaving if n.master_id is None and n.slots}
    followers = Counter(n.master_id for n in staying if n.master_id is not None)
    heirs = sum(1 for master in followers if master in giving)
    spares = sum(count - 1 for master, count in followers.items() if master not in giving)
    spares += sum(max(0, count - 2) for master, count in followers.items() if master in giving)
    return masters + heirs + spares


def resized(sim: SimCluster, masters: int, replicas: int) -> list[Plan]:
    size = masters * (1 + replicas)
    if size > sim.size:
        sim.add_pods(size - sim.size)
    plans = converge(sim, Shape(size, masters), rounds=ROUNDS)
    if size < sim.size:
        sim.remove_pods(sim.size - size)
    assert_formed(sim, masters, replicas)
    return list(plans)


def test_more_masters_than_pods_that_can_be_one_is_refused_naming_the_way() -> None:
    sim = formed_cluster(2, 1)  # 4 pods: redis-2 and redis-3 replicate redis-0 and redis-1
    plan = make_plan(Shape(3, 3), sim.states(), naming=NAMING)
    assert plan.refusal is not None and plan.actions == ()
    assert "asks for 3 masters, but only 2" in plan.refusal.sentence


def test_eight_to_six_with_every_master_staying_ends_with_three_masters_each_replicated() -> None:
    # 4 masters on redis-0..3 all stay: one of them is surplus, gives its slots and follows.
    sim = formed_cluster(4, 1)
    resized(sim, 3, 1)


def test_eight_to_six_after_a_rollout_moved_the_masters_to_the_highest_ordinals() -> None:
    sim = formed_cluster(4, 1)
    for replica in range(4, 8):
        sim.failover(replica)
    plans = resized(sim, 3, 1)
    takeovers = [a for p in plans for a in p.actions if isinstance(a, Failover)]
    assert takeovers and all(a.ordinal < 6 and a.master >= 6 for a in takeovers)


def test_nine_at_two_replicas_to_six_at_one_keeps_no_master_without_a_replica() -> None:
    sim = formed_cluster(3, 2)
    shuffled_roles(sim, 4, seed=3)
    resized(sim, 3, 1)


def test_no_leaving_replica_is_reset_before_the_staying_ones_of_its_master_follow() -> None:
    sim = formed_cluster(4, 1)
    for replica in range(4, 8):
        sim.failover(replica)
    for plan in resized(sim, 3, 1):
        resets = [a for a in plan.actions if isinstance(a, Reset)]
        replicates = [a for a in plan.actions if isinstance(a, Replicate)]
        assert not (resets and replicates)


SHAPES = st.tuples(st.integers(min_value=2, max_value=5), st.integers(min_value=0, max_value=2))


@settings(max_examples=150, deadline=None)
@given(
    SHAPES, SHAPES, st.integers(min_value=0, max_value=6), st.integers(min_value=0, max_value=999)
)
def test_any_layout_resized_to_any_shape_ends_in_that_shape(
    before: tuple[int, int], after: tuple[int, int], failovers: int, seed: int
) -> None:
    sim = formed_cluster(*before)
    shuffled_roles(sim, failovers, seed)
    new_masters, new_replicas = after
    size = new_masters * (1 + new_replicas)
    if can_be_masters(sim, size) + max(0, size - sim.size) < new_masters:
        sim.add_pods(max(0, size - sim.size))
        plan = make_plan(Shape(size, new_masters), sim.states(), naming=NAMING)
        assert plan.refusal is not None and "Scale out by" in plan.refusal.sentence
        assert plan.actions == ()
        event("refused")
        return
    event("resized")
    for plan in resized(sim, new_masters, new_replicas):
        moves = {a.ordinal for a in plan.actions if isinstance(a, MoveSlot)}
        assert not moves & {a.ordinal for a in plan.actions if isinstance(a, Reset)}


def test_a_scale_in_stopped_after_its_moves_asked_back_empties_the_spare_replicas() -> None:
    # 8 pods, 3 masters: what a scale in to 6 leaves when it stops after its moves (its
    # emptied masters follow the masters that took their slots), then a Job asks for 8 again.
    sim = SimCluster(8)
    converge(sim, Shape(8, 3))
    plans = resized(sim, 4, 1)
    resets = [a for p in plans for a in p.actions if isinstance(a, Reset)]
    assert resets and all(sim.nodes[a.ordinal].slots for a in resets)  # masters now
    assert all(p.refusal is None for p in plans)

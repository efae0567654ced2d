"""Scale in in the pure planner: pods from CLUSTER_SIZE on give their slots to the staying
masters, then are forgotten by every staying node and reset, all in one round."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from clusterkit.core.balance import TOLERANCE, SlotMove, balance_moves, shares
from clusterkit.core.model import Forget, MoveSlot, Replicate, Reset
from clusterkit.core.plan import Shape, make_plan
from clusterkit.core.slots import SLOT_COUNT
from tests.unit.factories import (
    FIXED_POINT_ROUNDS,
    NAMING,
    SimCluster,
    assert_formed,
    converge,
    formed_cluster,
    shape_of,
)


def scaled_out(masters: int, replicas: int, added: int, shape: Shape) -> SimCluster:
    sim = formed_cluster(masters, replicas)
    sim.add_pods(added)
    converge(sim, shape)
    return sim


def assert_gone(sim: SimCluster, leaving: list[int], size: int) -> None:
    """Nobody staying lists a leaving node, and each leaving node knows nobody."""
    gone = {sim.nodes[o].node_id for o in leaving}
    for node in sim.nodes[:size]:
        assert not node.known & gone, f"redis-{node.ordinal} still knows a leaving node"
    for ordinal in leaving:
        assert not sim.nodes[ordinal].known and not sim.nodes[ordinal].slots


def test_eight_to_six_pods_moves_the_fourth_masters_slots_then_lets_it_go() -> None:
    sim = scaled_out(3, 1, 2, shape_of(4, 1))
    plans = converge(sim, shape_of(3, 1))
    moved = [a for plan in plans for a in plan.actions if isinstance(a, MoveSlot)]
    assert {a.ordinal for a in moved} == {6} and {a.target for a in moved} == {0, 1, 2}
    assert len(moved) == 16384 // 4
    assert_gone(sim, [6, 7], 6)
    sim.remove_pods(2)
    assert_formed(sim, 3, 1)


def test_no_leaving_node_is_forgotten_or_reset_while_one_still_owns_slots() -> None:
    sim = scaled_out(3, 1, 2, shape_of(4, 1))
    for plan in converge(sim, shape_of(3, 1)):
        moves = any(isinstance(a, MoveSlot) for a in plan.actions)
        letting_go = any(isinstance(a, Forget | Reset) for a in plan.actions)
        assert not (moves and letting_go)
        if letting_go:
            assert not plan.waiting
            assert {a.ordinal for a in plan.actions if isinstance(a, Reset)} == {6, 7}


def test_nine_to_six_pods_drops_leaving_replicas_and_keeps_one_per_master() -> None:
    sim = scaled_out(3, 1, 3, Shape(9, 3))
    for node in sim.nodes[6:]:
        node.keys = 10  # copies of their (staying) masters' keys
    converge(sim, shape_of(3, 1))
    assert_gone(sim, [6, 7, 8], 6)
    sim.remove_pods(3)
    assert_formed(sim, 3, 1)


def test_a_leaving_replica_of_a_leaving_master_waits_until_it_holds_no_keys() -> None:
    sim = scaled_out(3, 1, 2, shape_of(4, 1))
    sim.nodes[7].keys = 5  # a copy of redis-6's keys, not yet emptied by replication
    for _ in range(FIXED_POINT_ROUNDS):
        plan = make_plan(shape_of(3, 1), sim.states(), naming=NAMING)
        if not any(isinstance(a, MoveSlot) for a in plan.actions):
            break
        sim.apply_plan(plan)
    assert not any(isinstance(a, Forget | Reset) for a in plan.actions)
    assert any("redis-7 to hold no keys" in reason.sentence for reason in plan.waiting)
    sim.nodes[7].keys = 0
    converge(sim, shape_of(3, 1))
    assert_gone(sim, [6, 7], 6)


def test_a_staying_replica_of_a_leaving_master_moves_only_once_its_slots_are_gone() -> None:
    sim = scaled_out(3, 1, 2, shape_of(4, 1))
    sim.failover(7)  # redis-7 owns the slots now, and redis-6 follows it ...
    sim.nodes[5].master_id = sim.nodes[7].node_id  # ... as does a staying pod
    sim.nodes[2].master_id = None
    plans = converge(sim, Shape(6, 3))
    for plan in plans:
        repointed = [a for a in plan.actions if isinstance(a, Replicate) and a.ordinal == 5]
        assert not (repointed and any(isinstance(a, MoveSlot) for a in plan.actions))
    assert_gone(sim, [6, 7], 6)
    sim.remove_pods(2)
    assert_formed(sim, 3, 1)


def test_rerun_after_a_crash_at_any_point_ends_the_same() -> None:
    rnd = random.Random(7)
    sim = scaled_out(3, 1, 2, shape_of(4, 1))
    for _ in range(4 * FIXED_POINT_ROUNDS):  # half the steps lost every round
        plan = make_plan(shape_of(3, 1), sim.states(), naming=NAMING)
        if not plan.actions:
            break
        sim.apply_plan(plan, keep=[rnd.random() < 0.5 for _ in plan.actions] or [True])
    assert_gone(sim, [6, 7], 6)
    sim.remove_pods(2)
    assert_formed(sim, 3, 1)


def test_pods_beyond_the_size_that_never_joined_are_left_alone() -> None:
    sim = formed_cluster(3, 1)
    sim.add_pods(2)
    sim.nodes[7].keys = 3  # whatever is on it, it is no part of the cluster
    plan = make_plan(shape_of(3, 1), sim.states(), naming=NAMING)
    assert plan.refusal is None and plan.actions == () and plan.leaving == ()


def test_a_master_removed_before_it_was_drained_is_a_lost_shard_naming_the_way_back() -> None:
    sim = scaled_out(3, 1, 2, shape_of(4, 1))
    sim.remove_pods(2, dead=True)
    plan = make_plan(shape_of(3, 1), sim.states(), naming=NAMING)
    assert plan.refusal is not None and plan.actions == ()
    assert (
        "redis-6" in plan.refusal.sentence
        and "scale the StatefulSet back up to 8 pods" in plan.refusal.sentence
    )


def test_a_replica_removed_before_the_job_ran_is_forgotten() -> None:
    sim = scaled_out(3, 1, 3, Shape(9, 3))
    sim.remove_pods(3, dead=True)
    converge(sim, shape_of(3, 1))
    assert not any(sim.by_id[i].dead for n in sim.nodes for i in n.known)
    assert_formed(sim, 3, 1)


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=4, max_value=8), st.integers(min_value=1, max_value=4))
def test_leaving_masters_give_every_slot_and_the_rest_end_balanced(
    before: int, removed: int
) -> None:
    sim = formed_cluster(before, 0)
    states = sim.states()
    staying = states[: max(3, before - removed)]
    leaving = states[len(staying) :]
    moves = balance_moves(staying, leaving)
    want = {**shares(staying), **{p.ordinal: 0 for p in leaving}}
    owned = {p.ordinal: p.me.slot_count for p in states}
    for move in moves:
        owned[move.source] -= 1
        owned[move.target] += 1
    assert all(owned[p.ordinal] == 0 for p in leaving)
    assert all(abs(owned[o] - want[o]) <= want[o] * TOLERANCE for o in want)
    assert all(m.target < len(staying) for m in moves)


def apply_moves(sim: SimCluster, moves: list[SlotMove]) -> None:
    """Ownership only (the sim's MoveSlot also wants the masters to know each other)."""
    for move in moves:
        sim.nodes[move.source].slots.discard(move.slot)
        sim.nodes[move.target].slots.add(move.slot)


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from([(3, 2, 3), (3, 1, 4), (4, 0, 3), (4, 2, 5), (5, 1, 3)]),
    st.integers(min_value=0, max_value=2**32),
)
def test_moves_done_in_any_order_leave_exactly_the_rest_to_plan(
    case: tuple[int, int, int], seed: int
) -> None:
    """A second Job (or a rerun) planning halfway through sends every slot where the first did."""
    rnd = random.Random(seed)
    before, added, after = case
    sim = formed_cluster(before, 0)
    sim.add_pods(added)
    states = sim.states()
    masters, leaving = states[:after], states[after:]
    first = balance_moves(masters, [p for p in leaving if p.me.slots])
    done = [m for m in first if rnd.random() < 0.5]
    apply_moves(sim, done)
    states = sim.states()
    masters, leaving = states[:after], states[after:]
    again = balance_moves(masters, [p for p in leaving if p.me.slots])
    finished = set(done)
    rest = [m for m in first if m not in finished]
    assert again == rest or (not again and len(rest) <= TOLERANCE * SLOT_COUNT)

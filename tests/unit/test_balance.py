"""Scale out in the pure planner: new masters get their even share of slots by slot moves."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from clusterkit.core.balance import TOLERANCE, balance_moves, shares
from clusterkit.core.model import Meet, MoveSlot
from clusterkit.core.plan import Shape, make_plan
from tests.unit.factories import assert_formed, converge, formed_cluster, shape_of


def test_six_to_eight_pods_adds_a_fourth_master_with_its_share_and_a_replica() -> None:
    sim = formed_cluster(3, 1)
    sim.add_pods(2)
    plans = converge(sim, shape_of(4, 1))
    assert_formed(sim, 4, 1)
    moved = [a for plan in plans for a in plan.actions if isinstance(a, MoveSlot)]
    assert {a.target for a in moved} == {6}
    assert len(moved) == 16384 // 4  # only what the new master needs moves
    assert all(a.handover for a in moved)


def test_moves_wait_until_the_new_master_is_known() -> None:
    sim = formed_cluster(3, 1)
    sim.add_pods(2)
    plan = make_plan(shape_of(4, 1), sim.states())
    assert any(isinstance(a, Meet) and a.ordinal == 6 for a in plan.actions)
    assert not any(isinstance(a, MoveSlot) for a in plan.actions)
    assert any("know each other" in reason.sentence for reason in plan.waiting)


def test_moves_wait_until_the_new_master_sees_the_cluster_ok() -> None:
    """Redis answers MIGRATE with CLUSTERDOWN on a master still in its rejoin delay."""
    sim = formed_cluster(3, 1)
    sim.add_pods(2)
    shape = shape_of(4, 1)
    for _ in range(5):  # until the plan wants to move slots (all masters know each other)
        plan = make_plan(shape, sim.states())
        if any(isinstance(a, MoveSlot) for a in plan.actions):
            break
        sim.apply_plan(plan)
    states = sim.states()
    states[6] = replace(states[6], info={**states[6].info, "cluster_state": "fail"})
    waiting = make_plan(shape, states)
    assert not any(isinstance(a, MoveSlot) for a in waiting.actions)
    assert any("redis-6 to see cluster_state ok" in reason.sentence for reason in waiting.waiting)


def test_six_to_nine_pods_at_two_replicas_per_master() -> None:
    sim = formed_cluster(3, 1)
    sim.add_pods(3)
    converge(sim, Shape(9, 3))
    assert_formed(sim, 3, 2)


def test_a_balanced_cluster_moves_nothing_after_failovers() -> None:
    sim = formed_cluster(4, 1)
    sim.failover(4)
    sim.failover(6)
    assert not any(isinstance(a, MoveSlot) for a in make_plan(shape_of(4, 1), sim.states()).actions)


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=3, max_value=6), st.integers(min_value=1, max_value=4))
def test_moves_reach_every_share_from_any_even_cluster(before: int, added: int) -> None:
    sim = formed_cluster(before, 0)
    masters = [p for p in sim.states() if p.me.is_master]
    sim.add_pods(added)
    states = sim.states()
    after = [*masters, *states[before:]]
    moves = balance_moves(after)
    want = shares(after)
    owned = {p.ordinal: p.me.slot_count for p in after}
    for move in moves:
        owned[move.source] -= 1
        owned[move.target] += 1
    assert all(abs(owned[o] - want[o]) <= want[o] * TOLERANCE for o in owned)
    assert len({m.slot for m in moves}) == len(moves)
    assert all(m.source < before <= m.target for m in moves)

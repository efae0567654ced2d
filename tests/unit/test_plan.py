"""bootstrap.plan.make_plan on simulated clusters: first rounds, fixed points, refusals."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from bootstrap.converge import waiting_for
from bootstrap.model import AddSlots, Meet, Replicate, SetConfigEpoch
from bootstrap.plan import Plan, Shape, make_plan
from clusterkit.slots import SLOT_COUNT, SlotRange, compact, even_split
from tests.unit.factories import (
    BUS_PORT,
    PORT,
    SimCluster,
    converge,
    formed_cluster,
    node_id,
    node_line,
)

SIZES = st.tuples(st.integers(3, 60), st.integers(0, 3))
SMALL_SIZES = st.tuples(st.integers(3, 12), st.integers(0, 3))


def shape_of(masters: int, replicas: int) -> Shape:
    return Shape(masters * (1 + replicas), masters)


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


def test_fresh_six_pods_first_round() -> None:
    sim = SimCluster(6)
    plan = make_plan(Shape(6, 3), sim.states())
    ip = [n.ip for n in sim.nodes]
    s0, s1, s2 = (SlotRange(0, 5460),), (SlotRange(5461, 10922),), (SlotRange(10923, 16383),)
    assert plan.refusal is None
    assert Counter(plan.actions) == Counter([
        SetConfigEpoch(0, 1), SetConfigEpoch(1, 2), SetConfigEpoch(2, 3),
        AddSlots(0, s0), AddSlots(1, s1), AddSlots(2, s2),
        Meet(1, 0, ip[0], PORT, BUS_PORT), Meet(2, 0, ip[0], PORT, BUS_PORT),
        Meet(3, 0, ip[0], PORT, BUS_PORT), Meet(4, 1, ip[1], PORT, BUS_PORT),
        Meet(5, 2, ip[2], PORT, BUS_PORT),
    ])
    assert plan.masters == (0, 1, 2)
    assert plan.replica_of == {3: 0, 4: 1, 5: 2}
    assert plan.slots == {0: s0, 1: s1, 2: s2}


def test_fresh_six_pods_second_round_replicates_then_stops() -> None:
    sim = SimCluster(6)
    plans = converge(sim, Shape(6, 3))
    assert [len(p.actions) for p in plans] == [11, 3, 0]
    assert set(plans[1].actions) == {
        Replicate(r, m, sim.nodes[m].node_id) for r, m in ((3, 0), (4, 1), (5, 2))
    }
    assert_formed(sim, 3, 1)


def test_fresh_nine_pods_two_replicas_round_robin() -> None:
    sim = SimCluster(9)
    plans = converge(sim, Shape(9, 3))
    assert plans[-1].masters == (0, 1, 2)
    assert plans[-1].replica_of == {3: 0, 4: 1, 5: 2, 6: 0, 7: 1, 8: 2}
    assert topology(sim)[1] == plans[-1].replica_of
    assert_formed(sim, 3, 2)


@settings(max_examples=15, deadline=None)
@given(SIZES)
def test_fixed_point_is_a_formed_cluster(size: tuple[int, int]) -> None:
    masters, replicas = size
    sim = SimCluster(masters * (1 + replicas))
    plans = converge(sim, shape_of(masters, replicas))
    assert len(plans) <= 3
    for plan in plans:
        for action in plan.actions:
            if isinstance(action, Replicate):
                assert action.master in plan.masters and action.ordinal not in plan.masters
    assert plans[-1].masters == tuple(range(masters))
    assert plans[-1].replica_of == {r: r % masters for r in range(masters, sim.size)}
    assert_formed(sim, masters, replicas)


@settings(max_examples=25, deadline=None)
@given(SIZES)
def test_first_round_of_a_fresh_cluster(size: tuple[int, int]) -> None:
    masters, replicas = size
    sim = SimCluster(masters * (1 + replicas))
    plan = make_plan(shape_of(masters, replicas), sim.states())
    by_kind = Counter(type(a) for a in plan.actions)
    epochs = {a.ordinal: a.epoch for a in plan.actions if isinstance(a, SetConfigEpoch)}
    assert set(epochs) == set(range(masters))
    assert len(set(epochs.values())) == masters and min(epochs.values()) > 0
    added = {a.ordinal: a.ranges for a in plan.actions if isinstance(a, AddSlots)}
    assert added == {i: (r,) for i, r in enumerate(even_split(masters))}
    meets = {(a.ordinal, a.target) for a in plan.actions if isinstance(a, Meet)}
    assert meets == {(i, 0) for i in range(1, masters)} | {
        (r, r % masters) for r in range(masters, sim.size)}
    assert all(a.ip == sim.nodes[a.target].ip for a in plan.actions if isinstance(a, Meet))
    assert by_kind[Replicate] == 0


@settings(max_examples=30, deadline=None)
@given(SMALL_SIZES, st.randoms(use_true_random=False), st.integers(1, 3))
def test_crash_at_any_point_reaches_the_same_cluster(
    size: tuple[int, int], rnd: random.Random, bad_rounds: int
) -> None:
    """Rounds where only some steps got through (failed commands, a crashed Job) still lead to
    the cluster a clean run forms."""
    masters, replicas = size
    shape = shape_of(masters, replicas)
    clean = formed_cluster(masters, replicas)
    sim = SimCluster(shape.size)
    for _ in range(bad_rounds):
        plan = make_plan(shape, sim.states())
        assert plan.refusal is None
        sim.apply_plan(plan, keep=[rnd.random() < 0.5 for _ in plan.actions] or [True])
    converge(sim, shape)
    assert topology(sim) == topology(clean)
    assert_formed(sim, masters, replicas)


def test_no_replicate_until_the_replica_knows_its_master() -> None:
    sim = SimCluster(6)
    first = make_plan(Shape(6, 3), sim.states())
    # Pod 4's MEET with its master fails; everything else goes through.
    sim.apply_plan(Plan(actions=tuple(a for a in first.actions if a != first.actions[-2])))
    assert first.actions[-2] == Meet(4, 1, sim.nodes[1].ip, PORT, BUS_PORT)
    second = make_plan(Shape(6, 3), sim.states())
    replicating = {a.ordinal for a in second.actions if isinstance(a, Replicate)}
    assert replicating == {3, 5}
    assert Meet(4, 1, sim.nodes[1].ip, PORT, BUS_PORT) in second.actions


@settings(max_examples=20, deadline=None)
@given(SMALL_SIZES, st.randoms(use_true_random=False), st.integers(0, 2))
def test_plan_is_deterministic(size: tuple[int, int], rnd: random.Random, rounds: int) -> None:
    masters, replicas = size
    shape = shape_of(masters, replicas)
    sim = SimCluster(shape.size)
    for _ in range(rounds):
        sim.apply_plan(make_plan(shape, sim.states()), keep=[rnd.random() < 0.7])
    states = sim.states()
    plan = make_plan(shape, states)
    assert make_plan(shape, list(states)) == plan
    shuffled = list(states)
    rnd.shuffle(shuffled)
    assert make_plan(shape, shuffled) == plan


def test_after_failover_the_existing_cluster_is_kept() -> None:
    sim = formed_cluster(3, 1)
    sim.failover(3)
    plan = make_plan(Shape(6, 3), sim.states())
    assert plan.refusal is None
    assert plan.actions == ()
    assert plan.masters == (1, 2, 3)
    assert plan.replica_of == {0: 3, 4: 1, 5: 2}
    assert plan.slots[3] == (SlotRange(0, 5460),)


@settings(max_examples=20, deadline=None)
@given(SMALL_SIZES, st.randoms(use_true_random=False), st.integers(1, 4))
def test_failovers_never_cause_actions(
    size: tuple[int, int], rnd: random.Random, failovers: int
) -> None:
    masters, replicas = size
    sim = formed_cluster(masters, max(replicas, 1))
    for _ in range(failovers):
        sim.failover(rnd.choice([n.ordinal for n in sim.nodes if n.master_id]))
    plan = make_plan(shape_of(masters, max(replicas, 1)), sim.states())
    current = tuple(n.ordinal for n in sim.nodes if n.master_id is None)
    assert (plan.refusal, plan.actions, plan.masters) == (None, (), current)
    assert plan.replica_of == topology(sim)[1]


def test_half_done_slots_on_pod_zero_only_complete_to_the_even_split() -> None:
    sim = SimCluster(6)
    sim.set_config_epoch(sim.nodes[0], 1)
    sim.add_slots(sim.nodes[0], (SlotRange(0, 5460),))  # then the Job crashed
    plans = converge(sim, Shape(6, 3))
    assert AddSlots(0, (SlotRange(0, 5460),)) not in plans[0].actions
    assert {a for a in plans[0].actions if isinstance(a, AddSlots)} == {
        AddSlots(1, (SlotRange(5461, 10922),)), AddSlots(2, (SlotRange(10923, 16383),))}
    assert topology(sim)[0] == {i: (r,) for i, r in enumerate(even_split(3))}
    assert_formed(sim, 3, 1)


# --- refusals --------------------------------------------------------------------------------


def refused(sim: SimCluster, shape: Shape | None = None) -> str:
    plan = make_plan(shape or Shape(sim.size, sim.size // 2), sim.states())
    assert plan.refusal is not None
    assert (plan.actions, plan.masters, plan.replica_of) == ((), (), {})
    return plan.refusal


def test_refuses_a_node_that_knows_a_foreign_node() -> None:
    sim = formed_cluster(3, 1)
    foreign = node_id("old identity of redis-2")
    sim.nodes[4].extra_lines.append(node_line(foreign, flags="master,fail", link="disconnected"))
    reason = refused(sim)
    assert foreign in reason and "CLUSTER FORGET" in reason and "redis-4" in reason


def test_a_handshake_with_an_unknown_id_is_no_reason_to_refuse() -> None:
    sim = SimCluster(6)
    sim.nodes[1].extra_lines.append(node_line(node_id("hs"), flags="handshake", link="disconnected"))
    assert make_plan(Shape(6, 3), sim.states()).refusal is None


def test_refuses_a_node_with_keys_outside_the_cluster() -> None:
    sim = SimCluster(6)
    sim.nodes[4].keys = 12
    reason = refused(sim)
    assert "redis-4" in reason and "12 keys" in reason


def test_a_replica_with_keys_is_fine() -> None:
    sim = formed_cluster(3, 1)
    sim.nodes[3].keys = 12
    assert make_plan(Shape(6, 3), sim.states()) == make_plan(Shape(6, 3), formed_cluster(3, 1)
                                                              .states())


def test_refuses_two_separate_owners_of_one_slot() -> None:
    sim = SimCluster(6)
    sim.add_slots(sim.nodes[0], (SlotRange(0, 5460),))
    sim.add_slots(sim.nodes[3], (SlotRange(100, 200),))
    reason = refused(sim)
    assert "redis-0" in reason and "redis-3" in reason and "slot 100" in reason


def test_refuses_duplicate_node_ids() -> None:
    sim = SimCluster(6)
    sim.nodes[5].node_id = sim.nodes[2].node_id
    reason = refused(sim)
    assert sim.nodes[2].node_id in reason and "redis-2" in reason and "redis-5" in reason


def test_refuses_when_a_pod_is_missing() -> None:
    sim = SimCluster(6)
    plan = make_plan(Shape(9, 3), sim.states())
    assert plan.refusal is not None and "6 pods" in plan.refusal and plan.actions == ()

"""clusterkit.core.plan.make_plan on simulated clusters: first rounds, fixed points, refusals."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from clusterkit.core.model import AddSlots, Meet, Replicate, SetConfigEpoch
from clusterkit.core.plan import Plan, Shape, make_plan
from clusterkit.core.slots import SlotRange, even_split
from tests.unit.factories import (
    BUS_PORT,
    PORT,
    SimCluster,
    assert_formed,
    converge,
    formed_cluster,
    node_id,
    node_line,
    replicate_round,
    shape_of,
    topology,
)

SIZES = st.tuples(st.integers(3, 60), st.integers(0, 3))
SMALL_SIZES = st.tuples(st.integers(3, 12), st.integers(0, 3))


def test_fresh_six_pods_first_round() -> None:
    sim = SimCluster(6)
    plan = make_plan(Shape(6, 3), sim.states())
    ip = [n.ip for n in sim.nodes]
    s0, s1, s2 = (SlotRange(0, 5460),), (SlotRange(5461, 10922),), (SlotRange(10923, 16383),)
    assert plan.refusal is None
    assert set(plan.actions) == {
        SetConfigEpoch(0, 1), SetConfigEpoch(1, 2), SetConfigEpoch(2, 3),
        AddSlots(0, s0), AddSlots(1, s1), AddSlots(2, s2),
        # A star on the hub (pod 0), and each replica also meets its own master.
        *(Meet(i, 0, ip[0], PORT, BUS_PORT) for i in range(1, 6)),
        Meet(4, 1, ip[1], PORT, BUS_PORT), Meet(5, 2, ip[2], PORT, BUS_PORT),
        # Sent at once: clusterkit.io.apply retries "Unknown node" while the handshake runs.
        *(Replicate(r, r - 3, sim.nodes[r - 3].node_id) for r in (3, 4, 5)),
    }  # fmt: skip
    assert (plan.masters, plan.replica_of) == ((0, 1, 2), {3: 0, 4: 1, 5: 2})
    assert plan.slots == {0: s0, 1: s1, 2: s2}


def test_fresh_six_pods_form_in_one_round() -> None:
    sim = SimCluster(6)
    plans = converge(sim, Shape(6, 3))
    assert [len(set(p.actions)) for p in plans] == [16, 0]
    assert sim.not_yet == []
    assert_formed(sim, 3, 1)


def test_fresh_nine_pods_two_replicas_round_robin() -> None:
    sim = SimCluster(9)
    plans = converge(sim, Shape(9, 3))
    assert plans[-1].masters == (0, 1, 2)
    assert plans[-1].replica_of == {3: 0, 4: 1, 5: 2, 6: 0, 7: 1, 8: 2}
    assert topology(sim)[1] == plans[-1].replica_of
    assert_formed(sim, 3, 2)


@settings(max_examples=10, deadline=None)
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
    star = {(i, 0) for i in range(1, sim.size)}
    assert meets == star | {(r, r % masters) for r in range(masters, sim.size)} - {(0, 0)}
    assert all(a.ip == sim.nodes[a.target].ip for a in plan.actions if isinstance(a, Meet))
    replicates = {
        (a.ordinal, a.master, a.master_id) for a in plan.actions if isinstance(a, Replicate)
    }
    assert replicates == {
        (r, r % masters, sim.nodes[r % masters].node_id) for r in range(masters, sim.size)
    }
    assert by_kind[Replicate] == sim.size - masters


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
    assert topology(sim)[0] == topology(clean)[0]
    assert_formed(sim, masters, replicas)


def test_no_action_is_planned_twice() -> None:
    plan = make_plan(Shape(6, 3), SimCluster(6).states())  # pod 3 replicates the hub, pod 0
    assert [a for a, n in Counter(plan.actions).items() if n > 1] == []


def test_a_partly_done_replicate_round_keeps_the_planned_replicas() -> None:
    shape = Shape(9, 3)
    sim = SimCluster(9)
    first = make_plan(shape, sim.states())
    lost = {a for a in first.actions if isinstance(a, Replicate) and a.ordinal in (5, 6)}
    sim.apply_plan(Plan(actions=tuple(a for a in first.actions if a not in lost)))
    plans = converge(sim, shape)
    assert plans[0].replica_of == {3: 0, 4: 1, 5: 2, 6: 0, 7: 1, 8: 2}


def test_two_jobs_at_once_keep_replicas_balanced() -> None:
    shape = Shape(9, 3)
    sim = SimCluster(9)
    job_a = replicate_round(sim, shape)  # 3->0 4->1 5->2 6->0 7->1 8->2
    first = make_plan(shape, sim.states())  # job A's first round; its 5 and 6 are in flight
    sim.apply_plan(Plan(actions=tuple(a for a in first.actions if a not in (job_a[5], job_a[6]))))
    job_b = replicate_round(sim, shape)  # observes now: 5->0 6->2
    sim.apply_plan(Plan(actions=(job_b[5], job_a[5], job_a[6], job_b[6])))
    assert make_plan(shape, sim.states()).actions == ()
    followers = Counter(sim.by_id[n.master_id].ordinal for n in sim.nodes if n.master_id)
    assert followers == {0: 2, 1: 2, 2: 2}


def test_a_replicate_that_finds_its_master_unknown_is_planned_again() -> None:
    sim = SimCluster(6)
    first = make_plan(Shape(6, 3), sim.states())
    ip = [n.ip for n in sim.nodes]
    failed = {Meet(4, 0, ip[0], PORT, BUS_PORT), Meet(4, 1, ip[1], PORT, BUS_PORT)}
    assert failed < set(first.actions)  # pod 4's MEETs fail, everything else goes through
    sim.apply_plan(Plan(actions=tuple(a for a in first.actions if a not in failed)))
    assert sim.not_yet == [4]  # so REPLICATE got "Unknown node"
    second = make_plan(Shape(6, 3), sim.states())
    assert set(second.actions) == failed | {Replicate(4, 1, sim.nodes[1].node_id)}
    sim.apply_plan(second)
    assert make_plan(Shape(6, 3), sim.states()).actions == ()
    assert_formed(sim, 3, 1)


@settings(max_examples=20, deadline=None)
@given(SMALL_SIZES, st.randoms(use_true_random=False), st.integers(0, 2))
def test_plan_is_deterministic(size: tuple[int, int], rnd: random.Random, rounds: int) -> None:
    masters, replicas = size
    shape = shape_of(masters, replicas)
    sim = SimCluster(shape.size)
    for _ in range(rounds):
        plan = make_plan(shape, sim.states())
        sim.apply_plan(plan, keep=[rnd.random() < 0.7 for _ in plan.actions] or [True])
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
    assert (plan.refusal, plan.actions, plan.masters) == (None, (), (1, 2, 3))
    assert (plan.replica_of, plan.slots[3]) == ({0: 3, 4: 1, 5: 2}, (SlotRange(0, 5460),))


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
        AddSlots(1, (SlotRange(5461, 10922),)),
        AddSlots(2, (SlotRange(10923, 16383),)),
    }
    assert topology(sim)[0] == {i: (r,) for i, r in enumerate(even_split(3))}
    assert_formed(sim, 3, 1)


# --- refusals --------------------------------------------------------------------------------


def refused(sim: SimCluster) -> str:
    plan = make_plan(Shape(sim.size, sim.size // 2), sim.states())
    assert plan.refusal is not None
    assert (plan.actions, plan.masters, plan.replica_of) == ((), (), {})
    return plan.refusal.sentence


def test_refuses_a_node_that_knows_a_foreign_node() -> None:
    sim = formed_cluster(3, 1)
    foreign = node_id("old identity of redis-2")
    sim.nodes[4].extra_lines.append(node_line(foreign, flags="master,fail", link="disconnected"))
    reason = refused(sim)
    assert foreign in reason and "CLUSTER FORGET" in reason and "redis-4" in reason


def test_a_handshake_with_an_unknown_id_is_no_reason_to_refuse() -> None:
    sim = SimCluster(6)
    clean = make_plan(Shape(6, 3), sim.states())
    hs = node_line(node_id("hs"), flags="handshake", link="disconnected")
    sim.nodes[4].extra_lines.append(hs)
    assert make_plan(Shape(6, 3), sim.states()) == clean


def test_a_handshake_under_way_counts_as_known_only_at_that_address() -> None:
    sim = SimCluster(6)
    meet = Meet(1, 0, sim.nodes[0].ip, PORT, BUS_PORT)
    for a, b in ((0, 1), (1, 0)):  # each side is in a handshake with the other's address
        hs = node_line(node_id(("hs", a)), f"{sim.nodes[b].ip}:6379@16379", "handshake")
        sim.nodes[a].extra_lines.append(hs)
    assert meet not in make_plan(Shape(6, 3), sim.states()).actions
    sim.nodes[1].extra_lines[0] = node_line(node_id("hs"), "10.9.9.9:6379@16379", "handshake")
    assert meet in make_plan(Shape(6, 3), sim.states()).actions


def test_refuses_a_node_with_keys_outside_the_cluster() -> None:
    sim = SimCluster(6)
    sim.nodes[4].keys = 12
    reason = refused(sim)
    assert "redis-4" in reason and "12 keys" in reason


def test_a_replica_with_keys_is_fine() -> None:
    sim = formed_cluster(3, 1)
    clean = make_plan(Shape(6, 3), sim.states())
    sim.nodes[3].keys = 12
    assert make_plan(Shape(6, 3), sim.states()) == clean


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
    assert plan.refusal is not None and "6 pods" in plan.refusal.sentence and plan.actions == ()


def test_a_refusal_does_not_depend_on_pod_order() -> None:
    sim = SimCluster(6)
    sim.nodes[5].node_id = sim.nodes[2].node_id
    states = sim.states()
    assert make_plan(Shape(6, 3), states[::-1]) == make_plan(Shape(6, 3), states)

"""Failure domains in the planner: masters spread where the pods landed, verdicts on layouts,
and drift repaired one step at a time (simulated cluster, no servers)."""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from clusterkit.core.domains import Placement, failure_domains, judge, shards_of, workable_masters
from clusterkit.core.model import Failover, Replicate
from clusterkit.core.plan import Plan, Shape, make_plan
from tests.unit.factories import SimCluster, converge, shape_of

REPAIR_ROUNDS = 20


def formed(shape: Shape, domains: dict[int, str]) -> SimCluster:
    sim = SimCluster(shape.size)
    for _ in range(40):
        plan = make_plan(shape, sim.states(), domains)
        if not plan.actions:
            return sim
        sim.apply_plan(plan)
    raise AssertionError("formation did not converge")


def masters_per_domain(sim: SimCluster, domains: dict[int, str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for node in sim.nodes:
        if node.master_id is None and node.slots:
            found[domains[node.ordinal]] = found.get(domains[node.ordinal], 0) + 1
    return found


def apply_repair(sim: SimCluster, plan: Plan) -> None:
    for step in plan.repair.steps:
        if isinstance(step, Failover):
            sim.failover(step.ordinal)
        else:
            assert isinstance(step, Replicate)
            sim.replicate(sim.nodes[step.ordinal], step.master_id)


def repair_until_done(sim: SimCluster, shape: Shape, domains: dict[int, str]) -> list[Plan]:
    plans = []
    for _ in range(REPAIR_ROUNDS):
        plan = make_plan(shape, sim.states(), domains)
        assert plan.actions == ()
        plans.append(plan)
        if not plan.repair.steps:
            return plans
        apply_repair(sim, plan)
    raise AssertionError(f"repairs did not end: {plans[-1].repair}")


def test_zones_are_the_domains_when_every_pod_has_one_of_two_or_more() -> None:
    zoned = {0: Placement("n0", "a"), 1: Placement("n1", "b")}
    assert failure_domains(zoned) == {0: "a", 1: "b"}
    one_zone = {0: Placement("n0", "a"), 1: Placement("n1", "a")}
    assert failure_domains(one_zone) == {0: "n0", 1: "n1"}
    partly = {0: Placement("n0", "a"), 1: Placement("n1", "")}
    assert failure_domains(partly) == {0: "n0", 1: "n1"}


def test_formation_spreads_masters_where_pods_landed_not_by_ordinal() -> None:
    # Pods 0, 1 and 2 share node A: masters by ordinal would all sit there.
    domains = {0: "A", 1: "A", 2: "B", 3: "B", 4: "C", 5: "C"}
    sim = formed(shape_of(3, 1), domains)
    assert masters_per_domain(sim, domains) == {"A": 1, "B": 1, "C": 1}
    verdict = judge(shards_of(sim.states()), domains)
    assert verdict.survives, verdict.fatal


def test_four_masters_on_three_nodes_are_judged_unsurvivable_with_advice() -> None:
    domains = {o: f"node-{o % 3}" for o in range(8)}
    sim = formed(shape_of(4, 1), domains)
    verdict = judge(shards_of(sim.states()), domains)
    assert not verdict.possible
    assert "quorum" in verdict.fatal.values()
    text = verdict.sentence("node")
    assert "use 3, 5 or 6 masters for 3 nodes" in text, text
    assert workable_masters(2, 3) == []


def test_masters_drifted_onto_one_node_are_moved_back_by_failovers() -> None:
    domains = {o: f"node-{o % 3}" for o in range(6)}
    shape = shape_of(3, 1)
    sim = formed(shape, domains)
    # Fail over until two masters share a node, as rolling drains do.
    for replica in sorted(o for o, n in enumerate(sim.nodes) if n.master_id):
        sim.failover(replica)
        if max(masters_per_domain(sim, domains).values()) >= 2:
            break
    assert not judge(shards_of(sim.states()), domains).survives
    plans = repair_until_done(sim, shape, domains)
    assert all(isinstance(s, Failover) for p in plans for s in p.repair.steps)
    assert all(len(p.repair.steps) <= 1 for p in plans), "one shard at a time"
    assert judge(shards_of(sim.states()), domains).survives
    assert masters_per_domain(sim, domains) == dict.fromkeys(["node-0", "node-1", "node-2"], 1)


def test_a_shard_with_every_copy_in_one_domain_swaps_a_replica() -> None:
    domains = {0: "A", 1: "B", 2: "C", 3: "A", 4: "B", 5: "C"}
    shape = shape_of(3, 1)
    sim = formed(shape, domains)
    # Re-point replicas so that replica 3 (A) follows master 0 (A): shard 0 lives in A alone.
    for node in sim.nodes:
        node.master_id = None if node.slots else node.master_id
    sim.nodes[3].master_id, sim.nodes[4].master_id = sim.nodes[0].node_id, sim.nodes[2].node_id
    sim.nodes[5].master_id = sim.nodes[1].node_id
    assert judge(shards_of(sim.states()), domains).fatal == {"A": "shard"}
    plan = make_plan(shape, sim.states(), domains)
    assert len(plan.repair.steps) == 2
    assert all(isinstance(s, Replicate) for s in plan.repair.steps)
    repair_until_done(sim, shape, domains)
    assert judge(shards_of(sim.states()), domains).survives


def test_no_repair_while_a_replica_link_is_down() -> None:
    domains = {o: f"node-{o % 3}" for o in range(6)}
    shape = shape_of(3, 1)
    sim = formed(shape, domains)
    sim.failover(3)
    sim.failover(4)
    assert make_plan(shape, sim.states(), domains).repair.steps, "drift to repair"
    broken = [replace(s, master_link_up=False) if s.me.is_replica else s for s in sim.states()]
    plan = make_plan(shape, broken, domains)
    assert plan.repair.steps == ()
    assert plan.unsettled is not None and "link is down" in plan.unsettled


def test_without_domains_nothing_is_judged_or_repaired() -> None:
    sim = SimCluster(6)
    converge(sim, shape_of(3, 1))
    plan = make_plan(shape_of(3, 1), sim.states())
    assert plan.layout is None and plan.repair.steps == ()


@settings(max_examples=40, deadline=None)
@given(
    masters=st.sampled_from([3, 5, 6]),
    replicas=st.integers(1, 2),
    seed=st.integers(0, 10_000),
    failovers=st.integers(0, 12),
)
def test_any_drift_on_three_nodes_is_repaired_to_a_survivable_layout(
    masters: int, replicas: int, seed: int, failovers: int
) -> None:
    shape = shape_of(masters, replicas)
    rng = random.Random(seed)
    ordinals = list(range(shape.size))
    rng.shuffle(ordinals)
    # Soft spreading: the same number of pods on every node, in a shuffled order.
    domains = {o: f"node-{i % 3}" for i, o in enumerate(ordinals)}
    sim = formed(shape, domains)
    assert judge(shards_of(sim.states()), domains).survives
    for _ in range(failovers):
        sim.failover(rng.choice([n.ordinal for n in sim.nodes if n.master_id]))
    plans = repair_until_done(sim, shape, domains)
    assert len(plans) <= masters + 1
    assert judge(shards_of(sim.states()), domains).survives

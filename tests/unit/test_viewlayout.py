"""The layout as one node's view shows it: the sidecar's cheap check agrees with the planner's
full one, a stale replication target is told from a healthy link, and a lost quorum is seen
(simulated cluster, no servers)."""

from __future__ import annotations

from clusterkit.core.domains import shards_of
from clusterkit.core.drift import best_change
from clusterkit.core.nodes import parse_cluster_nodes
from clusterkit.core.plan import make_plan
from clusterkit.core.viewlayout import (
    ordinals_in_view,
    quorum_lost,
    relink_reason,
    shards_in_view,
    signature,
    takeover_candidates,
)
from tests.unit.factories import NAMING, PORT, SimCluster, converge, shape_of

DOMAINS = {0: "A", 1: "B", 2: "C", 3: "B", 4: "C", 5: "A"}
"""Replicas 3, 4 and 5 follow masters 0, 1 and 2, each in another domain."""


def drifted() -> SimCluster:
    sim = SimCluster(6)
    converge(sim, shape_of(3, 1))
    sim.failover(3)  # redis-3 (B) leads: B now holds two masters
    return sim


def test_every_view_names_the_same_repair_and_owner_as_the_planner() -> None:
    sim = drifted()
    plan = make_plan(shape_of(3, 1), sim.states(), DOMAINS)
    assert plan.repair.kind == "failover" and plan.repair.owner is not None
    for state in sim.states():
        nodes = list(state.nodes)
        shards = shards_in_view(nodes, ordinals_in_view(nodes, NAMING, {}))
        assert shards == shards_of(sim.states())
        may_lead = {o for s in shards or [] for o in s.replicas}
        change = best_change(shards or [], DOMAINS, may_lead)
        assert change is not None and change.replica == plan.repair.owner


def test_a_view_with_an_unknown_node_judges_nothing() -> None:
    nodes = list(drifted().states()[0].nodes)
    assert shards_in_view(nodes, {}) is None


def test_a_failover_changes_the_signature_and_quiet_views_keep_it() -> None:
    sim = drifted()
    before = signature(list(sim.states()[0].nodes))
    assert signature(list(sim.states()[0].nodes)) == before
    sim.failover(0)
    assert signature(list(sim.states()[0].nodes)) != before


def view_of_replica(master_ip: str, link: str = "connected") -> str:
    me = "a" * 40
    master = "b" * 40
    return (
        f"{me} 10.0.0.5:{PORT}@16379,redis-4 myself,slave {master} 0 0 1 connected\n"
        f"{master} {master_ip}:{PORT}@16379,redis-1 master - 0 0 1 {link} 0-16383\n"
    )


def test_a_replica_still_linking_to_its_masters_old_address_is_relinked() -> None:
    nodes = parse_cluster_nodes(view_of_replica("10.0.0.9"))
    reason = relink_reason(nodes, "10.0.0.2", PORT, link_up=False)
    assert reason is not None and "10.0.0.9" in reason and "10.0.0.2" in reason


def test_a_replica_whose_link_is_up_or_points_at_the_current_address_is_left_alone() -> None:
    nodes = parse_cluster_nodes(view_of_replica("10.0.0.9"))
    assert relink_reason(nodes, "10.0.0.2", PORT, link_up=True) is None
    assert relink_reason(nodes, "10.0.0.9", PORT, link_up=False) is None


def test_a_replica_whose_master_is_down_is_not_relinked() -> None:
    nodes = parse_cluster_nodes(view_of_replica("10.0.0.9", link="disconnected"))
    assert relink_reason(nodes, "10.0.0.2", PORT, link_up=False) is None


def test_half_the_masters_failing_is_a_lost_quorum_and_names_who_could_take_over() -> None:
    sim = SimCluster(6)
    converge(sim, shape_of(3, 1))
    assert not quorum_lost(list(sim.states()[2].nodes))
    masters = [n for n in sim.nodes if n.slots and not n.master_id]
    for master in masters[:2]:
        master.dead = True
    nodes = list(sim.states()[masters[2].ordinal].nodes)
    assert quorum_lost(nodes)
    replica = next(n for n in sim.nodes if n.master_id == masters[0].node_id)
    assert [c.node_id for c in takeover_candidates(nodes, masters[0].node_id)] == [replica.node_id]

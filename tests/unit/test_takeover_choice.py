"""Which masters only a TAKEOVER can replace, and which replica takes over: every reachable view
must agree that the quorum is lost, and the replica that replicated the most wins (simulated
cluster, no servers)."""

from __future__ import annotations

from clusterkit.core.nodes import NodeLine
from clusterkit.core.viewlayout import best_taker, lost_in_every_view
from tests.unit.factories import SimCluster, converge, shape_of


def survivors_after(dead: list[int]) -> tuple[SimCluster, dict[int, list[NodeLine]]]:
    """3 masters (0, 1, 2) with replicas 3, 4, 5; `dead` die and every survivor flags them."""
    sim = SimCluster(6)
    converge(sim, shape_of(3, 1))
    for ordinal in dead:
        sim.nodes[ordinal].dead = True
    views = {s.ordinal: list(s.nodes) for s in sim.states() if s.ordinal not in dead}
    return sim, views


def test_two_of_three_masters_failing_in_every_view_are_lost() -> None:
    sim, views = survivors_after([0, 1])
    assert lost_in_every_view(list(views.values())) == sorted(
        [sim.nodes[0].node_id, sim.nodes[1].node_id]
    )


def test_one_failing_master_of_three_is_left_to_redis() -> None:
    _, views = survivors_after([0])
    assert lost_in_every_view(list(views.values())) == []


def test_a_view_that_still_sees_the_master_stops_the_takeover() -> None:
    _, views = survivors_after([0, 1])
    _, healthy = survivors_after([])
    views[5] = healthy[5]  # one reachable pod still sees every master
    assert lost_in_every_view(list(views.values())) == []


def test_the_replica_that_replicated_most_takes_over() -> None:
    sim, views = survivors_after([0, 1])
    lost = sim.nodes[0].node_id
    followers = [o for o in views if sim.nodes[o].master_id == lost]
    assert len(followers) == 1
    assert best_taker(views, lost, {followers[0]: 10}) == followers[0]
    assert best_taker(views, sim.nodes[2].node_id, {}) is not None
    assert best_taker({2: views[2]}, lost, {}) is None

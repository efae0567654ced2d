"""Replicas kept off their master's Kubernetes node (hosts from the sidecars' /node)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from clusterkit.core.plan import make_plan
from tests.unit.factories import SimCluster, shape_of


def fresh_plan(masters: int, replicas: int, hosts: dict[int, str]) -> dict[int, int]:
    shape = shape_of(masters, replicas)
    return make_plan(shape, SimCluster(shape.size).states(), hosts).replica_of


def test_pods_spread_round_robin_over_three_nodes_keep_replicas_apart() -> None:
    hosts = {i: f"node-{i % 3}" for i in range(6)}
    replica_of = fresh_plan(3, 1, hosts)
    # Round robin (3->0, 4->1, 5->2) would put every replica beside its master.
    assert replica_of == {3: 2, 4: 0, 5: 1}
    assert all(hosts[r] != hosts[m] for r, m in replica_of.items())


def test_without_hosts_the_ordinal_layout_stays() -> None:
    assert fresh_plan(3, 1, {}) == {3: 0, 4: 1, 5: 2}


def test_one_node_for_everything_falls_back_to_ordinals() -> None:
    hosts = dict.fromkeys(range(6), "only-node")
    assert fresh_plan(3, 1, hosts) == {3: 0, 4: 1, 5: 2}


@settings(max_examples=60, deadline=None)
@given(
    masters=st.integers(3, 12),
    replicas=st.integers(1, 2),
    nodes=st.integers(3, 6),
)
def test_round_robin_spread_never_colocates_and_stays_balanced(
    masters: int, replicas: int, nodes: int
) -> None:
    size = masters * (1 + replicas)
    hosts = {i: f"node-{i % nodes}" for i in range(size)}
    replica_of = fresh_plan(masters, replicas, hosts)
    assert sorted(replica_of) == list(range(masters, size))
    counts = [list(replica_of.values()).count(m) for m in range(masters)]
    assert counts == [replicas] * masters
    assert all(hosts[r] != hosts[m] for r, m in replica_of.items())

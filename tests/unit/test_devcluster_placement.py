"""devcluster's simulated scheduler: soft spreading over zones then nodes, seeded tie-breaks."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devcluster.cluster import DevCluster
from devcluster.placement import (
    ORDINAL_TRAP_SEED,
    Placement,
    layout,
    masters_share_a_domain,
    ordinal_trap_seed,
    place,
)
from devcluster.state import ClusterState, PodRecord


def spread(counts: Counter[str], domains: list[str]) -> int:
    """Most minus fewest pods over every domain (an empty domain counts as 0)."""
    values = [counts[d] for d in domains]
    return max(values) - min(values)


def node_counts(placed: dict[int, Placement]) -> Counter[str]:
    return Counter(p.node for p in placed.values())


def test_the_same_seed_gives_the_same_layout() -> None:
    assert place(range(9), nodes=3, zones=3, seed=7) == place(range(9), nodes=3, zones=3, seed=7)


def test_seeds_give_different_layouts() -> None:
    layouts = {tuple(sorted(place(range(6), nodes=3, seed=s).items())) for s in range(10)}
    assert len(layouts) > 5


@given(
    pods=st.integers(1, 20),
    nodes=st.integers(1, 6),
    seed=st.integers(0, 10_000),
)
def test_without_zones_nodes_differ_by_at_most_one_pod(pods: int, nodes: int, seed: int) -> None:
    placed = place(range(pods), nodes=nodes, seed=seed)
    assert sorted(placed) == list(range(pods))
    assert spread(node_counts(placed), list(layout(nodes, 0))) <= 1
    assert {p.zone for p in placed.values()} == {""}


@given(
    pods=st.integers(1, 20),
    zones=st.integers(1, 3),
    per_zone=st.integers(1, 3),
    seed=st.integers(0, 10_000),
)
def test_with_zones_zones_and_nodes_differ_by_at_most_one_pod(
    pods: int, zones: int, per_zone: int, seed: int
) -> None:
    nodes = zones * per_zone
    placed = place(range(pods), nodes=nodes, zones=zones, seed=seed)
    zone_of = layout(nodes, zones)
    assert all(zone_of[p.node] == p.zone for p in placed.values())
    assert spread(Counter(p.zone for p in placed.values()), sorted(set(zone_of.values()))) <= 1
    assert spread(node_counts(placed), list(zone_of)) <= 1


def test_nodes_take_zones_round_robin() -> None:
    assert layout(4, 2) == {
        "devnode-0": "devzone-0",
        "devnode-1": "devzone-1",
        "devnode-2": "devzone-0",
        "devnode-3": "devzone-1",
    }
    assert set(layout(3, 0).values()) == {""}


@pytest.mark.parametrize(("nodes", "zones"), [(0, 0), (3, 4), (3, -1)])
def test_impossible_layouts_are_refused(nodes: int, zones: int) -> None:
    with pytest.raises(ValueError, match=r"node|zones"):
        layout(nodes, zones)


@given(
    first=st.integers(1, 12),
    more=st.integers(1, 12),
    zones=st.sampled_from([0, 3]),
    seed=st.integers(0, 10_000),
)
def test_scale_out_places_new_pods_beside_the_old_ones(
    first: int, more: int, zones: int, seed: int
) -> None:
    old = place(range(first), nodes=6, zones=zones, seed=seed)
    new = place(
        range(first, first + more),
        nodes=6,
        zones=zones,
        seed=seed,
        placed=[p.node for p in old.values()],
    )
    assert sorted(new) == list(range(first, first + more))
    assert spread(node_counts({**old, **new}), list(layout(6, zones))) <= 1
    if zones:
        zone_counts = Counter(p.zone for p in {**old, **new}.values())
        assert spread(zone_counts, ["devzone-0", "devzone-1", "devzone-2"]) <= 1


def test_pods_on_a_node_that_no_longer_exists_are_not_counted() -> None:
    placed = place([3], nodes=2, seed=0, placed=["devnode-7", "devnode-0"])
    assert placed[3].node == "devnode-1"


def test_the_trap_seed_puts_two_masters_by_ordinal_on_one_node() -> None:
    assert ordinal_trap_seed() == ORDINAL_TRAP_SEED
    trapped = place(range(6), nodes=3, seed=ORDINAL_TRAP_SEED)
    assert masters_share_a_domain(trapped)
    assert len({trapped[o].node for o in (0, 1, 2)}) < 3
    # Not every seed traps: the layout follows the seed, not the ordinals.
    assert not all(masters_share_a_domain(place(range(6), nodes=3, seed=s)) for s in range(20))


def test_a_trap_seed_exists_for_zones_too() -> None:
    seed = ordinal_trap_seed(pods=6, nodes=6, zones=3)
    trapped = place(range(6), nodes=6, zones=3, seed=seed)
    assert len({trapped[o].zone for o in (0, 1, 2)}) < 3


def test_devcluster_schedules_new_pods_and_keeps_the_old_ones_in_place(tmp_path: Path) -> None:
    cluster = DevCluster(tmp_path / "dc")
    state = ClusterState(octet=99, nodes=3, zones=3, placement_seed=ORDINAL_TRAP_SEED)
    state.pods = [PodRecord(f"redis-{i}", i, "") for i in range(6)]
    cluster.state = state
    cluster.schedule(state.pods)
    before = {p.name: (p.node, p.zone) for p in state.pods}
    assert before == {
        f"redis-{o}": (p.node, p.zone)
        for o, p in place(range(6), nodes=3, zones=3, seed=ORDINAL_TRAP_SEED).items()
    }
    added = [PodRecord(f"redis-{i}", i, "") for i in range(6, 9)]
    state.pods.extend(added)
    cluster.schedule(state.pods)
    assert {p.name: (p.node, p.zone) for p in state.pods[:6]} == before
    assert Counter(p.node for p in state.pods) == dict.fromkeys(layout(3, 3), 3)
    assert sorted(cluster.pods_on("devnode-0") + cluster.pods_on("devnode-1")) == sorted(
        p.name for p in state.pods if p.node != "devnode-2"
    )
    with pytest.raises(KeyError, match="devnode-3"):
        cluster.pods_on("devnode-3")

"""clusterkit.core.converge.waiting_for: when is the cluster formed, and what is it waiting for."""

from __future__ import annotations

import functools
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from clusterkit.core.converge import (
    planned_slot_map,
    settled,
    slot_map,
    unnamed_nodes,
    view_matches,
    waiting_for,
)
from clusterkit.core.model import PodState
from clusterkit.core.nodes import NodeLine, parse_node_line
from clusterkit.core.plan import make_plan
from clusterkit.core.slots import even_split
from tests.unit.factories import SimCluster, formed_cluster, node_id, node_line, shape_of


@functools.cache
def formed() -> SimCluster:
    """A 6-pod cluster formed by the plan (built once, on first use)."""
    return formed_cluster(3, 1)


def pods() -> list[PodState]:
    return formed().states()


def with_view(pod: PodState, lines: list[str]) -> PodState:
    return replace(pod, nodes=tuple(parse_node_line(line) for line in lines))


def raw(pod: PodState) -> list[str]:
    return [line.raw for line in pod.nodes]


def test_a_formed_cluster_waits_for_nothing() -> None:
    states = pods()
    assert waiting_for(states, 6) == []
    assert len({slot_map(p) for p in states}) == 1
    assert slot_map(states[0]) == tuple(
        sorted((r.start, r.end, formed().nodes[i].node_id) for i, r in enumerate(even_split(3)))
    )


def test_fresh_nodes_wait_for_everything() -> None:
    reasons = waiting_for(SimCluster(6).states(), 6)
    everyone = "redis-0, redis-1, redis-2, redis-3, redis-4, redis-5"
    assert reasons == [
        f"cluster_state not ok on {everyone}",
        f"not every node known yet on {everyone}",
        "not every slot is assigned",
    ]


def test_cluster_state_not_ok() -> None:
    states = pods()
    states[4] = replace(states[4], info={**states[4].info, "cluster_state": "fail"})
    assert waiting_for(states, 6) == ["cluster_state not ok on redis-4"]


def test_missing_info_is_not_ok() -> None:
    states = pods()
    states[1] = replace(states[1], info={})
    assert waiting_for(states, 6) == ["cluster_state not ok on redis-1"]


def test_a_node_that_misses_a_peer() -> None:
    states = pods()
    peer = states[5].node_id
    states[2] = with_view(states[2], [t for t in raw(states[2]) if not t.startswith(peer)])
    assert waiting_for(states, 6) == ["not every node known yet on redis-2"]


def test_waiting_for_more_nodes_than_known() -> None:
    assert waiting_for(pods(), 9) == [
        "not every node known yet on redis-0, redis-1, redis-2, redis-3, redis-4, redis-5"
    ]


def test_a_handshake_line_is_not_a_known_node() -> None:
    states = pods()
    hs = node_line(node_id("handshake"), "10.9.9.9:6379@16379", "handshake", link="disconnected")
    states[3] = with_view(states[3], [*raw(states[3]), hs])
    assert waiting_for(states, 6) == []
    replica = states[4].node_id
    states[3] = with_view(states[3], [t for t in raw(states[3]) if not t.startswith(replica)])
    assert waiting_for(states, 6) == ["not every node known yet on redis-3"]


def test_nodes_that_disagree_on_the_slot_map() -> None:
    states = pods()
    owner = states[1].node_id
    moved = [
        t.replace(" 5461-10922", " 5461-10921") if t.startswith(owner) else t
        for t in raw(states[0])
    ]
    states[0] = with_view(states[0], moved)
    assert waiting_for(states, 6) == ["nodes disagree on the slot map (2 versions)"]


def test_every_node_misses_the_same_slots() -> None:
    states = pods()
    owner = states[2].node_id
    states = [
        with_view(
            p,
            [
                t.replace(" 10923-16383", " 10923-16000") if t.startswith(owner) else t
                for t in raw(p)
            ],
        )
        for p in states
    ]
    assert waiting_for(states, 6) == ["not every slot is assigned"]


def test_a_replica_whose_link_is_down() -> None:
    states = pods()
    states[3] = replace(states[3], master_link_up=False)
    states[5] = replace(states[5], master_link_up=None)
    assert waiting_for(states, 6) == ["replication link down on redis-3, redis-5"]


def test_a_master_needs_no_replication_link() -> None:
    states = pods()
    states[0] = replace(states[0], master_link_up=None)
    assert states[0].me.is_master
    assert waiting_for(states, 6) == []


@settings(max_examples=30, deadline=None)
@given(st.integers(3, 8), st.integers(0, 2), st.sets(st.integers(0, 23), min_size=1))
def test_any_link_down_is_reported(masters: int, replicas: int, down: set[int]) -> None:
    sim = formed_cluster(masters, replicas)
    states = sim.states()
    assert waiting_for(states, sim.size) == []
    replicas_down = sorted(i for i in down if i < sim.size and states[i].me.is_replica)
    for i in replicas_down:
        states[i] = replace(states[i], master_link_up=False)
    expected = [f"replication link down on {', '.join(f'redis-{i}' for i in replicas_down)}"]
    assert waiting_for(states, sim.size) == (expected if replicas_down else [])


def test_the_planned_slot_map_is_what_every_formed_node_shows() -> None:
    states = pods()
    plan = make_plan(shape_of(3, 1), states)
    assert plan.actions == ()
    assert planned_slot_map(plan, states) == slot_map(states[0])


def test_a_view_matches_when_it_knows_everyone_and_shows_the_planned_map() -> None:
    states = pods()
    expected = slot_map(states[0])
    assert all(view_matches(list(p.nodes), 6, expected) for p in states)
    assert not view_matches(list(states[0].nodes), 7, expected)
    assert not view_matches(list(states[0].nodes[:-1]), 6, expected)
    moved = tuple(
        sorted((s, e, states[5].node_id) if s == 0 else (s, e, o) for s, e, o in expected)
    )
    assert not view_matches(list(states[0].nodes), 6, moved)


def test_settled_asks_cluster_info_for_the_whole_cluster() -> None:
    info = {
        "cluster_state": "ok",
        "cluster_known_nodes": "6",
        "cluster_slots_ok": "16384",
        "cluster_size": "3",
    }
    assert settled(info, {}, 6, 3)
    assert settled(info, {"master_link_status": "up"}, 6, 3)
    assert not settled(info, {"master_link_status": "down"}, 6, 3)
    assert not settled({**info, "cluster_state": "fail"}, {}, 6, 3)
    assert not settled({**info, "cluster_known_nodes": "7"}, {}, 6, 3)  # a handshake entry left
    assert not settled({**info, "cluster_slots_ok": "16383"}, {}, 6, 3)  # a slot's owner failing
    assert not settled({**info, "cluster_size": "2"}, {}, 6, 3)  # a master not seen yet


def test_a_replica_is_settled_only_linked_to_its_planned_master() -> None:
    info = {
        "cluster_state": "ok",
        "cluster_known_nodes": "6",
        "cluster_slots_ok": "16384",
        "cluster_size": "3",
    }
    linked = {"master_link_status": "up", "master_host": "10.0.0.1"}
    assert settled(info, linked, 6, 3, master_ip="10.0.0.1")
    # Its own word, not a view: linked up, but to another master than the plan's.
    assert not settled(info, linked, 6, 3, master_ip="10.0.0.2")
    assert not settled(info, {**linked, "master_link_status": "down"}, 6, 3, master_ip="10.0.0.1")


def test_every_node_is_named_once_some_other_view_has_its_hostname() -> None:
    def view(me: int, *unnamed: int) -> list[NodeLine]:
        return [
            parse_node_line(
                node_line(
                    node_id(o),
                    f"10.0.0.{o + 1}:6379@16379" + ("" if o in unnamed else f",redis-{o}.h"),
                    "myself,master" if o == me else "master",
                )
            )
            for o in range(3)
        ]

    # Learnt through gossip, handshaken, but no ping of its own arrived yet: no hostname.
    assert unnamed_nodes([view(0, 2), view(1, 2)]) == {node_id(2)}
    assert unnamed_nodes([view(0, 2), view(1)]) == set()  # one view naming it is enough
    # Its own view names nobody else for it (that pod may be the one lost).
    assert unnamed_nodes([view(0, 2), view(2)]) == {node_id(2)}
    # A cluster that announces no hostnames has none to wait for.
    assert unnamed_nodes([view(0, 0, 1, 2), view(1, 0, 1, 2)]) == set()

"""Ranking the replicas for a handover (clusterkit.core.handoff), from node lines and INFO."""

from __future__ import annotations

from clusterkit.core.handoff import attaching, online_offsets, ranked_replicas
from clusterkit.core.nodes import parse_cluster_nodes
from tests.unit.factories import node_id, node_line

MASTER = node_id("master")


def view(*replicas: tuple[str, str, str]) -> str:
    """The master's CLUSTER NODES: itself, then (name, ip, flags) replicas of it."""
    lines = [node_line(MASTER, "10.0.0.1:6379@16379", "myself,master", slots="0-16383")]
    for name, ip, flags in replicas:
        link = "disconnected" if "fail" in flags else "connected"
        lines.append(node_line(node_id(name), f"{ip}:6379@16379", flags, master=MASTER, link=link))
    return "\n".join(lines)


def test_the_replica_with_the_highest_offset_comes_first() -> None:
    nodes = parse_cluster_nodes(view(("a", "10.0.0.2", "slave"), ("b", "10.0.0.3", "slave")))
    info = {
        "slave0": {"ip": "10.0.0.2", "port": 6379, "state": "online", "offset": 100},
        "slave1": {"ip": "10.0.0.3", "port": 6379, "state": "online", "offset": 250},
    }
    assert [n.node_id for n in ranked_replicas(nodes, info)] == [node_id("b"), node_id("a")]


def test_a_replica_not_online_failing_or_nofailover_is_never_chosen() -> None:
    nodes = parse_cluster_nodes(
        view(
            ("syncing", "10.0.0.2", "slave"),
            ("failing", "10.0.0.3", "slave,fail"),
            ("nofail", "10.0.0.4", "slave,nofailover"),
        )
    )
    info = {
        "slave0": {"ip": "10.0.0.2", "port": 6379, "state": "wait_bgsave", "offset": 0},
        "slave1": {"ip": "10.0.0.3", "port": 6379, "state": "online", "offset": 9},
        "slave2": {"ip": "10.0.0.4", "port": 6379, "state": "online", "offset": 9},
    }
    assert ranked_replicas(nodes, info) == []


def test_online_offsets_skip_what_is_not_a_replica_entry() -> None:
    info = {
        "role": "master",
        "slave0": {"ip": "10.0.0.2", "port": 6379, "state": "online", "offset": 7},
        "slave_read_repl_offset": 12,
        "slave1": {"ip": "10.0.0.3", "port": "x", "state": "online"},
    }
    assert online_offsets(info) == {("10.0.0.2", 6379): 7}


def test_a_replica_in_a_domain_without_another_master_comes_before_a_higher_offset() -> None:
    other = node_id("other master")
    text = view(("a", "10.0.0.2", "slave"), ("b", "10.0.0.3", "slave"))
    text += "\n" + node_line(other, "10.0.0.9:6379@16379", "master", slots="0-1")
    nodes = parse_cluster_nodes(text)
    info = {
        "slave0": {"ip": "10.0.0.2", "port": 6379, "state": "online", "offset": 100},
        "slave1": {"ip": "10.0.0.3", "port": 6379, "state": "online", "offset": 250},
    }
    # b (higher offset) shares node-2 with the other master: a, alone on node-1, leads.
    domains = {node_id("a"): "node-1", node_id("b"): "node-2", other: "node-2"}
    assert [n.node_id for n in ranked_replicas(nodes, info, domains)] == [
        node_id("a"),
        node_id("b"),
    ]


def test_a_replica_online_or_listed_is_attaching_and_none_is_not() -> None:
    online = {"slave0": {"ip": "10.0.0.2", "port": 6379, "state": "online", "offset": 1}}
    listed = parse_cluster_nodes(view(("a", "10.0.0.2", "slave")))
    alone = parse_cluster_nodes(view())
    failing = parse_cluster_nodes(view(("a", "10.0.0.2", "slave,fail")))
    assert attaching(alone, online)  # the master's view has not heard of its new role yet
    assert attaching(listed, {})  # not online on the link yet
    assert not attaching(alone, {})
    assert not attaching(failing, {})

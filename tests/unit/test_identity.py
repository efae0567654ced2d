"""clusterkit.core.identity: which pod a node line belongs to, and its short name."""

from __future__ import annotations

from clusterkit.core.identity import members_and_old_ids, pod_label, pod_ordinal
from clusterkit.core.naming import PodNaming
from clusterkit.core.nodes import NodeLine, parse_node_line

NAMING = PodNaming("redis", "redis-hl", "default")
NODE = "c" * 40


def line(address: str) -> str:
    return f"{NODE} {address} master - 0 0 1 connected"


def test_the_announced_hostname_names_the_pod() -> None:
    node = parse_node_line(line(f"10.0.0.4:6379@16379,{NAMING.pod_fqdn(4)}"))
    assert pod_ordinal(node, NAMING, {NODE: "redis-1"}) == 4  # the hostname wins over the map
    assert pod_label(node) == "redis-4"


def test_without_a_hostname_the_pod_map_names_it() -> None:
    node = parse_node_line(line("10.0.0.4:6379@16379"))
    assert pod_ordinal(node, NAMING, {NODE: "redis-1"}) == 1
    assert pod_label(node, {NODE: "redis-1"}) == "redis-1"
    assert pod_ordinal(node, NAMING) is None
    assert pod_label(node) == ""


def test_a_pod_of_another_statefulset_is_none_of_ours() -> None:
    node = parse_node_line(line("10.0.0.4:6379@16379,cache-2.cache-hl.default.svc.cluster.local"))
    assert pod_ordinal(node, NAMING) is None
    assert pod_label(node) == "cache-2"


def node(node_id: str, address: str) -> NodeLine:
    return parse_node_line(f"{node_id} {address} master - 0 0 1 connected")


OLD, NEW, PEER = "a" * 40, "b" * 40, "d" * 40


def test_an_old_id_only_a_later_view_names_is_found() -> None:
    """The first view learnt pod 5's old id by gossip (no hostname); the second names it."""
    unnamed = [
        node(PEER, f"10.0.0.1:6379@16379,{NAMING.pod_fqdn(0)}"),
        node(OLD, "10.0.0.6:6379@16379"),
    ]
    named = [
        node(PEER, f"10.0.0.1:6379@16379,{NAMING.pod_fqdn(0)}"),
        node(OLD, f"10.0.0.6:6379@16379,{NAMING.pod_fqdn(5)}"),
    ]
    assert members_and_old_ids([unnamed], NAMING, 5, NEW) == ({0}, set())
    assert members_and_old_ids([unnamed, named], NAMING, 5, NEW) == ({0, 5}, {OLD})


def test_the_kept_pod_map_names_an_old_id_no_view_names() -> None:
    unnamed = [
        node(PEER, f"10.0.0.1:6379@16379,{NAMING.pod_fqdn(0)}"),
        node(OLD, "10.0.0.6:6379@16379"),
    ]
    assert members_and_old_ids([unnamed], NAMING, 5, NEW, {OLD: "redis-5"}) == ({0, 5}, {OLD})


def test_this_pods_own_id_is_no_old_id() -> None:
    view = [
        node(NEW, f"10.0.0.6:6379@16379,{NAMING.pod_fqdn(5)}"),
        node(PEER, f"10.0.0.1:6379@16379,{NAMING.pod_fqdn(0)}"),
    ]
    assert members_and_old_ids([view], NAMING, 5, NEW) == ({0, 5}, set())

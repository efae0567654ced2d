"""clusterkit.core.identity: which pod a node line belongs to, and its short name."""

from __future__ import annotations

from clusterkit.core.identity import pod_label, pod_ordinal
from clusterkit.core.naming import PodNaming
from clusterkit.core.nodes import parse_node_line

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

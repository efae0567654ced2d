"""IPv6-only pods: their addresses parse everywhere an address is read (settings, node lines,
nodes.conf rewrites, MEETs, nameservers), and the sidecar's HTTP server listens on IPv6."""

from __future__ import annotations

import socket
from pathlib import Path

from clusterkit.core.addresses import plan_meets
from clusterkit.core.naming import PodNaming
from clusterkit.core.nodes import parse_node_line
from clusterkit.io.dnsio import parse_nameserver
from sidecar.fixconf import fix_nodes_conf
from sidecar.health import listen_family
from sidecar.settings import parse_sidecar_settings

NAMING = PodNaming("redis", "redis-hl", "default")
ME = "a" * 40
PEER = "b" * 40
OLD_ME, NEW_ME = "fd00:10:244:1::5", "fd00:10:244:2::7"
OLD_PEER, NEW_PEER = "fd00:10:244:1::6", "fd00:10:244:3::9"


def line(node_id: str, ip: str, ordinal: int, flags: str, tail: str) -> str:
    return f"{node_id} {ip}:6379@16379,{NAMING.pod_fqdn(ordinal)} {flags} - 0 0 1 {tail}"


def test_a_node_line_with_an_ipv6_address_splits_at_the_last_colon() -> None:
    parsed = parse_node_line(line(ME, OLD_ME, 0, "myself,master", "connected 0-5460"))
    assert (parsed.address.ip, parsed.address.port, parsed.address.cport) == (OLD_ME, 6379, 16379)
    assert parsed.address.hostname == NAMING.pod_fqdn(0)


def test_the_sidecar_takes_an_ipv6_pod_ip() -> None:
    env = {
        "POD_IP": NEW_ME,
        "POD_NAME": "redis-0",
        "STATEFULSET_NAME": "redis",
        "HEADLESS_SERVICE": "redis-hl",
    }
    assert parse_sidecar_settings([], env).pod_ip == NEW_ME


def test_nodes_conf_is_rewritten_to_the_pods_new_ipv6_addresses(tmp_path: Path) -> None:
    conf = tmp_path / "nodes.conf"
    conf.write_text(
        line(ME, OLD_ME, 0, "myself,master", "connected 0-8191")
        + "\n"
        + line(PEER, OLD_PEER, 1, "master", "connected 8192-16383")
        + "\nvars currentEpoch 1 lastVoteEpoch 0\n"
    )
    report = fix_nodes_conf(conf, NEW_ME, NAMING, {NAMING.pod_fqdn(1): NEW_PEER}.get)
    assert report.outcome == "rewritten"
    text = conf.read_text()
    assert f"{ME} {NEW_ME}:6379@16379," in text
    assert f"{PEER} {NEW_PEER}:6379@16379," in text


def test_a_moved_ipv6_peer_is_met_at_its_new_address() -> None:
    nodes = [
        parse_node_line(line(ME, NEW_ME, 0, "myself,master", "connected 0-8191")),
        parse_node_line(line(PEER, OLD_PEER, 1, "master,fail", "disconnected 8192-16383")),
    ]
    meets = plan_meets(nodes, NAMING, {}, lambda fqdn, node_id: NEW_PEER)
    assert [(m.node_id, m.ip, m.port, m.bus_port) for m in meets] == [(PEER, NEW_PEER, 6379, 16379)]


def test_an_ipv6_nameserver_is_written_in_brackets() -> None:
    assert parse_nameserver("[fd00:10:96::a]:53") == ("fd00:10:96::a", 53)
    assert parse_nameserver("fd00:10:96::a") == ("fd00:10:96::a", 53)


def test_the_http_server_listens_on_both_families_unless_told_one_address() -> None:
    assert listen_family("") == socket.AF_INET6  # "::" with IPv4 mapped: dual stack
    assert listen_family("fd00:10:244::5") == socket.AF_INET6
    assert listen_family("10.0.0.7") == socket.AF_INET
    assert listen_family("127.0.0.1") == socket.AF_INET

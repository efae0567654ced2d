"""Address healing (clusterkit.core.addresses, sidecar.peers): which peers need healing, the
MEETs planned for them, the rate limit, the pod map."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clusterkit.core.addresses import Meet, needs_healing, plan_meets
from clusterkit.core.identity import pod_map_from
from clusterkit.core.naming import PodNaming
from clusterkit.core.nodes import NodeLine, parse_node_line
from sidecar.peers import RateLimit
from tests.unit.factories import node_id, node_line

NAMING = PodNaming("redis", "redis", "default")
IDS = [node_id(("heal", i)) for i in range(4)]


def fqdn(ordinal: int) -> str:
    return NAMING.pod_fqdn(ordinal)


def peer(
    ordinal: int,
    ip: str = "10.0.0.2",
    flags: str = "master",
    link: str = "disconnected",
    *,
    address: str | None = None,
    hostname: str | None = None,
) -> NodeLine:
    host = fqdn(ordinal) if hostname is None else hostname
    addr = address if address is not None else f"{ip}:6379@16379"
    addr += f",{host}" if host else ""
    return parse_node_line(node_line(IDS[ordinal], addr, flags, link=link))


ME = peer(0, "10.0.0.1", "myself,master", "connected")


class Locate:
    """A pod FQDN -> (node id answering there, its IP); records every question."""

    def __init__(self, pods: dict[str, tuple[str, str]]) -> None:
        self.pods = pods
        self.asked: list[str] = []

    def __call__(self, fqdn: str, nid: str) -> str | None:
        self.asked.append(fqdn)
        found = self.pods.get(fqdn)
        return found[1] if found is not None and found[0] == nid else None


# --- needs_healing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "link", "expected"),
    [
        ("master", "connected", False),
        ("slave", "connected", False),
        ("master,nofailover", "connected", False),
        ("master", "disconnected", True),
        ("master,fail?", "connected", True),
        ("slave,fail", "connected", True),
        ("master,noaddr", "connected", True),
        ("myself,master", "disconnected", False),
        ("myself,master,fail?", "connected", False),
        ("handshake", "disconnected", False),
        ("master,handshake,fail", "disconnected", False),
    ],
)
def test_needs_healing(flags: str, link: str, expected: bool) -> None:
    assert needs_healing(peer(1, flags=flags, link=link)) is expected


@given(
    st.sets(st.sampled_from(["myself", "master", "slave", "fail?", "fail", "handshake", "noaddr"])),
    st.sampled_from(["connected", "disconnected"]),
)
def test_needs_healing_property(flags: set[str], link: str) -> None:
    line = peer(1, flags=",".join(sorted(flags)) or "noflags", link=link)
    unhealthy = link == "disconnected" or bool(flags & {"fail", "fail?", "noaddr"})
    assert needs_healing(line) is (unhealthy and not flags & {"myself", "handshake"})


# --- plan_meets -------------------------------------------------------------------------------


def test_meet_a_failed_peer_at_its_pods_new_address() -> None:
    locate = Locate({fqdn(1): (IDS[1], "10.0.5.2")})
    meets = plan_meets([ME, peer(1, "10.0.0.2", "master,fail")], NAMING, {}, locate)
    assert meets == [Meet(IDS[1], fqdn(1), "10.0.5.2", 6379, 16379)]


def test_healthy_peers_and_myself_are_not_looked_up() -> None:
    locate = Locate({fqdn(0): (IDS[0], "10.0.5.1"), fqdn(1): (IDS[1], "10.0.5.2")})
    nodes = [ME, peer(1, link="connected"), peer(2, flags="handshake")]
    assert plan_meets(nodes, NAMING, {}, locate) == []
    assert locate.asked == []


def test_no_meet_when_the_pod_is_still_at_the_same_address() -> None:
    locate = Locate({fqdn(1): (IDS[1], "10.0.0.2")})
    assert plan_meets([ME, peer(1, "10.0.0.2")], NAMING, {}, locate) == []
    assert locate.asked == [fqdn(1)]


def test_no_meet_when_another_identity_answers_there() -> None:
    locate = Locate({fqdn(1): (IDS[3], "10.0.5.2")})
    assert plan_meets([ME, peer(1)], NAMING, {}, locate) == []
    assert locate.asked == [fqdn(1)]


def test_pod_map_names_peers_without_hostname() -> None:
    locate = Locate({fqdn(1): (IDS[1], "10.0.5.2"), fqdn(2): (IDS[2], "10.0.5.3")})
    nodes = [ME, peer(1, hostname=""), peer(2, "10.0.0.3", hostname="")]
    meets = plan_meets(nodes, NAMING, {IDS[1]: "redis-1", IDS[2]: "not-a-pod"}, locate)
    assert meets == [Meet(IDS[1], fqdn(1), "10.0.5.2", 6379, 16379)]
    assert locate.asked == [fqdn(1)]


@pytest.mark.parametrize(
    ("address", "port", "bus"),
    [("10.0.0.2:7000@17000", 7000, 17000), ("10.0.0.2:7000@18000", 7000, 18000)],
)
def test_meet_keeps_the_ports_of_the_line(address: str, port: int, bus: int) -> None:
    locate = Locate({fqdn(1): (IDS[1], "10.0.5.2")})
    meets = plan_meets([ME, peer(1, address=address)], NAMING, {}, locate)
    assert [(m.port, m.bus_port) for m in meets] == [(port, bus)]


def test_meet_without_bus_port_in_the_line_uses_port_plus_10000() -> None:
    locate = Locate({fqdn(1): (IDS[1], "10.0.5.2")})
    meets = plan_meets([ME, peer(1, address="10.0.0.2:7000")], NAMING, {}, locate)
    assert [(m.port, m.bus_port) for m in meets] == [(7000, 17000)]


def test_noaddr_peer_is_met_on_a_real_port() -> None:
    locate = Locate({fqdn(1): (IDS[1], "10.0.5.2")})
    noaddr = peer(1, flags="master,noaddr", link="disconnected", address=":0@0")
    meets = plan_meets([ME, noaddr], NAMING, {}, locate)
    assert [m.ip for m in meets] == ["10.0.5.2"]
    assert all(0 < m.port < 65536 and 0 < m.bus_port < 65536 for m in meets), meets


def test_several_peers_each_get_their_own_meet() -> None:
    locate = Locate({fqdn(i): (IDS[i], f"10.0.5.{i}") for i in range(4)})
    nodes = [ME, peer(1, "10.0.0.2"), peer(2, "10.0.0.3", "slave,fail?", "connected"), peer(3)]
    meets = plan_meets(nodes, NAMING, {}, locate)
    assert [(m.node_id, m.ip) for m in meets] == [(IDS[i], f"10.0.5.{i}") for i in (1, 2, 3)]


# --- RateLimit --------------------------------------------------------------------------------


def test_rate_limit_one_action_per_key_per_window() -> None:
    limit = RateLimit(seconds=5.0)
    assert limit.allow("a", now=100.0)
    assert not limit.allow("a", now=104.9)
    assert limit.allow("b", now=104.9)
    assert limit.allow("a", now=105.0)
    assert not limit.allow("a", now=109.0)  # the window restarted at 105, not at 104.9


def test_rate_limit_first_call_is_allowed_at_any_clock() -> None:
    assert RateLimit(seconds=5.0).allow("a", now=0.0)
    assert RateLimit(seconds=5.0).allow("a", now=-1e9)


# (key, clock, allowed?) with a 2.5 s window: each key's window starts at its last *allowed*
# call, a refused call does not restart it, and keys never share a window.
INTERLEAVED = [
    ("a", 0.0, True),
    ("b", 0.0, True),
    ("a", 0.0, False),
    ("a", 2.4, False),
    ("c", 2.4, True),
    ("a", 2.5, True),  # exactly 2.5 s after a's last allowed call
    ("b", 2.5, True),
    ("c", 4.8, False),  # 2.4 s after c's first call
    ("a", 4.9, False),  # refused: a's window restarted at 2.5
    ("b", 4.99, False),  # ahead of its window by a hair
    ("a", 5.0, True),
    ("b", 30.0, True),
    ("a", 30.0, True),
    ("a", 32.4, False),
]


def test_rate_limit_over_interleaved_keys() -> None:
    limit = RateLimit(seconds=2.5)
    assert [limit.allow(key, now=now) for key, now, _ in INTERLEAVED] == [
        allowed for _, _, allowed in INTERLEAVED
    ]


# --- pod_map_from -----------------------------------------------------------------------------


def test_pod_map_from_announced_hostnames() -> None:
    nodes = [
        ME,
        peer(1),
        peer(2, hostname="redis-2"),
        peer(3, hostname=""),
        parse_node_line(node_line("f" * 40, "10.0.0.9:6379@16379,cache-1.cache.default.svc")),
        parse_node_line(node_line("e" * 40, "10.0.0.8:6379@16379,redis-01.redis.default.svc")),
    ]
    assert pod_map_from(nodes, NAMING) == {IDS[0]: "redis-0", IDS[1]: "redis-1", IDS[2]: "redis-2"}


def test_pod_map_from_with_another_namespace() -> None:
    other = PodNaming("redis", "redis", "prod")
    assert pod_map_from([peer(1)], other) == {}
    assert pod_map_from([peer(1, hostname=other.pod_fqdn(7))], other) == {IDS[1]: "redis-7"}

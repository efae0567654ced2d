"""clusterkit.core.nodes: node lines of every Redis/Valkey version, rewriting the IP, and errors."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clusterkit.core.nodes import (
    KNOWN_FLAGS,
    NodeAddress,
    NodeLine,
    NodeLineError,
    myself,
    parse_cluster_nodes,
    parse_node_line,
)
from clusterkit.core.slots import SlotRange
from tests.unit.factories import node_id, node_line

A, B, C = node_id("a"), node_id("b"), node_id("c")
SHARD = node_id("shard")
FQDN = "redis-0.redis.default.svc.cluster.local"

REDIS_62 = node_line(
    A, "10.0.0.1:6379@16379", "myself,master", pong=1426238317239, config_epoch=1, slots="0-5460"
)
REDIS_70 = node_line(
    B, f"10.0.0.2:6379@16379,{FQDN}", "slave", master=A, pong=1700000000000, config_epoch=1
)
REDIS_72 = node_line(
    C,
    f"10.0.0.3:6379@16379,{FQDN},tls-port=0,shard-id={SHARD}",
    "master",
    config_epoch=3,
    slots="5461-10922 16383",
)
REDIS_72_NO_HOST = node_line(C, f"10.0.0.3:6379@16379,,tls-port=0,shard-id={SHARD}")
VALKEY_8 = node_line(
    A,
    f"10.0.0.4:6379@16379,{FQDN},tls-port=0,shard-id={SHARD},nodename={FQDN}"
    ",client-ipv4=10.0.0.4,client-ipv6=fd00::4",
    "myself,master",
)


def test_redis_62_line() -> None:
    line = parse_node_line(REDIS_62)
    assert line.node_id == A
    assert line.address == NodeAddress("10.0.0.1", 6379, 16379, "")
    assert line.address.hostname == "" and line.address.aux == {}
    assert line.flags == {"myself", "master"}
    assert (line.is_myself, line.is_master, line.is_replica) == (True, True, False)
    assert line.master_id is None
    assert (line.ping_sent, line.pong_received, line.config_epoch) == (0, 1426238317239, 1)
    assert line.connected and line.link_state == "connected"
    assert line.slots == (SlotRange(0, 5460),) and line.slot_count == 5461
    assert line.migrations == () and line.raw == REDIS_62


def test_redis_70_line_has_a_hostname() -> None:
    line = parse_node_line(REDIS_70)
    assert (line.address.ip, line.address.port, line.address.cport) == ("10.0.0.2", 6379, 16379)
    assert line.address.hostname == FQDN and line.address.aux == {}
    assert line.is_replica and not line.is_master and line.master_id == A
    assert line.slots == () and line.slot_count == 0


def test_redis_72_line_has_aux_fields() -> None:
    line = parse_node_line(REDIS_72)
    assert line.address.hostname == FQDN
    assert line.address.aux == {"tls-port": "0", "shard-id": SHARD}
    assert line.slots == (SlotRange(5461, 10922), SlotRange(16383, 16383))
    assert line.slot_count == 5462 + 1


def test_redis_72_line_with_empty_hostname() -> None:
    address = parse_node_line(REDIS_72_NO_HOST).address
    assert address.hostname == ""
    assert address.aux == {"tls-port": "0", "shard-id": SHARD}
    assert address.render() == f"10.0.0.3:6379@16379,,tls-port=0,shard-id={SHARD}"


def test_valkey_8_line_has_more_aux_fields() -> None:
    address = parse_node_line(VALKEY_8).address
    assert address.ip == "10.0.0.4" and address.hostname == FQDN
    assert address.aux == {
        "tls-port": "0",
        "shard-id": SHARD,
        "nodename": FQDN,
        "client-ipv4": "10.0.0.4",
        "client-ipv6": "fd00::4",
    }


@pytest.mark.parametrize(
    ("text", "ip", "port", "cport", "hostname"),
    [
        ("::1:6379@16379", "::1", 6379, 16379, ""),
        ("fe80::1:7000@17000,host", "fe80::1", 7000, 17000, "host"),
        ("2001:db8::42:6379@16379,,tls-port=0", "2001:db8::42", 6379, 16379, ""),
        (":0@0", "", 0, 0, ""),
        (":6379@16379", "", 6379, 16379, ""),
        ("10.0.0.1:6379", "10.0.0.1", 6379, None, ""),
    ],
)
def test_addresses(text: str, ip: str, port: int, cport: int | None, hostname: str) -> None:
    address = NodeAddress.parse(text)
    assert (address.ip, address.port, address.cport, address.hostname) == (
        ip,
        port,
        cport,
        hostname,
    )
    assert address.render() == text


def test_migrating_and_importing_slots_are_kept_apart() -> None:
    text = node_line(
        A,
        "10.0.0.1:6379@16379",
        "myself,master",
        config_epoch=2,
        slots=f"0-76 78-5460 [93->-{B}] [77-<-{C}]",
    )
    line = parse_node_line(text)
    assert line.slots == (SlotRange(0, 76), SlotRange(78, 5460))
    assert line.migrations == (f"[93->-{B}]", f"[77-<-{C}]")


@pytest.mark.parametrize(
    ("flags", "address", "link", "failing", "handshake"),
    [
        ("slave,fail?", "10.0.0.5:6379@16379", "connected", True, False),
        ("master,fail,noaddr", ":0@0", "disconnected", True, False),
        ("handshake", "10.0.0.9:6379@16379", "disconnected", False, True),
        ("master,nofailover", "10.0.0.6:6379@16379", "connected", False, False),
        ("noflags", "10.0.0.7:6379@16379", "connected", False, False),
    ],
)
def test_flags(flags: str, address: str, link: str, failing: bool, handshake: bool) -> None:
    line = parse_node_line(node_line(A, address, flags, link=link))
    assert line.flags == frozenset(flags.split(","))
    assert (line.is_failing, line.is_handshake, line.connected) == (
        failing,
        handshake,
        link == "connected",
    )


def test_parse_cluster_nodes_and_myself() -> None:
    text = "\n".join([REDIS_70, REDIS_62, "", REDIS_72]) + "\n"
    lines = parse_cluster_nodes(text)
    assert [line.node_id for line in lines] == [B, A, C]
    assert myself(lines).node_id == A
    with pytest.raises(ValueError, match="found 0"):
        myself(lines[:1])
    with pytest.raises(ValueError, match="found 2"):
        myself([*lines, parse_node_line(VALKEY_8)])


GOOD = node_line(A, "10.0.0.1:6379@16379", "master", slots="0-5460")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (GOOD.replace(A, "z" * 40), "node id is not 40 hex"),
        (GOOD.replace(A, A[:39]), "node id is not 40 hex"),
        (GOOD.replace("10.0.0.1:6379", "10.0.0.1-6379"), "bad address"),
        (GOOD.replace("@16379", "@bus"), "bad address"),
        (GOOD.replace(":6379", ":port"), "bad address"),
        (GOOD.replace("master", "master,primary"), "unknown flags ['primary']"),
        (GOOD.replace("master", ""), "unknown flags"),
        (GOOD.replace(" - ", " nobody "), "master id"),
        (GOOD.replace(" 0 0 0 ", " 0 x 0 "), "must be numbers"),
        (GOOD.replace("connected", "up"), "link state 'up'"),
        (GOOD.replace("0-5460", "0-16384"), "bad slot range"),
        (GOOD.replace("0-5460", "5460-0"), "bad slot range"),
        (GOOD.replace("0-5460", "abc"), "bad slot range"),
        (" ".join(GOOD.split(" ")[:7]), "expected at least 8 fields"),
    ],
)
def test_errors_name_the_line_and_the_reason(line: str, reason: str) -> None:
    assert parse_node_line(GOOD).slots == (SlotRange(0, 5460),)  # the line before the damage
    with pytest.raises(NodeLineError) as info:
        parse_cluster_nodes("\n".join([REDIS_62, REDIS_70, "", line, REDIS_72]))
    assert info.value.line_number == 4 and info.value.line == line
    assert reason in info.value.reason
    assert str(info.value).startswith("line 4: ")


def test_a_non_ascii_digit_is_a_node_line_error() -> None:
    with pytest.raises(NodeLineError):
        parse_node_line(GOOD.replace(" 0 0 0 ", " 0 ² 0 "), 7)


@given(
    st.text(alphabet=st.sampled_from("0123456789abcdef:@,.-[]<> =?" + "mastersluv\n"), max_size=200)
)
def test_garbage_parses_or_raises_node_line_error(text: str) -> None:
    try:
        lines = parse_cluster_nodes(text)
    except NodeLineError as exc:
        assert 1 <= exc.line_number <= text.count("\n") + 1
        assert exc.line in text.splitlines()
    else:
        assert all(line.raw in text.splitlines() for line in lines)


# --- with_ip ---------------------------------------------------------------------------------

HEX_ID = st.text(alphabet="0123456789abcdef", min_size=40, max_size=40)
IPS = st.one_of(st.ip_addresses().map(str), st.just(""))
HOSTNAMES = st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,30}[a-z0-9])?", fullmatch=True)
AUX = st.dictionaries(
    st.sampled_from(["tls-port", "shard-id", "nodename", "client-ipv4", "client-ipv6"]),
    st.from_regex(r"[a-z0-9.:]{0,20}", fullmatch=True),
)
SUFFIXES = st.one_of(
    st.just(""),
    HOSTNAMES.map(lambda h: "," + h),
    st.tuples(st.one_of(st.just(""), HOSTNAMES), AUX.filter(bool)).map(
        lambda t: "," + ",".join([t[0], *(f"{k}={v}" for k, v in t[1].items())])
    ),
)
SLOTS = st.lists(st.tuples(st.integers(0, 16383), st.integers(0, 16383)).map(sorted), max_size=4)
MIGRATIONS = st.lists(
    st.tuples(st.integers(0, 16383), st.sampled_from(["->-", "-<-"]), HEX_ID).map(
        lambda m: f"[{m[0]}{m[1]}{m[2]}]"
    ),
    max_size=2,
)
MASTERS = st.one_of(st.just("-"), HEX_ID)
FLAGS = st.lists(st.sampled_from(sorted(KNOWN_FLAGS)), min_size=1, max_size=4, unique=True)


@st.composite
def node_lines(draw: st.DrawFn) -> tuple[str, str, NodeLine]:
    """A node line, its text with `{ip}` where the IP goes, and the NodeLine it stands for."""
    nid, ip, suffix, master = draw(HEX_ID), draw(IPS), draw(SUFFIXES), draw(MASTERS)
    port, cport = draw(st.integers(0, 65535)), draw(st.one_of(st.none(), st.integers(0, 65535)))
    flags, slots, migrations = draw(FLAGS), draw(SLOTS), draw(MIGRATIONS)
    ping, pong, epoch = (draw(st.integers(0, 2**63)) for _ in range(3))
    link = draw(st.sampled_from(["connected", "disconnected"]))
    bus = "" if cport is None else f"@{cport}"
    template = " ".join(
        [
            nid,
            f"{{ip}}:{port}{bus}{suffix}",
            ",".join(flags),
            master,
            str(ping),
            str(pong),
            str(epoch),
            link,
            *(f"{a}" if a == b else f"{a}-{b}" for a, b in slots),
            *migrations,
        ]
    )
    text = template.replace("{ip}", ip, 1)
    expected = NodeLine(
        nid,
        NodeAddress(ip, port, cport, suffix),
        frozenset(flags),
        None if master == "-" else master,
        ping,
        pong,
        epoch,
        link,
        tuple(SlotRange(a, b) for a, b in slots),
        tuple(migrations),
        text,
    )
    return text, template, expected


@given(node_lines(), st.ip_addresses().map(str))
def test_with_ip_changes_only_the_ip(case: tuple[str, str, NodeLine], ip: str) -> None:
    text, template, expected = case
    line = parse_node_line(text)
    assert line == expected
    moved = line.with_ip(ip)
    assert moved.raw == template.replace("{ip}", ip, 1)
    assert moved.address == replace(line.address, ip=ip)
    assert moved == replace(line, address=moved.address, raw=moved.raw)
    assert moved == parse_node_line(moved.raw)
    assert (moved.address.hostname, moved.address.aux) == (line.address.hostname, line.address.aux)
    assert moved.with_ip(line.address.ip) == line


def test_with_ip_keeps_the_port_text() -> None:
    line = parse_node_line(node_line(A, "10.0.0.1:06379@016379"))
    assert line.with_ip("10.0.0.2").raw == node_line(A, "10.0.0.2:06379@016379")

"""clusterkit.core.nodesconf: parse, render byte for byte, rewrite IPs by node id, clear errors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clusterkit.core.nodesconf import NodesConfError, parse_nodes_conf

FIXTURES = Path(__file__).parent / "fixtures" / "nodes_conf"
FIXTURE_NAMES = sorted(p.name for p in FIXTURES.glob("*.conf"))
ADDR_RE = re.compile(r"^(?P<ip>[^,@]*):(?P<port>[0-9]+)(@[0-9]+)?(?P<suffix>,.*)?$")
"""Test oracle for `<addr>`: the IP ends at the last colon before the port."""


def fixture(name: str) -> str:
    return (FIXTURES / name).read_bytes().decode()


def oracle_ips(text: str) -> dict[str, str]:
    """node id -> IP of every node line, read with the regex oracle."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) >= 8 and not line.startswith("vars "):
            match = ADDR_RE.match(fields[1])
            assert match is not None, line
            found[fields[0]] = match["ip"]
    return found


def with_ip_oracle(line: str, old_ip: str, new_ip: str) -> str:
    node_id, addr, rest = line.split(" ", 2)
    assert addr.startswith(old_ip)
    return f"{node_id} {new_ip}{addr[len(old_ip) :]} {rest}"


# --- fixtures written from the grammar of each version -----------------------------------------


def test_every_format_has_a_fixture() -> None:
    assert len(FIXTURE_NAMES) >= 7


@pytest.mark.parametrize("name", FIXTURE_NAMES)
@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_fixture_renders_byte_identical(name: str, ending: str) -> None:
    text = fixture(name).replace("\n", ending)
    with_blanks = ending + text.replace(ending, ending + ending, 1) + "  " + ending
    for variant in (text, with_blanks, text.rstrip("\r\n")):
        conf = parse_nodes_conf(variant)
        assert conf.render() == variant
        assert {n.node_id: n.address.ip for n in conf.nodes} == oracle_ips(variant)


@pytest.mark.parametrize(
    ("name", "node_id", "ip", "port", "hostname"),
    [
        ("redis-6.2.conf", "9b2e4c6a8d0f1e3b5c7a9e1d3f5b7c9a1e3d5f7b", "10.244.2.23", 6379, ""),
        (
            "redis-7.0.conf",
            "8ea511edd9f05c17cd99220052c7b3c0d170a00d",
            "10.244.0.121",
            6379,
            "redis-0.redis.default.svc.cluster.local",
        ),
        (
            "redis-7.2.conf",
            "d886b043376653f642bbe5c45149a2f77e83b7aa",
            "10.42.0.5",
            6379,
            "redis-0.redis.default.svc.cluster.local",
        ),
        (
            "valkey-8.conf",
            "8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c",
            "10.96.4.33",
            6379,
            "redis-0.redis.default.svc.cluster.local",
        ),
        (
            "ipv6.conf",
            "aaaa0000bbbb1111cccc2222dddd3333eeee4444",
            "fd00:10:244::1a",
            6379,
            "redis-0.redis.default.svc.cluster.local",
        ),
        ("fresh-7.2.conf", "8b9e6e09898be857fcd33e4a2611c42268ce7b1c", "", 6379, ""),
    ],
)
def test_fixture_myself(name: str, node_id: str, ip: str, port: int, hostname: str) -> None:
    me = parse_nodes_conf(fixture(name)).myself
    assert (me.node_id, me.address.ip, me.address.port, me.address.cport) == (
        node_id,
        ip,
        port,
        port + 10000,
    )
    assert me.address.hostname == hostname


def test_fields_of_7_2_and_valkey_lines() -> None:
    nodes = {n.node_id[:4]: n for n in parse_nodes_conf(fixture("redis-7.2.conf")).nodes}
    assert nodes["2594"].address.hostname == ""
    assert nodes["2594"].address.aux["shard-id"] == "453e29079a2d30ac8122692ac4a1d1c9390acadf"
    assert nodes["0a1b"].flags == {"slave", "nofailover"}
    valkey = {n.node_id[:4]: n for n in parse_nodes_conf(fixture("valkey-8.conf")).nodes}
    assert valkey["7a6b"].address.aux["client-ipv6"] == "fd00:10:96::4:3"
    assert valkey["9c8d"].address.aux["tls-port"] == "6380"
    v6 = {n.node_id[:4]: n for n in parse_nodes_conf(fixture("ipv6.conf")).nodes}
    assert v6["cccc"].address.ip == "::ffff:10.0.0.9"


def test_migrating_and_importing_entries_on_the_myself_line() -> None:
    me = parse_nodes_conf(fixture("migrating.conf")).myself
    assert [str(r) for r in me.slots] == ["0-5462", "16000"]
    assert me.migrations == (
        "[5461->-e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca]",
        "[5462->-e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca]",
        "[10923-<-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f]",
    )


@pytest.mark.parametrize("name", FIXTURE_NAMES)
@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_with_ips_touches_only_one_line_and_only_its_ip(name: str, ending: str) -> None:
    text = fixture(name).replace("\n", ending)
    conf = parse_nodes_conf(text)
    for node_id, old_ip in oracle_ips(text).items():
        new_ip = "fd00::77" if ":" in old_ip else "192.0.2.77"
        out = conf.with_ips({node_id: new_ip}).render().split(ending)
        expected = [
            with_ip_oracle(line, old_ip, new_ip) if line.startswith(node_id + " ") else line
            for line in text.split(ending)
        ]
        assert out == expected


def test_swapped_ips_are_not_replaced_twice() -> None:
    text = fixture("redis-7.0.conf")
    ips = oracle_ips(text)
    a, b = "9f75759696fc2651929ec7683784d9f56cdb00b5", "c5adef67fa9538bdeb9910894d2e93b3f7d9a1c4"
    swapped = parse_nodes_conf(text).with_ips({a: ips[b], b: ips[a]})
    assert oracle_ips(swapped.render()) == {**ips, a: "10.244.0.12", b: "10.244.0.1"}
    assert {n.node_id: n.address.ip for n in swapped.nodes} == oracle_ips(swapped.render())


# --- errors ------------------------------------------------------------------------------------

CORRUPT_LINES = [
    "not a node line",
    "8ea511edd9f05c17cd99220052c7b3c0d170a00 10.0.0.1:6379@16379 master - 0 0 1 connected",
    "8ea511edd9f05c17cd99220052c7b3c0d170a00d 10.0.0.1@16379 master - 0 0 1 connected",
    "8ea511edd9f05c17cd99220052c7b3c0d170a00d 10.0.0.1:63x9@16379 master - 0 0 1 connected",
    "8ea511edd9f05c17cd99220052c7b3c0d170a00d 10.0.0.1:6379@16379 boss - 0 0 1 connected",
    "8ea511edd9f05c17cd99220052c7b3c0d170a00d 10.0.0.1:6379@16379 master - 0 0 1 up",
    "8ea511edd9f05c17cd99220052c7b3c0d170a00d 10.0.0.1:6379@16379 master - 0 0 1 connected 16384",
    "8ea511edd9f05c17cd99220052c7b3c0d170a00d 10.0.0.1:6379@16379 master - x 0 1 connected",
    "8ea511edd9f05c17cd99220052c7b3c0d170a00d 10.0.0.1:6379@16379 master nope 0 0 1 connected",
    "8ea511edd9f05c17cd99220052c7b3c0d170a00d 10.0.0.1:6379@16379 master - 0 0",
    "vars currentEpoch x lastVoteEpoch 0",
    "vars currentEpoch",
]


@given(
    name=st.sampled_from(FIXTURE_NAMES),
    corrupt=st.sampled_from(CORRUPT_LINES),
    data=st.data(),
    ending=st.sampled_from(["\n", "\r\n"]),
)
def test_corrupt_line_is_named_by_its_number(
    name: str, corrupt: str, data: st.DataObject, ending: str
) -> None:
    lines = [*fixture(name).splitlines(), ""]
    at = data.draw(st.integers(0, len(lines) - 1))
    lines.insert(at, corrupt)
    with pytest.raises(NodesConfError) as info:
        parse_nodes_conf(ending.join(lines))
    assert info.value.line_number == at + 1
    assert f"line {at + 1}:" in str(info.value)


@pytest.mark.parametrize("text", ["", "\n", "vars currentEpoch 0 lastVoteEpoch 0\n"])
def test_no_node_at_all_is_an_error(text: str) -> None:
    with pytest.raises(NodesConfError, match="myself"):
        parse_nodes_conf(text)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_no_or_two_myself_lines_is_an_error(name: str) -> None:
    text = fixture(name)
    with pytest.raises(NodesConfError, match="found 0"):
        parse_nodes_conf(text.replace("myself,", ""))
    doubled = text.replace(" master - ", " myself,master - ").replace(" slave ", " myself,slave ")
    if doubled.count("myself") > 1:
        with pytest.raises(NodesConfError, match="found"):
            parse_nodes_conf(doubled)


# --- properties over generated files -----------------------------------------------------------

HEX = "0123456789abcdef"
HOST = "redis-0.redis.default.svc.cluster.local"


@dataclass(frozen=True)
class GenLine:
    node_id: str
    ip: str
    rest: str
    """Everything after the IP: `:port@cport[,suffix] flags master ... [slots]`."""

    def text(self, ip: str | None = None) -> str:
        return f"{self.node_id} {self.ip if ip is None else ip}{self.rest}"


ips = st.one_of(st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str), st.just("10.0.0.1"))


@st.composite
def gen_line(draw: st.DrawFn, node_id: str, me: bool) -> GenLine:
    ip = draw(ips)
    port = draw(st.integers(1, 65535))
    cport = draw(st.one_of(st.none(), st.integers(1, 65535)))
    shard = draw(st.text(HEX, min_size=40, max_size=40))
    suffix = draw(
        st.sampled_from(
            [
                "",
                f",{HOST}",
                f",{HOST},tls-port=0,shard-id={shard}",
                f",,tls-port=0,shard-id={shard}",
                f",{HOST},tls-port=0,shard-id={shard},nodename=redis-0,client-ipv4={ip}",
                f",,client-ipv6={ip},client-ipv4=10.0.0.1",
            ]
        )
    )
    flags = draw(
        st.sampled_from(["master", "slave", "master,fail?", "slave,fail", "master,noaddr"])
    )
    nums = draw(st.lists(st.integers(0, 2**63), min_size=3, max_size=3))
    link = draw(st.sampled_from(["connected", "disconnected"]))
    slots = draw(st.lists(st.integers(0, 16383).map(str), max_size=3))
    if me:
        flags = "myself," + flags
        slots += [f"[{s}->-{shard}]" for s in draw(st.lists(st.integers(0, 16383), max_size=2))]
        slots += [f"[{s}-<-{shard}]" for s in draw(st.lists(st.integers(0, 16383), max_size=2))]
    bus = "" if cport is None else f"@{cport}"
    tail = " ".join([flags, "-", *map(str, nums), link, *slots])
    return GenLine(node_id, ip, f":{port}{bus}{suffix} {tail}")


@st.composite
def gen_conf(draw: st.DrawFn) -> tuple[list[GenLine], list[str]]:
    """Node lines and the ending of every line (the last may be "", blank lines are "")."""
    ids = draw(
        st.lists(st.text(HEX, min_size=40, max_size=40), min_size=1, max_size=6, unique=True)
    )
    me = draw(st.integers(0, len(ids) - 1))
    lines = [draw(gen_line(nid, i == me)) for i, nid in enumerate(ids)]
    extra = draw(st.integers(0, 3))  # the vars line, then blank lines
    endings = draw(st.lists(st.sampled_from(["\n", "\r\n"]), min_size=len(lines) + extra))
    if draw(st.booleans()):
        endings[-1] = ""  # no newline at the end of the file
    return lines, endings[: len(lines) + extra]


def render(lines: list[GenLine], endings: list[str], new: dict[str, str] | None = None) -> str:
    new = new or {}
    texts = [line.text(new.get(line.node_id)) for line in lines]
    texts += ["vars currentEpoch 5 lastVoteEpoch 4", "", "  "][: len(endings) - len(lines)]
    return "".join(t + e for t, e in zip(texts, endings, strict=True))


@given(gen_conf())
def test_parse_then_render_is_byte_identical(conf: tuple[list[GenLine], list[str]]) -> None:
    lines, endings = conf
    text = render(lines, endings)
    parsed = parse_nodes_conf(text)
    assert parsed.render() == text
    assert [(n.node_id, n.address.ip) for n in parsed.nodes] == [(g.node_id, g.ip) for g in lines]


@given(gen_conf(), st.data())
def test_with_ips_changes_only_the_named_ips(
    conf: tuple[list[GenLine], list[str]], data: st.DataObject
) -> None:
    lines, endings = conf
    chosen = data.draw(st.lists(st.sampled_from(lines), unique_by=lambda g: g.node_id))
    new = {g.node_id: data.draw(ips) for g in chosen}
    out = parse_nodes_conf(render(lines, endings)).with_ips(new)
    assert out.render() == render(lines, endings, new)
    assert {n.node_id: n.address.ip for n in out.nodes} == {
        g.node_id: new.get(g.node_id, g.ip) for g in lines
    }


@given(gen_conf())
def test_permuted_ips_come_out_right(conf: tuple[list[GenLine], list[str]]) -> None:
    lines, endings = conf
    old = [g.ip for g in lines]
    shuffled = old[1:] + old[:1]  # every node takes the next node's old IP (a swap for two)
    new = {g.node_id: ip for g, ip in zip(lines, shuffled, strict=True)}
    out = parse_nodes_conf(render(lines, endings)).with_ips(new).render()
    assert out == render(lines, endings, new)

"""Pure tests of devcluster.dnsserver: answer() and _reply() on hand-made queries, no sockets."""

from __future__ import annotations

import json
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from devcluster.dnsserver import Zone, _reply, answer, load_zone, write_zone

POD0 = "redis-0.redis.default.svc.cluster.local."
POD1 = "redis-1.redis.default.svc.cluster.local."
SERVICE = "redis.default.svc.cluster.local."
RECORDS = {
    POD0: ["127.12.0.1"],
    POD1: ["127.12.0.2", "fd00::2"],
    SERVICE: ["127.12.0.1", "127.12.0.2", "fd00::2"],
}
ZONE = Zone.build("cluster.local", RECORDS, ttl=5)


def ask(name: str, rdtype: str = "A") -> dns.message.Message:
    return answer(ZONE, dns.message.make_query(name, rdtype))


def addresses(resp: dns.message.Message) -> list[str]:
    return sorted(rd.to_text() for rrset in resp.answer for rd in rrset)


def test_a_record_for_a_pod_is_authoritative() -> None:
    resp = ask(POD0)
    assert resp.rcode() == dns.rcode.NOERROR
    assert resp.flags & dns.flags.AA
    assert addresses(resp) == ["127.12.0.1"]
    assert resp.answer[0].ttl == 5


def test_service_name_answers_every_pod_per_family() -> None:
    assert addresses(ask(SERVICE)) == ["127.12.0.1", "127.12.0.2"]
    assert addresses(ask(SERVICE, "AAAA")) == ["fd00::2"]


def test_lookup_is_case_insensitive_and_echoes_the_query_case() -> None:
    resp = ask(POD0.upper())
    assert addresses(resp) == ["127.12.0.1"]
    assert resp.answer[0].name.to_text() == POD0.upper()


@pytest.mark.parametrize(("name", "rdtype"), [(POD0, "AAAA"), (POD0, "TXT"), (POD1, "MX")])
def test_nodata_is_noerror_with_soa(name: str, rdtype: str) -> None:
    resp = ask(name, rdtype)
    assert resp.rcode() == dns.rcode.NOERROR
    assert resp.answer == []
    assert resp.authority[0].rdtype == dns.rdatatype.SOA


def test_empty_non_terminal_is_nodata_not_nxdomain() -> None:
    resp = ask("default.svc.cluster.local.")
    assert resp.rcode() == dns.rcode.NOERROR
    assert resp.answer == []


def test_unknown_name_in_domain_is_nxdomain_with_soa() -> None:
    resp = ask("redis-9.redis.default.svc.cluster.local.")
    assert resp.rcode() == dns.rcode.NXDOMAIN
    assert resp.flags & dns.flags.AA
    soa = resp.authority[0]
    assert soa.rdtype == dns.rdatatype.SOA
    assert soa.name.to_text() == "cluster.local."


def test_name_outside_domain_is_refused_without_aa() -> None:
    resp = ask("example.com.")
    assert resp.rcode() == dns.rcode.REFUSED
    assert not resp.flags & dns.flags.AA
    assert resp.answer == [] and resp.authority == []


def test_write_zone_round_trips_through_load_zone(tmp_path: Path) -> None:
    path = tmp_path / "zone.json"
    write_zone(path, "cluster.local", RECORDS, ttl=7)
    zone = load_zone(path)
    assert zone.ttl == 7
    assert zone.domain == ZONE.domain
    assert zone.records == ZONE.records
    assert [p.name for p in tmp_path.iterdir()] == ["zone.json"]  # no temp file left behind


@pytest.mark.parametrize(
    "data",
    [
        "{not json",
        json.dumps(["a list"]),
        json.dumps({"domain": "cluster.local", "records": {"a.example.com.": ["10.0.0.1"]}}),
        json.dumps({"domain": "cluster.local", "records": {POD0: ["not-an-ip"]}}),
        json.dumps({"domain": "cluster.local", "records": {POD0: "127.0.0.1"}}),
        json.dumps({"domain": "cluster.local", "ttl": "5", "records": {}}),
    ],
)
def test_load_zone_rejects_bad_data(tmp_path: Path, data: str) -> None:
    path = tmp_path / "zone.json"
    path.write_text(data)
    with pytest.raises(ValueError):
        load_zone(path)


def test_write_zone_refuses_bad_addresses(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_zone(tmp_path / "zone.json", "cluster.local", {POD0: ["300.1.1.1"]})
    assert not (tmp_path / "zone.json").exists()


BIG = "big.default.svc.cluster.local."  # a headless Service with 200 pods
BIG_ADDRS = sorted(f"127.13.{i // 100}.{i % 100 + 1}" for i in range(200))
BIG_ZONE = Zone.build("cluster.local", {BIG: BIG_ADDRS})


def wire_reply(query: dns.message.Message, *, tcp: bool) -> tuple[int, dns.message.Message]:
    wire = _reply(BIG_ZONE, query.to_wire(), "peer", tcp=tcp)
    assert wire is not None
    return len(wire), dns.message.from_wire(wire)


@pytest.mark.parametrize(("edns", "payload", "limit"), [(-1, 0, 512), (0, 1232, 1232)])
def test_udp_reply_too_big_for_the_client_is_truncated(edns: int, payload: int, limit: int) -> None:
    size, resp = wire_reply(
        dns.message.make_query(BIG, "A", use_edns=edns, payload=payload), tcp=False
    )
    assert size <= limit
    assert resp.flags & dns.flags.TC
    assert resp.answer == []


def test_udp_reply_fitting_the_edns_size_is_whole() -> None:
    _, resp = wire_reply(dns.message.make_query(BIG, "A", use_edns=0, payload=4096), tcp=False)
    assert not resp.flags & dns.flags.TC
    assert addresses(resp) == BIG_ADDRS


def test_tcp_reply_is_never_truncated_below_64k() -> None:
    size, resp = wire_reply(dns.message.make_query(BIG, "A"), tcp=True)
    assert size > 512
    assert not resp.flags & dns.flags.TC
    assert addresses(resp) == BIG_ADDRS


@pytest.mark.parametrize("tcp", [False, True])
@pytest.mark.parametrize("data", [b"", b"\xff" * 12], ids=["empty", "garbage"])
def test_garbage_gets_no_reply(data: bytes, tcp: bool) -> None:
    assert _reply(BIG_ZONE, data, "peer", tcp=tcp) is None


@pytest.mark.parametrize("tcp", [False, True])
def test_a_response_gets_no_reply(tcp: bool) -> None:
    response = answer(BIG_ZONE, dns.message.make_query(BIG, "A"))
    assert _reply(BIG_ZONE, response.to_wire(), "peer", tcp=tcp) is None

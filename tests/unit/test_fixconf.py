"""sidecar.fixconf.fix_nodes_conf on real files, with a pure `resolve` (a dict lookup, no DNS)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clusterkit.core.naming import PodNaming
from sidecar.fixconf import FixError, fix_nodes_conf
from tests.unit.factories import node_id, node_line

NAMING = PodNaming("redis", "redis", "default")
VARS = "vars currentEpoch 6 lastVoteEpoch 0"
IDS = [node_id(("fixconf", i)) for i in range(6)]


def fqdn(ordinal: int) -> str:
    return NAMING.pod_fqdn(ordinal)


def line(ordinal: int, ip: str, *, me: bool = False, hostname: str | None = None) -> str:
    host = fqdn(ordinal) if hostname is None else hostname
    suffix = f",{host}" if host else ""
    flags = "myself,master" if me else "master"
    return node_line(IDS[ordinal], f"{ip}:6379@16379{suffix}", flags, slots=str(ordinal))


def conf(ips: list[str], me: int = 0, no_hostname: frozenset[int] = frozenset()) -> str:
    """nodes.conf with node i at ips[i], each announcing its pod's FQDN unless in no_hostname."""
    lines = [
        line(i, ip, me=i == me, hostname="" if i in no_hostname else None)
        for i, ip in enumerate(ips)
    ]
    return "\n".join([*lines, VARS]) + "\n"


def write(tmp: Path, text: str | bytes) -> Path:
    path = tmp / "nodes.conf"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def ips_in(text: str) -> dict[str, str]:
    """node id -> IP of each node line."""
    fields = [ln.split(" ") for ln in text.splitlines() if ln[:40] in IDS]
    return {f[0]: f[1].rpartition(":")[0] for f in fields}


def fix(path: Path, pod_ip: str, where: dict[str, str]) -> tuple[str, dict[int, str], list[str]]:
    """(outcome, ordinal -> new IP, unresolved node ids); checks the old IPs it reports."""
    before = ips_in(path.read_text())
    report = fix_nodes_conf(path, pod_ip, NAMING, where.get)
    assert all(before[k] == old != new for k, (old, new) in report.changed.items())
    changed = {IDS.index(k): new for k, (_, new) in report.changed.items()}
    return report.outcome, changed, report.unresolved


OLD = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
NOWHERE: dict[str, str] = {}


def test_missing_file_is_no_config_and_creates_nothing(tmp_path: Path) -> None:
    report = fix_nodes_conf(tmp_path / "nodes.conf", "10.9.9.9", NAMING, NOWHERE.get)
    assert (report.outcome, report.changed, report.unresolved) == ("missing", {}, [])
    assert list(tmp_path.iterdir()) == []


def test_empty_file_is_no_config_and_stays_empty(tmp_path: Path) -> None:
    path = write(tmp_path, b"")
    assert fix_nodes_conf(path, "10.9.9.9", NAMING, NOWHERE.get).outcome == "missing"
    assert path.read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nodes.conf"]


def test_myself_gets_the_pod_ip_and_bak_holds_the_previous_bytes(tmp_path: Path) -> None:
    before = conf(OLD)
    path = write(tmp_path, before)
    where = {fqdn(1): OLD[1], fqdn(2): OLD[2]}
    assert fix(path, "10.0.0.9", where) == ("rewritten", {0: "10.0.0.9"}, [])
    assert path.read_text() == conf(["10.0.0.9", *OLD[1:]])
    assert (tmp_path / "nodes.conf.bak").read_bytes() == before.encode()
    # A second run finds nothing to do and keeps the first backup.
    assert fix(path, "10.0.0.9", where) == ("unchanged", {}, [])
    assert (tmp_path / "nodes.conf.bak").read_bytes() == before.encode()


def test_peers_get_the_addresses_their_pods_resolve_to(tmp_path: Path) -> None:
    path = write(tmp_path, conf(OLD))
    where = {fqdn(1): "10.0.1.2", fqdn(2): "10.0.1.3"}
    assert fix(path, OLD[0], where) == ("rewritten", {1: "10.0.1.2", 2: "10.0.1.3"}, [])
    assert path.read_text() == conf([OLD[0], "10.0.1.2", "10.0.1.3"])


def test_unresolved_peers_are_left_and_listed(tmp_path: Path) -> None:
    path = write(tmp_path, conf(OLD))
    outcome, changed, unresolved = fix(path, "10.0.0.9", {fqdn(2): "10.0.1.3"})
    assert (outcome, changed, unresolved) == ("rewritten", {0: "10.0.0.9", 2: "10.0.1.3"}, [IDS[1]])
    assert path.read_text() == conf(["10.0.0.9", OLD[1], "10.0.1.3"])


def test_pod_map_names_peers_without_hostname(tmp_path: Path) -> None:
    path = write(tmp_path, conf(OLD, no_hostname=frozenset({1, 2})))
    (tmp_path / "pod-map.json").write_text(json.dumps({IDS[1]: "redis-1"}))
    where = {fqdn(1): "10.0.1.2", fqdn(2): "10.0.1.3"}
    assert fix(path, OLD[0], where) == ("rewritten", {1: "10.0.1.2"}, [IDS[2]])
    assert path.read_text() == conf([OLD[0], "10.0.1.2", OLD[2]], no_hostname=frozenset({1, 2}))


@pytest.mark.parametrize("pod_map", ["{not json", "[1, 2]", ""])
def test_unreadable_pod_map_is_ignored(tmp_path: Path, pod_map: str) -> None:
    path = write(tmp_path, conf(OLD, no_hostname=frozenset({1})))
    (tmp_path / "pod-map.json").write_text(pod_map)
    assert fix(path, OLD[0], {fqdn(1): "10.0.1.2", fqdn(2): OLD[2]}) == ("unchanged", {}, [IDS[1]])


def test_short_and_foreign_hostnames(tmp_path: Path) -> None:
    short = line(1, OLD[1], hostname="redis-1")
    foreign = line(2, OLD[2], hostname="cache-7.elsewhere.example")
    text = "\n".join([line(0, OLD[0], me=True), short, foreign, VARS]) + "\n"
    path = write(tmp_path, text)
    where = {fqdn(1): "10.0.1.2", "cache-7.elsewhere.example": "10.0.1.3", "redis-1": "10.6.6.6"}
    assert fix(path, OLD[0], where) == ("rewritten", {1: "10.0.1.2", 2: "10.0.1.3"}, [])


def test_two_pods_that_swapped_ips(tmp_path: Path) -> None:
    path = write(tmp_path, conf(OLD))
    where = {fqdn(1): OLD[2], fqdn(2): OLD[1]}
    assert fix(path, OLD[0], where) == ("rewritten", {1: OLD[2], 2: OLD[1]}, [])
    assert path.read_text() == conf([OLD[0], OLD[2], OLD[1]])


def test_myself_swapped_with_a_peer(tmp_path: Path) -> None:
    path = write(tmp_path, conf(OLD))
    assert fix(path, OLD[1], {fqdn(1): OLD[0], fqdn(2): OLD[2]})[1] == {0: OLD[1], 1: OLD[0]}
    assert path.read_text() == conf([OLD[1], OLD[0], OLD[2]])


def test_two_peers_on_one_new_ip_are_not_both_rewritten(tmp_path: Path) -> None:
    path = write(tmp_path, conf([*OLD, "10.0.0.4"]))
    _, changed, _ = fix(path, OLD[0], {fqdn(1): "10.0.7.7", fqdn(2): "10.0.7.7"})
    assert not {1, 2} <= changed.keys()
    assert list(ips_in(path.read_text()).values()).count("10.0.7.7") <= 1


def test_a_peer_never_takes_the_new_ip_of_myself(tmp_path: Path) -> None:
    path = write(tmp_path, conf(OLD))
    assert fix(path, "10.0.0.9", {fqdn(1): "10.0.0.9", fqdn(2): OLD[2]})[1] == {0: "10.0.0.9"}


def test_a_peer_still_at_this_pods_new_address_loses_its_address(tmp_path: Path) -> None:
    # Pod 1 moved away and does not resolve yet; pod 0 came back at pod 1's old address.
    path = write(tmp_path, conf(OLD))
    outcome, changed, unresolved = fix(path, OLD[1], {fqdn(2): OLD[2]})
    assert (outcome, changed, unresolved) == ("rewritten", {0: OLD[1]}, [IDS[1]])
    peer = next(ln for ln in path.read_text().splitlines() if ln.startswith(IDS[1]))
    # As Redis writes a node whose address it no longer trusts; the heal loop finds it later.
    assert peer.split(" ")[1:3] == [f":0@0,{fqdn(1)}", "master,noaddr"]
    assert list(ips_in(path.read_text()).values()).count(OLD[1]) == 1


@pytest.mark.parametrize(
    "where",
    [
        {fqdn(1): OLD[0], fqdn(2): OLD[2]},  # onto myself, whose IP does not change
        {fqdn(1): OLD[2]},  # onto peer 2, which does not resolve and keeps its IP
    ],
)
def test_a_peer_never_takes_the_ip_of_a_node_that_stays(
    tmp_path: Path, where: dict[str, str]
) -> None:
    path = write(tmp_path, conf(OLD))
    fix(path, OLD[0], where)
    ips = ips_in(path.read_text())
    assert len(set(ips.values())) == 3, ips


def test_nothing_to_change_keeps_bytes_and_mtime(tmp_path: Path) -> None:
    path = write(tmp_path, conf(OLD))
    os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    where = {fqdn(1): OLD[1], fqdn(2): OLD[2]}
    assert fix(path, OLD[0], where) == ("unchanged", {}, [])
    assert path.read_bytes() == conf(OLD).encode()
    assert path.stat().st_mtime_ns == 1_600_000_000_000_000_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nodes.conf"]


@pytest.mark.parametrize(
    "corrupt",
    [
        b"garbage\n",
        (conf(OLD).replace(" master - ", " mastr - ", 1)).encode(),
        conf(OLD).replace("myself,", "").encode(),
        conf(OLD).encode()[:60],  # a write cut short
    ],
)
def test_corrupt_file_raises_and_is_left_untouched(tmp_path: Path, corrupt: bytes) -> None:
    path = write(tmp_path, corrupt)
    os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    with pytest.raises(FixError, match=r"corrupt.*nodes\.conf\.bak"):
        fix_nodes_conf(path, "10.0.0.9", NAMING, {fqdn(1): "10.0.1.2"}.get)
    assert path.read_bytes() == corrupt
    assert path.stat().st_mtime_ns == 1_600_000_000_000_000_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nodes.conf"]


def test_non_utf8_bytes_are_a_fix_error(tmp_path: Path) -> None:
    corrupt = b"\xff\xfe\x00garbage\n"
    path = write(tmp_path, corrupt)
    with pytest.raises(FixError):
        fix_nodes_conf(path, "10.0.0.9", NAMING, NOWHERE.get)
    assert path.read_bytes() == corrupt


def test_crlf_file_keeps_its_bytes(tmp_path: Path) -> None:
    before = conf(OLD).replace("\n", "\r\n").encode()
    path = write(tmp_path, before)
    assert fix(path, "10.0.0.9", {})[1] == {0: "10.0.0.9"}
    assert (tmp_path / "nodes.conf.bak").read_bytes() == before
    assert path.read_bytes() == before.replace(b"10.0.0.1:", b"10.0.0.9:")


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(1, 6),
    data=st.data(),
)
def test_every_resolved_node_moves_and_nothing_else_changes(size: int, data: st.DataObject) -> None:
    pool = [f"10.0.{i // 8}.{i % 8 + 1}" for i in range(12)]
    old = data.draw(st.permutations(pool))[:size]
    new = data.draw(st.permutations(pool))[:size]  # distinct new IPs: swaps and fresh ones
    me = data.draw(st.integers(0, size - 1))
    resolved = data.draw(st.sets(st.integers(0, size - 1)))
    where = {fqdn(i): new[i] for i in resolved}
    expected = [new[i] if i == me or i in resolved else old[i] for i in range(size)]
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), conf(old, me))
        outcome, changed, unresolved = fix(path, new[me], where)
        addresses = [ip for ip in ips_in(path.read_text()).values() if ip]
        assert len(addresses) == len(set(addresses)), "two nodes on one address"
        assert ips_in(path.read_text())[IDS[me]] == new[me]
        if len(set(expected)) != size:
            return  # some node would land on another's address: it stays or loses its address
        assert path.read_text() == conf(expected, me)
        assert changed == {i: new[i] for i in range(size) if expected[i] != old[i]}
        assert outcome == ("rewritten" if changed else "unchanged")
        assert sorted(unresolved) == sorted(IDS[i] for i in range(size) if i not in resolved | {me})
        bak = Path(tmp) / "nodes.conf.bak"
        assert (bak.read_text() if changed else None) == (conf(old, me) if changed else None)
        assert bak.exists() == bool(changed)

"""devcluster.dnsserver as a real subprocess on a loopback address, queried by dnspython."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.resolver
import pytest

from clusterkit.io.waiting import WaitTimeout, wait_until
from devcluster.dnsserver import write_zone
from tests.integration.helpers import random_octet

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PORT = 5353
DOMAIN = "cluster.local"
POD0 = "redis-0.redis.default.svc.cluster.local."
POD1 = "redis-1.redis.default.svc.cluster.local."
SERVICE = "redis.default.svc.cluster.local."
RECORDS = {POD0: ["127.12.0.1"], POD1: ["127.12.0.2"], SERVICE: ["127.12.0.1", "127.12.0.2"]}
BIG = "big.default.svc.cluster.local."  # a headless Service with 200 pods: too big for UDP
BIG_ADDRS = sorted(f"127.13.{i // 100}.{i % 100 + 1}" for i in range(200))


@dataclass
class Server:
    ip: str
    zone: Path
    proc: subprocess.Popen[bytes]
    log: Path


def _start(tmp_path: Path, zone: Path, attempt: int) -> Server | None:
    """Start one server; None if it exited before becoming ready (e.g. address in use)."""
    ip = f"127.{random_octet()}.53.1"
    ready = tmp_path / f"ready-{attempt}"
    log = tmp_path / f"server-{attempt}.log"
    pythonpath = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath)}
    cmd = [sys.executable, "-m", "devcluster.dnsserver", "--bind", ip, "--port", str(PORT)]
    cmd += ["--zone", str(zone), "--ready-file", str(ready), "--log-level", "DEBUG"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    server = Server(ip, zone, proc, log)
    try:
        wait_until(lambda: ready.exists() or proc.poll() is not None, timeout=10, what="DNS")
    except WaitTimeout:
        _stop(server)
        pytest.fail(f"DNS server not ready within 10 s:\n{log.read_text()}")
    return server if ready.exists() else None


def _stop(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.kill()
    server.proc.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    zone = tmp_path / "zone.json"
    write_zone(zone, DOMAIN, RECORDS)
    for attempt in range(3):  # a random address may collide with a concurrent run
        started = _start(tmp_path, zone, attempt)
        if started is not None:
            break
    else:
        logs = "\n".join(p.read_text() for p in sorted(tmp_path.glob("server-*.log")))
        pytest.fail(f"DNS server failed to start:\n{logs}")
    try:
        yield started
    finally:
        _stop(started)


def resolve(server: Server, name: str, rdtype: str = "A") -> list[str]:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [server.ip]
    resolver.port = PORT
    resolver.timeout = 1.0
    resolver.lifetime = 3.0
    answer = resolver.resolve(name, rdtype, tcp=False, search=False)
    return sorted(rd.to_text() for rd in answer)


def resolve_eventually(server: Server, name: str, expected: list[str]) -> None:
    """Poll: the server notices the rewritten file on its next query, give it a few seconds."""
    seen: list[list[str] | str] = [[]]

    def answers_expected() -> bool:
        try:
            seen[0] = resolve(server, name)
        except dns.resolver.NXDOMAIN:
            seen[0] = "NXDOMAIN"
        return seen[0] == expected

    try:
        wait_until(answers_expected, timeout=5, what=f"{name} to answer {expected}", interval=0.1)
    except WaitTimeout:
        pytest.fail(f"{name} still answers {seen[0]}, expected {expected}")


def test_a_record_for_a_pod(server: Server) -> None:
    assert resolve(server, POD0) == ["127.12.0.1"]
    assert resolve(server, POD1.upper()) == ["127.12.0.2"]


def test_service_name_answers_all_pods(server: Server) -> None:
    assert resolve(server, SERVICE) == ["127.12.0.1", "127.12.0.2"]


def test_unknown_name_in_domain_is_nxdomain(server: Server) -> None:
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolve(server, "redis-7.redis.default.svc.cluster.local.")


def test_aaaa_on_v4_only_name_is_no_answer(server: Server) -> None:
    with pytest.raises(dns.resolver.NoAnswer):
        resolve(server, POD0, "AAAA")


def test_name_outside_domain_is_refused(server: Server) -> None:
    # REFUSED makes dnspython drop its only nameserver, hence NoNameservers.
    with pytest.raises(dns.resolver.NoNameservers, match="REFUSED"):
        resolve(server, "example.com.")


def test_rewritten_zone_moves_a_pod_and_hides_another(server: Server) -> None:
    assert resolve(server, POD0) == ["127.12.0.1"]
    moved = {POD0: ["127.12.0.9"], SERVICE: ["127.12.0.9"]}
    write_zone(server.zone, DOMAIN, moved)
    resolve_eventually(server, POD0, ["127.12.0.9"])
    assert resolve(server, SERVICE) == ["127.12.0.9"]
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolve(server, POD1)
    write_zone(server.zone, DOMAIN, RECORDS)
    resolve_eventually(server, POD1, ["127.12.0.2"])


def test_invalid_zone_file_keeps_last_good_zone(server: Server) -> None:
    server.zone.write_text('{"domain": "cluster.local", "records": {')  # as if caught mid-write
    assert resolve(server, POD0) == ["127.12.0.1"]
    write_zone(server.zone, DOMAIN, {POD0: ["127.12.0.5"]})
    resolve_eventually(server, POD0, ["127.12.0.5"])


def test_garbage_packets_do_not_crash_the_server(server: Server) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for junk in (b"", b"\x00", b"\xff" * 12, os.urandom(300)):
            sock.sendto(junk, (server.ip, PORT))
    assert resolve(server, POD0) == ["127.12.0.1"]
    assert server.proc.poll() is None
    assert "dns_malformed_packet" in server.log.read_text()


def test_200_pod_service_resolves_via_tcp_fallback(server: Server) -> None:
    write_zone(server.zone, DOMAIN, {**RECORDS, BIG: BIG_ADDRS})
    truncated = dns.query.udp(dns.message.make_query(BIG, "A"), server.ip, timeout=2, port=PORT)
    assert truncated.flags & dns.flags.TC  # so the resolver below must have retried over TCP
    assert resolve(server, BIG) == BIG_ADDRS
    assert resolve(server, POD0) == ["127.12.0.1"]  # small answers still fit in UDP


def tcp_addresses(resp: dns.message.Message) -> list[str]:
    assert not resp.flags & dns.flags.TC
    return sorted(rd.to_text() for rrset in resp.answer for rd in rrset)


def test_raw_tcp_queries_share_one_connection(server: Server) -> None:
    write_zone(server.zone, DOMAIN, {**RECORDS, BIG: BIG_ADDRS})
    with socket.create_connection((server.ip, PORT), timeout=2) as sock:
        for name, expected in ((BIG, BIG_ADDRS), (POD1, ["127.12.0.2"]), (BIG, BIG_ADDRS)):
            query = dns.message.make_query(name, "A")
            resp = dns.query.tcp(query, server.ip, timeout=2, port=PORT, sock=sock)
            assert tcp_addresses(resp) == expected
    # and one connection per query, as dnspython's resolver does it
    resp = dns.query.tcp(dns.message.make_query(POD0, "A"), server.ip, timeout=2, port=PORT)
    assert tcp_addresses(resp) == ["127.12.0.1"]


def test_garbage_over_tcp_does_not_crash_the_server(server: Server) -> None:
    junks = [b"", b"\x00", b"\x00\x0c" + b"\xff" * 12, b"\x01\x2c" + os.urandom(300), b"\xff\xff"]
    for junk in junks:
        with socket.create_connection((server.ip, PORT), timeout=2) as sock:
            sock.sendall(junk)
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(1) == b""  # the server hangs up without answering
    assert resolve(server, POD0) == ["127.12.0.1"]
    resp = dns.query.tcp(dns.message.make_query(POD1, "A"), server.ip, timeout=2, port=PORT)
    assert tcp_addresses(resp) == ["127.12.0.2"]
    assert server.proc.poll() is None
    assert "dns_malformed_packet" in server.log.read_text()


def test_sigterm_stops_the_server_even_with_an_idle_tcp_client(server: Server) -> None:
    with socket.create_connection((server.ip, PORT), timeout=2):
        time.sleep(0.2)  # let the server accept it
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=5) == 0
        assert time.monotonic() - started < 2
    assert "dns_server_stopped" in server.log.read_text()


def test_sigterm_stops_the_server_cleanly(server: Server) -> None:
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=5) == 0
    assert "dns_server_stopped" in server.log.read_text()

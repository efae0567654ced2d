"""nodes.conf files written by a real redis-server: parse, render byte for byte, fix, reload."""

from __future__ import annotations

import functools
import random
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from clusterkit.core.naming import PodNaming
from clusterkit.core.nodesconf import parse_nodes_conf
from clusterkit.io.redisio import connect
from devcluster.servers import missing_server, server_bin
from sidecar.fixconf import fix_nodes_conf
from tests.integration.helpers import random_octet, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.needs_server]

NAMING = PodNaming("redis", "redis", "default")
PORT = 6379
SLOTS = [(0, 5460), (5461, 10922), (10923, 16383)]


@dataclass
class Server:
    ordinal: int
    ip: str
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def nodes_conf(self) -> Path:
        return self.directory / "nodes.conf"

    def client(self) -> redis.Redis:
        return connect(self.ip, PORT, None, timeout=2.0)


NOT_YET = (redis.RedisError, OSError, ValueError)
"""Errors that mean "not up yet", or a file being rewritten: retried by the waits."""


def start(server: Server) -> None:
    log = server.directory / "redis.log"
    args = [
        *(
            server_bin(),
            "--port",
            str(PORT),
            "--bind",
            server.ip,
            "--bind-source-addr",
            server.ip,
        ),
        *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
        *("--dir", str(server.directory), "--logfile", str(log)),
        *("--cluster-announce-hostname", NAMING.pod_fqdn(server.ordinal)),
        *("--save", "", "--appendonly", "no", "--daemonize", "no"),
    ]
    server.process = subprocess.Popen(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    process = server.process

    def up() -> bool:
        if process.poll() is not None:
            pytest.fail(f"{server_bin()} {server.ip} exited: {log.read_text()[-2000:]}")
        return bool(server.client().ping())

    wait_for(up, f"{server_bin()} on {server.ip}", 10.0, retry_on=NOT_YET)


def stop(server: Server) -> None:
    process, server.process = server.process, None
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Server]]:
    problem = missing_server()
    if problem:
        pytest.fail(problem)
    prefix = f"127.{random_octet()}.{random.randint(0, 255)}"
    made = []
    for i in range(3):
        (tmp_path / f"redis-{i}").mkdir()
        made.append(Server(i, f"{prefix}.{i + 1}", tmp_path / f"redis-{i}"))
    try:
        yield made
    finally:
        for server in made:
            stop(server)


def conf_complete(server: Server) -> bool:
    """nodes.conf lists all 3 nodes, each with its announced hostname."""
    server.client().execute_command("CLUSTER", "SAVECONFIG")
    nodes = parse_nodes_conf(server.nodes_conf.read_text()).nodes
    return sorted(n.address.hostname for n in nodes) == [NAMING.pod_fqdn(i) for i in range(3)]


def form(servers: list[Server]) -> dict[int, str]:
    """Start, MEET, give slots, wait for complete nodes.conf files, stop; ordinal -> node id."""
    for server in servers:
        start(server)
    first = servers[0].client()
    for server in servers[1:]:
        assert first.execute_command("CLUSTER", "MEET", server.ip, PORT)
    for server, (low, high) in zip(servers, SLOTS, strict=True):
        assert server.client().execute_command("CLUSTER", "ADDSLOTSRANGE", low, high)
    for server in servers:
        complete = functools.partial(conf_complete, server)
        wait_for(complete, f"3 nodes in {server.nodes_conf}", 30.0, retry_on=NOT_YET)
    ids = {s.ordinal: str(s.client().execute_command("CLUSTER", "MYID")) for s in servers}
    for server in servers:
        stop(server)
    return ids


def line_with_ip(line: str, old_ip: str, new_ip: str) -> str:
    node_id, addr, rest = line.split(" ", 2)
    assert addr.startswith(old_ip + ":")
    return f"{node_id} {new_ip}{addr[len(old_ip) :]} {rest}"


@pytest.mark.timeout(120)
def test_real_redis_7_files_parse_render_and_fix(servers: list[Server]) -> None:
    ids = form(servers)
    assert len(set(ids.values())) == 3
    old_ip = {ids[s.ordinal]: s.ip for s in servers}
    new_prefix = servers[0].ip.rsplit(".", 1)[0]
    new_ip = {ids[s.ordinal]: f"{new_prefix}.{s.ordinal + 101}" for s in servers}
    where = {NAMING.pod_fqdn(s.ordinal): new_ip[ids[s.ordinal]] for s in servers}

    for server in servers:
        before = server.nodes_conf.read_bytes()
        text = before.decode()
        conf = parse_nodes_conf(text)
        assert conf.render() == text
        assert conf.myself.node_id == ids[server.ordinal]
        assert {n.node_id: n.address.ip for n in conf.nodes} == old_ip
        assert {n.node_id: (n.address.port, n.address.cport) for n in conf.nodes} == {
            nid: (PORT, PORT + 10000) for nid in ids.values()
        }
        assert sum(n.slot_count for n in conf.nodes) == 16384
        assert text.splitlines()[-1].startswith("vars currentEpoch ")

        report = fix_nodes_conf(server.nodes_conf, new_ip[ids[server.ordinal]], NAMING, where.get)
        assert report.outcome == "rewritten" and report.unresolved == []
        assert report.changed == {nid: (old_ip[nid], new_ip[nid]) for nid in ids.values()}
        expected = [
            line_with_ip(ln, old_ip[ln[:40]], new_ip[ln[:40]]) if ln[:40] in old_ip else ln
            for ln in text.split("\n")
        ]
        assert server.nodes_conf.read_text().split("\n") == expected
        assert (server.directory / "nodes.conf.bak").read_bytes() == before

    # Redis loads the fixed file: same identity, everyone at the new addresses.
    moved = servers[0]
    moved.ip = new_ip[ids[0]]
    start(moved)
    client = moved.client()
    assert client.execute_command("CLUSTER", "MYID") == ids[0]
    nodes_text = str(client.execute_command("CLUSTER", "NODES"))
    seen = {ln.split(" ")[0]: ln.split(" ")[1].rpartition(":")[0] for ln in nodes_text.splitlines()}
    assert seen == new_ip

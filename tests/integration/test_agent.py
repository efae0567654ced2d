"""The sidecar's loop (sidecar.agent) against real servers: how each PING outcome counts for
liveness and readiness, what a failed heal does, and the pod map it keeps."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from clusterkit.core.naming import PodNaming
from clusterkit.core.nodes import parse_cluster_nodes
from clusterkit.io.access import Access
from clusterkit.io.dnsio import make_resolver
from clusterkit.io.redisio import connect
from clusterkit.io.settings import ClusterSettings
from clusterkit.io.waiting import wait_until
from devcluster.servers import missing_server, server_bin
from sidecar.agent import Agent
from sidecar.fixconf import POD_MAP_NAME
from sidecar.health import HUNG_AFTER_TIMEOUTS, HealthState, respond
from sidecar.metrics import Metrics
from sidecar.peers import Peers
from sidecar.pingcheck import PingCheck, classify_ping
from sidecar.settings import SidecarSettings
from tests.integration.helpers import random_octet

pytestmark = [pytest.mark.integration, pytest.mark.needs_server]

PORT = 6379
PASSWORD = "agent test pw"  # noqa: S105 - throwaway test servers
NAMING = PodNaming("redis", "redis-hl", "default")


@dataclass
class Server:
    ip: str
    directory: Path
    process: subprocess.Popen[bytes]

    def client(self, timeout: float = 2.0) -> redis.Redis:
        return connect(self.ip, PORT, Access(PASSWORD), timeout)

    def node_id(self) -> str:
        return str(self.client().execute_command("CLUSTER", "MYID"))


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start real servers on their own loopback addresses; all stopped after the test."""
    problem = missing_server()
    if problem:
        pytest.fail(problem)
    prefix = f"127.{random_octet()}.{random.randint(0, 255)}"
    started: list[Server] = []

    def run(name: str, *args: str, cluster: bool = True, host: int | None = None) -> Server:
        ip = f"{prefix}.{len(started) + 1}"
        directory = tmp_path / name
        directory.mkdir(exist_ok=True)
        argv = [server_bin(), "--port", str(PORT), "--bind", ip, "--bind-source-addr", ip]
        argv += ["--dir", str(directory), "--logfile", str(directory / "server.log")]
        argv += ["--requirepass", PASSWORD, "--masterauth", PASSWORD, "--save", ""]
        if cluster:
            argv += ["--cluster-enabled", "yes", "--cluster-node-timeout", "5000"]
            if host is not None:
                argv += ["--cluster-announce-hostname", NAMING.pod_fqdn(host)]
        # Passwords on a command line are fine only in tests of throwaway servers.
        process = subprocess.Popen([*argv, *args], stdout=subprocess.DEVNULL)
        server = Server(ip, directory, process)
        started.append(server)
        wait_until(  # up: answering PING, LOADING and MASTERDOWN included
            lambda: (
                classify_ping(ping_error(server.client()))[0] in ("pong", "busy")
                or process.poll() is not None
            ),
            timeout=15,
            what=f"{server_bin()} on {ip}",
        )
        return server

    yield run
    for server in started:
        if server.process.poll() is None:
            os.kill(server.process.pid, signal.SIGCONT)
            server.process.kill()
        server.process.wait(timeout=10)


def agent_for(server: Server | str, tmp_path: Path, pod: int = 0) -> Agent:
    ip = server if isinstance(server, str) else server.ip
    secret = tmp_path / "password"
    secret.write_text(PASSWORD)
    (tmp_path / f"sidecar-{pod}").mkdir(exist_ok=True)
    settings = SidecarSettings(
        ClusterSettings("redis", "redis-hl", redis_port=PORT, redis_password_file=secret),
        pod_ip=ip,
        pod_name=NAMING.pod_name(pod),
        nodes_conf=tmp_path / f"sidecar-{pod}" / "nodes.conf",
        termination_log=tmp_path / "termination-log",
    )
    # DNS is not what these tests are about: an unused loopback nameserver answers nothing.
    return Agent(settings, HealthState(Metrics()), make_resolver(("127.0.0.1", 1), timeout=0.2))


def sample(agent: Agent, name: str) -> float | None:
    return agent.metrics.registry.get_sample_value(name)


def ping_error(client: redis.Redis) -> Exception | None:
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return exc
    return None


def test_pong_is_alive_and_ready_to_be_observed(
    start: Callable[..., Server], tmp_path: Path
) -> None:
    server = start("a")
    assert classify_ping(ping_error(server.client())) == ("pong", "ok")
    agent = agent_for(server, tmp_path)
    assert agent.ping() is True
    assert agent.state.liveness() == (True, "ok")


def test_nothing_listening_is_down_not_hung(tmp_path: Path) -> None:
    agent = agent_for(f"127.{random_octet()}.99.99", tmp_path)
    for _ in range(HUNG_AFTER_TIMEOUTS + 1):
        agent.turn()
    assert agent.state.liveness() == (True, "ok")  # Kubernetes restarts a crash by itself
    assert (agent.state.ready, agent.state.ready_reason) == (False, "Redis is not running")


def test_loading_is_alive_and_not_ready(start: Callable[..., Server], tmp_path: Path) -> None:
    seed = start("loading", "--enable-debug-command", "yes", cluster=False)
    seed.client().execute_command("DEBUG", "POPULATE", 3000)
    seed.client().save()
    seed.client().shutdown(nosave=True)
    # 1 ms per key: about three seconds of LOADING, with PINGs answered in between.
    slow = ("--key-load-delay", "1000", "--loading-process-events-interval-bytes", "1024")
    server = start("loading", *slow, cluster=False)
    outcome = classify_ping(ping_error(server.client()))
    assert outcome[0] == "busy" and "LOADING" in outcome[1]
    agent = agent_for(server, tmp_path)
    agent.turn()
    assert agent.state.liveness() == (True, "ok")
    assert (agent.state.ready, agent.state.ready_reason) == (False, "Redis is LOADING")


def test_masterdown_is_alive(start: Callable[..., Server], tmp_path: Path) -> None:
    stale = ("--replicaof", "127.0.0.1", "1", "--replica-serve-stale-data", "no")
    server = start("stale", *stale, cluster=False)
    assert classify_ping(ping_error(server.client())) == ("busy", "Redis is MASTERDOWN")
    agent = agent_for(server, tmp_path)
    agent.turn()
    assert agent.state.liveness() == (True, "ok")


def test_busy_script_is_alive(start: Callable[..., Server], tmp_path: Path) -> None:
    server = start("busy")
    server.client().config_set("busy-reply-threshold", 100)
    looping = threading.Thread(
        target=lambda: ping_error_of_script(server), name="busy-script", daemon=True
    )
    looping.start()
    try:
        wait_until(
            lambda: classify_ping(ping_error(server.client()))[0] == "busy",
            timeout=10,
            what="BUSY replies while the script runs",
        )
        agent = agent_for(server, tmp_path)
        agent.turn()
        assert agent.state.liveness() == (True, "ok")
        assert (agent.state.ready, agent.state.ready_reason) == (False, "Redis is BUSY")
    finally:
        server.client().script_kill()
        looping.join(timeout=10)


def ping_error_of_script(server: Server) -> None:
    """Run a script that never ends on its own (SCRIPT KILL ends it)."""
    with contextlib.suppress(redis.RedisError):
        server.client(timeout=30).eval("while true do end", 0)


def test_a_hung_redis_turns_liveness_503_after_the_threshold(
    start: Callable[..., Server], tmp_path: Path
) -> None:
    server = start("hung")
    agent = agent_for(server, tmp_path)
    check = PingCheck(server.ip, PORT, Access(PASSWORD), agent.state, server.ip)
    assert check.turn() == "pong"
    os.kill(server.process.pid, signal.SIGSTOP)  # a hung node: the kernel still accepts
    try:
        assert classify_ping(ping_error(server.client(timeout=0.5)))[0] == "timeout"
        for turn in range(1, HUNG_AFTER_TIMEOUTS + 1):
            assert agent.state.liveness()[0] is True, f"not hung yet before PING {turn}"
            assert check.turn() == "timeout"
        alive, reason = agent.state.liveness()
        assert not alive and "did not answer" in reason
        # The heal loop's turn neither counts towards "hung" nor undoes it: only PINGs do.
        agent.turn()
        assert agent.state.liveness()[0] is False
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    check.turn()
    assert agent.state.liveness() == (True, "ok")


def test_a_failed_heal_leaves_readiness_to_redis_and_the_pod_map_is_kept(
    start: Callable[..., Server], tmp_path: Path
) -> None:
    master, replica = formed_pair(start)
    master_id, replica_id = master.node_id(), replica.node_id()
    wait_until(
        lambda: master.client().cluster("info")["cluster_state"] == "ok",
        timeout=20,
        what="cluster ok",
    )
    # Both pods restart at new addresses with their data (node ids stay): neither can find
    # the other by itself, so only a MEET from a sidecar can bring them together.
    for server in (master, replica):
        server.client().shutdown()
        server.process.wait(timeout=10)
    master = start("redis-0", host=0)
    moved = start("redis-1", host=1)
    assert (master.node_id(), moved.node_id()) == (master_id, replica_id)
    wait_until(
        lambda: master.client().cluster("info")["cluster_state"] == "ok",
        timeout=20,
        what="the master alone to serve its slots again",
    )

    agent = agent_for(master, tmp_path)
    addresses = {NAMING.pod_fqdn(1): moved.ip}
    agent.peers.resolve = addresses.get
    master.client().execute_command("ACL", "SETUSER", "default", "-cluster|meet")
    agent.turn()
    assert sample(agent, "sidecar_heal_failures_total") == 1
    assert (agent.state.ready, agent.state.ready_reason) == (True, "ok")

    pod_map = json.loads((agent.settings.nodes_conf.parent / POD_MAP_NAME).read_text())
    assert pod_map == {master_id: "redis-0", replica_id: "redis-1"}
    assert agent_for(master, tmp_path).loop.pod_map == pod_map  # read back by the next sidecar

    master.client().execute_command("ACL", "SETUSER", "default", "+cluster|meet")
    agent.meet_limit.last.clear()
    agent.turn()
    assert sample(agent, "sidecar_heal_meets_total") == 1

    def healed() -> bool:
        lines = parse_cluster_nodes(str(master.client().execute_command("CLUSTER", "NODES")))
        line = next(n for n in lines if n.node_id == replica_id)
        return line.address.ip == moved.ip and line.connected

    wait_until(healed, timeout=15, what="the master to reach the moved replica")


def test_a_sidecar_restarted_beside_its_running_redis_leaves_nodes_conf_alone(
    start: Callable[..., Server], tmp_path: Path
) -> None:
    """Redis holds a lock on nodes.conf and owns it while it runs: a restarted sidecar must not
    rewrite it, even when what it would read there looks wrong."""
    server = start("running")
    agent = agent_for(server, tmp_path)
    conf = agent.settings.nodes_conf
    conf.write_bytes(b"not a nodes.conf, but Redis's to handle\n")
    assert agent.startup() is True
    assert "already runs" in agent.state.startup_reason
    assert conf.read_bytes() == b"not a nodes.conf, but Redis's to handle\n"


def test_an_io_error_on_nodes_conf_holds_redis_back_with_the_reason(tmp_path: Path) -> None:
    agent = agent_for(f"127.{random.randint(20, 250)}.99.98", tmp_path)  # Redis not running
    agent.settings.nodes_conf.mkdir(parents=True)  # unreadable as a file: EISDIR
    assert agent.startup() is False
    assert agent.state.startup == "failed"
    assert "could not be read or written" in agent.state.startup_reason
    assert "Redis not started" in agent.state.startup_reason


def formed_pair(start: Callable[..., Server]) -> tuple[Server, Server]:
    """redis-0 a master of every slot, redis-1 its replica with the link up."""
    master = start("redis-0", host=0)
    replica = start("redis-1", host=1)
    master.client().execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
    master.client().execute_command("CLUSTER", "MEET", replica.ip, PORT, PORT + 10000)
    master_id = master.node_id()
    wait_until(
        lambda: replica.client().execute_command("CLUSTER", "REPLICATE", master_id),
        timeout=15,
        what="the replica to know its master",
        retry_on=(redis.ResponseError,),
    )
    wait_until(
        lambda: replica.client().info("replication")["master_link_status"] == "up",
        timeout=20,
        what="the replica's link up",
    )
    return master, replica


def test_a_turn_says_what_the_node_is_and_serves_it_on_status(
    start: Callable[..., Server], tmp_path: Path
) -> None:
    master, replica = formed_pair(start)
    assert agent_for(master, tmp_path, pod=0).turn() == "master of 16384 slots"
    agent = agent_for(replica, tmp_path, pod=1)
    assert agent.turn() == "replica of redis-0, link up"
    code, _, body = respond(agent.state, "/status")
    assert (code, json.loads(body)) == (
        200,
        {"status": "replica of redis-0, link up", "ready": True},
    )


def test_an_unexpected_error_in_a_step_is_counted_and_the_loop_turns_on(
    start: Callable[..., Server], tmp_path: Path
) -> None:
    master, _ = formed_pair(start)
    agent = agent_for(master, tmp_path)

    class BrokenPeers(Peers):
        def heal(self, *args: object) -> list[str]:
            raise KeyError("a bug in a step")

    naming = agent.settings.cluster.naming
    agent.loop.peers = BrokenPeers(
        naming,
        PORT,
        agent.metrics,
        resolve=agent.resolve,
        connect_peer=agent.peer_client,
        my_id=str,
    )
    sentence = agent.turn()
    assert "sidecar error: KeyError" in sentence
    assert sample(agent, "sidecar_loop_errors_total") == 1
    assert agent.state.ready is True  # a bug in a step about peers is no reason to be unready
    assert agent.state.sidecar_liveness() == (True, "ok")  # the turn finished
    agent.loop.peers = agent.peers  # the bug goes away: the next turn serves as before
    assert agent.turn() == "master of 16384 slots"
    assert agent.state.ready is True

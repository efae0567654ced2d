"""TLS on every link and least-privilege ACL users, on real servers: formation, failover, a full
restart, replaced nodes and a resize run over TLS with ACL users on, keys written before each
event read back after; each user can do its job and is refused outside it; a wrong CA is exit
code 8, not a retry loop; a renewed certificate is served without restarting Redis."""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from bootstrap.errors import ExitCode
from clusterkit.io.access import Access, TlsClient
from clusterkit.io.httpget import http_get
from clusterkit.io.redisio import connect
from clusterkit.io.waiting import wait_until
from devcluster import certs
from devcluster.cluster import DevCluster
from devcluster.health import wait_healthy
from devcluster.manifests import load as load_manifests
from tests.integration.helpers import missing_keys, write_keys, writing

pytestmark = [pytest.mark.integration, pytest.mark.needs_server]

MakeCluster = Callable[..., DevCluster]
KEYS = 1000
HEAL_SECONDS = 60.0


def secure(make_cluster: MakeCluster, pods: int = 6) -> DevCluster:
    """Pods up over TLS with ACL users, formed by the Job, holding KEYS keys."""
    cluster = make_cluster(pods, 1, tls=True)
    result = cluster.run_job()
    assert result.returncode == 0, result.events[-3:]
    write_keys(cluster, KEYS)
    return cluster


def keys() -> dict[str, str]:
    return {f"key:{i}": str(i) for i in range(KEYS)}


def role_of(cluster: DevCluster, pod: str) -> dict[str, str]:
    return next(r for r in cluster.roles() if r["pod"] == pod)


def healthy(cluster: DevCluster, pods: int = 6) -> None:
    left = wait_healthy(cluster, masters=pods // 2, replicas_per_master=1, timeout=HEAL_SECONDS)
    assert left == [], left


def user_client(cluster: DevCluster, pod: str, user: str, holder: str = "app") -> redis.Redis:
    state = cluster.require()
    record = state.pod(pod)
    credentials = cluster.credentials
    files = credentials.tls_files(holder)
    access = Access(credentials.password_of(user), user, TlsClient(files) if files else None)
    fqdn = state.naming.pod_fqdn(record.ordinal)
    return connect(record.ip, state.port, access, 2.0, server_name=fqdn)


def refused(client: redis.Redis, *command: object) -> str:
    """The error a command gets; fails the test when it succeeds."""
    try:
        reply = client.execute_command(*command)
    except redis.ResponseError as exc:
        return str(exc)
    raise AssertionError(f"{command[:2]} was allowed: {reply!r}")


@pytest.mark.slow
def test_failover_full_restart_replaced_node_and_scale_out_over_tls_lose_no_key(
    make_cluster: MakeCluster,
) -> None:
    cluster = secure(make_cluster)
    replica = next(r["pod"] for r in cluster.roles() if r["master"] == "redis-0")

    cluster.stop_pods(["redis-0"], prestop=False)  # a crash: Redis fails over on its own
    wait_until(
        lambda: role_of(cluster, replica)["role"] == "master",
        timeout=30,
        what=f"{replica} to take over",
        interval=0.3,
        retry_on=(redis.RedisError, OSError, StopIteration),
    )
    cluster.start_pods(["redis-0"])
    healthy(cluster)
    assert role_of(cluster, "redis-0")["master"] == replica
    assert missing_keys(cluster, keys()) == []

    pods = [p.name for p in cluster.require().pods]
    cluster.restart(pods)  # every pod back at a new address
    healthy(cluster)
    assert missing_keys(cluster, keys()) == []

    cluster.wipe(["redis-1"])  # a lost volume: a new node the sidecar joins back
    healthy(cluster)
    assert missing_keys(cluster, keys()) == []

    cluster.add_pods(2)  # a scale out: MIGRATE over TLS, as the bootstrap user
    with writing(cluster) as during:
        result = cluster.run_job(timeout=300)
    assert result.returncode == 0, result.events[-3:]
    healthy(cluster, pods=8)
    assert missing_keys(cluster, keys()) == []
    assert missing_keys(cluster, during) == []


def test_each_user_does_its_job_is_refused_outside_it_and_nobody_enters_without_a_cert(
    make_cluster: MakeCluster,
) -> None:
    cluster = secure(make_cluster)
    assert_nothing_without_a_certificate(cluster)
    app = user_client(cluster, "redis-0", "app")
    assert app.execute_command("CLUSTER", "SLOTS")
    assert app.execute_command("CLUSTER", "INFO")
    for command in (
        ("CONFIG", "GET", "masterauth"),
        ("FLUSHALL",),
        ("CLUSTER", "RESET"),
        ("MIGRATE", "127.0.0.1", 1, "", 0, 1000, "KEYS", "key:1"),
        ("DEBUG", "SLEEP", "0"),
        ("ACL", "LIST"),
        ("SHUTDOWN",),
    ):
        refused(app, *command)

    sidecar = user_client(cluster, "redis-0", "sidecar")
    assert sidecar.execute_command("CLUSTER", "NODES")
    assert "permission" in refused(sidecar, "SET", "key:1", "overwritten")
    assert "permission" in refused(sidecar, "GET", "key:1")
    assert "permission" in refused(sidecar, "FLUSHALL")

    bootstrap = user_client(cluster, "redis-0", "bootstrap")
    assert bootstrap.execute_command("CLUSTER", "NODES")
    for command in (("FLUSHALL",), ("CONFIG", "GET", "*"), ("SET", "key:1", "x"), ("KEYS", "*")):
        assert "permission" in refused(bootstrap, *command)

    replication = user_client(cluster, "redis-0", "replication")
    assert "permission" in refused(replication, "GET", "key:1")
    assert "permission" in refused(replication, "CLUSTER", "NODES")

    # The default user is off: the password of any user does not open it.
    with pytest.raises(redis.AuthenticationError):
        user_client(cluster, "redis-0", "app").execute_command(
            "AUTH", cluster.credentials.password_of("app")
        )
    assert missing_keys(cluster, keys()) == []


def assert_nothing_without_a_certificate(cluster: DevCluster) -> None:
    """A TLS client without a certificate, a plain client, a plain bus peer: no answer."""
    pod = cluster.require().pod("redis-0")
    app = cluster.credentials.tls_files("app")
    assert app is not None
    context = ssl.create_default_context(cafile=str(app.ca_file))
    context.check_hostname = False
    assert not pinged(pod.ip, 6379, context).startswith(b"-NOAUTH")  # no client certificate
    context.load_cert_chain(str(app.cert_file), str(app.key_file))
    assert pinged(pod.ip, 6379, context).startswith(b"-NOAUTH")  # with one: no user yet
    plain = redis.Redis(host=pod.ip, port=6379, socket_timeout=2, socket_connect_timeout=2)
    with pytest.raises(redis.RedisError):
        plain.ping()
    bus = cluster.require().port + 10000
    with socket.create_connection((pod.ip, bus), timeout=2) as raw:  # the bus is TLS too
        raw.sendall(b"RCmb" + bytes(2044))
        raw.settimeout(2)
        try:
            answer = raw.recv(64)
        except OSError:
            answer = b""
        assert not answer.startswith(b"RCmb")


def pinged(ip: str, port: int, context: ssl.SSLContext) -> bytes:
    """What a PING over TLS gets back; b"" when the handshake or the read is refused."""
    try:
        with (
            socket.create_connection((ip, port), timeout=2) as raw,
            context.wrap_socket(raw) as tls,
        ):
            tls.sendall(b"PING\r\n")
            return tls.recv(64)
    except OSError:  # ssl.SSLError included
        return b""


def test_a_wrong_ca_is_exit_code_8_at_once(make_cluster: MakeCluster, tmp_path: Path) -> None:
    cluster = make_cluster(6, 1, tls=True)
    other = certs.make_ca(tmp_path / "other-ca", "someone else's CA")
    result = cluster.run_job(TLS_CA_FILE=str(other), TIMEOUT_SECONDS="120")
    assert result.returncode == ExitCode.TLS_FAILED
    failure = result.last("tls_failed")
    assert failure is not None and "TLS_CA_FILE" in str(failure["error"])


def test_a_renewed_certificate_is_served_without_restarting_redis(
    make_cluster: MakeCluster,
) -> None:
    cluster = secure(make_cluster)
    state = cluster.require()
    pod = state.pod("redis-0")
    pid = pod.pid
    files = cluster.credentials.tls_files("redis-0")
    assert files is not None

    def served_serial() -> str:
        context = ssl.create_default_context(cafile=str(files.ca_file))
        context.check_hostname = False
        app = cluster.credentials.tls_files("app")
        assert app is not None
        context.load_cert_chain(str(app.cert_file), str(app.key_file))
        with (
            socket.create_connection((pod.ip, state.port), timeout=2) as raw,
            context.wrap_socket(raw) as tls,
        ):
            peer = tls.getpeercert()
            assert peer is not None
            return str(peer["serialNumber"])

    before = served_serial()
    renewed = files.cert_file.parent
    certs.issue(cluster.dirs.ca_dir, renewed, [state.naming.pod_fqdn(0)], "redis-0")
    wait_until(
        lambda: served_serial() != before,
        timeout=20,
        what="Redis to serve the renewed certificate",
        interval=0.3,
    )
    assert cluster.require().pod("redis-0").pid == pid
    port = load_manifests().sidecar_port
    _, metrics = http_get(f"http://{pod.ip}:{port}/metrics")
    # At least once: the test rewrites key and certificate one after the other, which the
    # sidecar may see as two changes.
    reloads = re.search(r'sidecar_tls_reloads_total\{outcome="ok"\} ([0-9.]+)', metrics)
    assert reloads is not None and float(reloads.group(1)) >= 1
    healthy(cluster)
    assert missing_keys(cluster, keys()) == []


@pytest.mark.slow
def test_a_single_password_secret_still_works_beside_users(make_cluster: MakeCluster) -> None:
    """The single-password layout: only `password` in the Secret (the programs fall back to
    it as the default user); then with the users added beside it, the old password keeps
    working for applications (default = the app's rules) until it is removed."""
    cluster = make_cluster(6, 1)  # the single-password layout
    assert cluster.run_job().returncode == 0
    write_keys(cluster, KEYS)
    assert missing_keys(cluster, keys()) == []
    old = cluster.credentials.password_of(None)
    state = cluster.require()
    for user in ("app", "bootstrap", "sidecar", "replication"):
        (cluster.dirs.auth_dir / user).write_bytes(f"{user}-new-password".encode())
    state.users = True
    cluster.dirs.save(state)
    cluster.restart([p.name for p in state.pods])  # the pods roll with the new Secret
    healthy(cluster)
    assert missing_keys(cluster, keys()) == []
    legacy = connect(state.pod("redis-0").ip, state.port, Access(old), 2.0)
    assert legacy.execute_command("CLUSTER", "INFO")
    assert "permission" in refused(legacy, "FLUSHALL")
    assert cluster.run_job().returncode == 0  # the Job now as `bootstrap`

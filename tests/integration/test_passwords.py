"""Any password works, an empty or missing one is refused, on real servers: every byte of the
Secret's value is the password Redis uses (the sidecar writes Redis's auth include), and the
clients, the replicas, the Job and the sidecars all authenticate with it."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from clusterkit.core.redisconf import password_bytes
from clusterkit.io.dnsio import make_resolver
from clusterkit.io.settings import ClusterSettings
from devcluster.cluster import DevCluster
from devcluster.health import wait_healthy
from devcluster.servers import missing_server
from sidecar.agent import Agent
from sidecar.health import HealthState
from sidecar.metrics import Metrics
from sidecar.settings import SidecarSettings
from tests.integration.helpers import missing_keys, write_keys

pytestmark = [pytest.mark.integration, pytest.mark.needs_server]

TRICKY = b"p a\"s\\s\\n\\t\\x41 %s%%'$(id) \xc3\xa9\xff\x00end\r\n"
"""Quotes, backslashes and `\\n`-like sequences, spaces, `%`, shell syntax, UTF-8 and non-UTF-8
bytes, a NUL, and a trailing CRLF: all of it is the password."""
KEYS = 500


def test_a_password_of_any_bytes_serves_clients_replicas_the_job_and_sidecars(
    tmp_path: Path,
) -> None:
    problem = missing_server()
    if problem:
        pytest.fail(problem)
    cluster = DevCluster(tmp_path / "tricky")
    cluster.up(6, 1, password=TRICKY)
    try:
        assert password_bytes(cluster.password) == TRICKY
        job = cluster.run_job()  # the Job authenticates on every node, MIGRATE AUTH included
        assert job.returncode == 0, job.events[-3:]
        # Replicas authenticate to their masters (masterauth), sidecars see a formed cluster.
        assert wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=30) == []
        state = cluster.require()
        pod = state.pods[0]
        raw = redis.Redis(host=pod.ip, port=state.port, password=TRICKY)  # type: ignore[arg-type]
        assert raw.ping() is True
        shorter = TRICKY.rstrip(b"\r\n")  # the bytes up to the CRLF are not the password
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host=pod.ip, port=state.port, password=shorter).ping()  # type: ignore[arg-type]
        write_keys(cluster, KEYS)
        assert missing_keys(cluster, {f"key:{i}": str(i) for i in range(KEYS)}) == []
    finally:
        cluster.down()


@pytest.mark.parametrize(
    ("content", "reason"), [(b"", "is empty"), (None, "cannot be read")], ids=["empty", "missing"]
)
def test_an_empty_or_missing_password_holds_redis_back_with_the_reason(
    tmp_path: Path, content: bytes | None, reason: str
) -> None:
    secret = tmp_path / "password"
    if content is not None:
        secret.write_bytes(content)
    auth_conf = tmp_path / "auth.conf"
    settings = SidecarSettings(
        # Port 1: nothing listens there, so Redis is not running yet, as on a pod's first start.
        ClusterSettings("redis", "redis-hl", redis_port=1, redis_password_file=secret),
        pod_ip="127.0.0.1",
        pod_name="redis-0",
        nodes_conf=tmp_path / "nodes.conf",
        termination_log=tmp_path / "termination-log",
        auth_conf=auth_conf,
    )
    state = HealthState(Metrics())
    agent = Agent(settings, state, make_resolver(("127.0.0.1", 1), timeout=0.2))
    assert agent.startup() is False  # /startupz answers 500: the kubelet never starts Redis
    assert state.startup == "failed" and reason in state.startup_reason
    assert "REDIS_PASSWORD_FILE" in state.startup_reason
    assert not auth_conf.exists()
    assert reason in (tmp_path / "termination-log").read_text()

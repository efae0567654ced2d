"""Liveness never cascades, on real servers: with a third of the pods hung (SIGSTOP: the kernel
still accepts their connections, nothing answers), the surviving pods' liveness endpoints stay
200 the whole time, while each hung pod's own /livez says so."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest

from clusterkit.httpget import http_get
from devcluster import manifests
from devcluster.cluster import DevCluster
from devcluster.health import wait_healthy
from tests.integration.writers import missing_keys, write_keys

pytestmark = pytest.mark.integration

MakeCluster = Callable[..., DevCluster]
PODS = 22
FROZEN = PODS // 2
"""Every odd ordinal: more hung peers than the old loop could ask in 10 s (1 s each, in turn)."""
FROZEN_SECONDS = 25.0
"""Failure detection (5 s) plus the longest the old loop took to notice it was late."""
KEYS = 2000
PROBES = ("/livez", "/livez/sidecar")


def test_hung_peers_never_fail_the_survivors_liveness(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(PODS, 1)
    assert cluster.run_job(timeout=300).returncode == 0
    write_keys(cluster, KEYS)
    pods = cluster.require().pods
    frozen = [p for p in pods if p.ordinal % 2 == 1]
    assert len(frozen) == FROZEN
    survivors = [p for p in pods if p not in frozen]
    port = manifests.load().sidecar_port
    failures: list[tuple[str, str, int]] = []
    hung_seen: set[str] = set()
    for pod in frozen:
        os.kill(pod.pid or 0, signal.SIGSTOP)
    try:
        end = time.monotonic() + FROZEN_SECONDS
        for _ in range(10_000):  # bounded; ends at FROZEN_SECONDS
            if time.monotonic() > end:
                break
            for pod in survivors:
                for path in PROBES:
                    status, _ = http_get(f"http://{pod.ip}:{port}{path}", timeout=5.0)
                    if status != 200:
                        failures.append((pod.name, path, status))
            for pod in frozen:
                if http_get(f"http://{pod.ip}:{port}/livez", timeout=5.0)[0] == 503:
                    hung_seen.add(pod.name)
            time.sleep(0.5)
    finally:
        for pod in frozen:
            os.kill(pod.pid or 0, signal.SIGCONT)
    assert failures == []
    # The probe can fail: each hung pod's own sidecar reported its Redis hung.
    assert hung_seen == {p.name for p in frozen}
    assert wait_healthy(cluster, masters=PODS // 2, replicas_per_master=1, timeout=60) == []
    assert missing_keys(cluster, {f"key:{i}": str(i) for i in range(KEYS)}) == []

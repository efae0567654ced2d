"""Liveness never cascades, on real servers: with half the pods hung (SIGSTOP: the kernel still
accepts their connections, nothing answers), then with their names pointing at addresses that
black-hole (connections never complete), the surviving pods' liveness endpoints stay 200 the
whole time, while each hung pod's own /livez says so."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator, Sequence

import pytest

from clusterkit.io.httpget import http_get
from devcluster import manifests
from devcluster.cluster import DevCluster
from devcluster.health import wait_healthy
from devcluster.state import PodRecord
from tests.integration.helpers import missing_keys, write_keys

pytestmark = [pytest.mark.integration, pytest.mark.serial]

MakeCluster = Callable[..., DevCluster]
PODS = 22
FROZEN = PODS // 2
"""Every odd ordinal: more unreachable peers than the old loop could ask in 10 s (1 s each, in
turn, inside the loop whose age was liveness; the same test against it saw survivors' 503s)."""
WATCH_SECONDS = 25.0
"""Failure detection (5 s) plus the longest the old loop took to notice it was late."""
KEYS = 2000
PROBES = ("/livez", "/livez/sidecar")


def watch(
    survivors: Sequence[PodRecord], hung: Sequence[PodRecord]
) -> tuple[list[tuple[str, str, int]], set[str]]:
    """(non-200 answers of the survivors' liveness probes, hung pods whose /livez said 503)
    over WATCH_SECONDS, polled about twice a second."""
    port = manifests.load().sidecar_port
    failures: list[tuple[str, str, int]] = []
    hung_seen: set[str] = set()
    end = time.monotonic() + WATCH_SECONDS
    for _ in range(10_000):  # bounded; ends at WATCH_SECONDS
        if time.monotonic() > end:
            break
        for pod in survivors:
            for path in PROBES:
                status, _ = http_get(f"http://{pod.ip}:{port}{path}", timeout=5.0)
                if status != 200:
                    failures.append((pod.name, path, status))
        for pod in hung:
            if http_get(f"http://{pod.ip}:{port}/livez", timeout=5.0)[0] == 503:
                hung_seen.add(pod.name)
        time.sleep(0.5)
    return failures, hung_seen


@contextlib.contextmanager
def black_holes(ips: Sequence[str], port: int) -> Iterator[None]:
    """Listeners on `ips` whose accept queue is full: the kernel drops every new SYN, so a
    connection there never completes (as to an address whose packets are dropped)."""
    sockets: list[socket.socket] = []
    try:
        for ip in ips:
            listener = socket.socket()
            listener.bind((ip, port))
            listener.listen(0)
            sockets.append(listener)
            for _ in range(3):  # fill the queue; these stay pending
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex((ip, port))
                sockets.append(filler)
            probe = socket.socket()
            probe.settimeout(0.5)
            with pytest.raises(TimeoutError):
                probe.connect((ip, port))
            probe.close()
        yield
    finally:
        for sock in sockets:
            sock.close()


@pytest.mark.slow
def test_hung_or_black_holed_peers_never_fail_the_survivors_liveness(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(PODS, 1)
    assert cluster.run_job(timeout=300).returncode == 0
    write_keys(cluster, KEYS)
    before = {f"key:{i}": str(i) for i in range(KEYS)}
    state = cluster.require()
    frozen = [p for p in state.pods if p.ordinal % 2 == 1]
    assert len(frozen) == FROZEN
    survivors = [p for p in state.pods if p not in frozen]

    for pod in frozen:
        os.kill(pod.pid or 0, signal.SIGSTOP)
    try:
        failures, hung_seen = watch(survivors, frozen)
    finally:
        for pod in frozen:
            os.kill(pod.pid or 0, signal.SIGCONT)
    assert failures == []
    # The probe can fail: each hung pod's own sidecar reported its Redis hung.
    assert hung_seen == {p.name for p in frozen}
    assert wait_healthy(cluster, masters=PODS // 2, replicas_per_master=1, timeout=60) == []
    assert missing_keys(cluster, before) == []

    # The same pods gone, their names resolving to addresses that black-hole.
    names = [p.name for p in frozen]
    cluster.stop_pods(names, prestop=False)
    holes = [f"127.{state.octet}.254.{i + 1}" for i in range(len(names))]
    with black_holes(holes, state.port):
        for name, hole in zip(names, holes, strict=True):
            record = state.pod(name)
            record.ip, record.running = hole, True
        cluster.dirs.save(state)
        cluster.write_zone()
        failures, _ = watch(survivors, [])
        for name in names:
            state.pod(name).running = False
        cluster.dirs.save(state)
    assert failures == []
    cluster.start_pods(names)
    assert wait_healthy(cluster, masters=PODS // 2, replicas_per_master=1, timeout=90) == []
    assert missing_keys(cluster, before) == []

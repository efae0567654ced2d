"""A StatefulSet rolling update on devcluster: what a changed pod template does to the pods."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from clusterkit.io.httpget import http_get
from clusterkit.io.waiting import wait_until
from devcluster.cluster import DevCluster

RESEND_SECONDS = 6.0
"""Longer than Redis's manual-failover timeout (5 s), so one attempt ends before the next."""


def rollout(
    cluster: DevCluster,
    down_seconds: float = 0.0,
    min_ready_seconds: float | None = None,
    *,
    prestop: bool = True,
    ready_timeout: float = 120.0,
    progress: Callable[[str, str], None] | None = None,
) -> None:
    """From the highest ordinal down, each pod stopped as the kubelet stops it (preStop hook,
    then SIGTERM; `prestop=False`: no hook, as before it existed), down `down_seconds` (as a
    rescheduled pod is), started at a new address with its data, and the next one only once
    this one has been ready for `min_ready_seconds` (default: the manifests' minReadySeconds).
    `progress(pod, step)` hears each step: stopping, started, ready."""
    m = cluster.manifests
    settle = m.min_ready_seconds if min_ready_seconds is None else min_ready_seconds
    state = cluster.require()
    for pod in sorted(state.pods, key=lambda p: -p.ordinal):
        if progress:
            progress(pod.name, "stopping")
        cluster.stop_pods([pod.name], prestop=prestop)
        time.sleep(down_seconds)
        cluster.start_pods([pod.name])
        if progress:
            progress(pod.name, "started")
        url = cluster.sidecar_url(pod, m.readiness_path)

        def ready(url: str = url) -> bool:
            return http_get(url)[0] == 200

        wait_until(ready, timeout=ready_timeout, what=f"{pod.name} to be ready", interval=0.2)
        if progress:
            progress(pod.name, "ready")
        time.sleep(settle)


def fail_over(cluster: DevCluster, replica: str, timeout: float = 60.0) -> None:
    """A manual failover to `replica` (plain CLUSTER FAILOVER), sent again every few seconds
    until its Redis says it is a master: Redis drops a manual failover that does not finish
    within its own timeout (5 s) and changes nothing, which busy test machines do see."""
    sent = [time.monotonic() - RESEND_SECONDS]

    def leads() -> bool:
        client = cluster.client(replica)
        if client.execute_command("ROLE")[0] == "master":
            return True
        if time.monotonic() - sent[0] >= RESEND_SECONDS:
            sent[0] = time.monotonic()
            client.execute_command("CLUSTER", "FAILOVER")
        return False

    wait_until(
        leads,
        timeout=timeout,
        what=f"{replica} to take over",
        interval=0.1,
        retry_on=(redis.RedisError,),
    )

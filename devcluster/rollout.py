"""A StatefulSet rolling update on devcluster: what a changed pod template does to the pods."""

from __future__ import annotations

import time
from collections.abc import Callable

from clusterkit.httpget import http_get
from clusterkit.waiting import wait_until
from devcluster.cluster import DevCluster


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

"""Where pods run: each sidecar's /node tells its Kubernetes node, so the plan can keep every
replica off its master's node. Without answers the plan falls back to ordinals alone."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import structlog

from clusterkit.httpget import http_get
from clusterkit.naming import PodNaming
from clusterkit.plan import Plan

log = structlog.get_logger()


def node_of(ip: str, port: int) -> str | None:
    status, body = http_get(f"http://{ip}:{port}/node")
    try:
        node = json.loads(body).get("kubernetes_node") if status == 200 else None
    except ValueError:
        return None
    return str(node) if node else None


def read_hosts(addresses: dict[int, str], port: int, naming: PodNaming) -> dict[int, str]:
    """Pod ordinal -> Kubernetes node for every pod whose sidecar answered; {} if any did not."""
    with ThreadPoolExecutor(max_workers=min(32, len(addresses) or 1)) as pool:
        found = dict(
            zip(addresses, pool.map(lambda i: node_of(addresses[i], port), addresses), strict=True)
        )
    missing = [naming.pod_name(i) for i, node in sorted(found.items()) if node is None]
    if missing:
        log.warning(
            "placement_unknown",
            missing=missing[:10],
            hint="sidecars did not answer /node: replicas are placed by ordinal only",
        )
        return {}
    return {i: node for i, node in found.items() if node is not None}


def warn_colocated(plan: Plan, hosts: dict[int, str], naming: PodNaming) -> None:
    """One warning when some replica shares its master's node (the nodes left no choice)."""
    together = {
        naming.pod_name(r): hosts[m]
        for r, m in plan.replica_of.items()
        if hosts.get(r) is not None and hosts.get(r) == hosts.get(m)
    }
    if together:
        log.warning(
            "replicas_on_master_node",
            replicas=together,
            hint="add Kubernetes nodes or spread the pods to survive a node loss",
        )

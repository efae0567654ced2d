"""Where pods run: each sidecar's /node tells its Kubernetes node and zone, so the plan can
spread masters and keep every replica out of its master's failure domain. Without answers the
plan falls back to ordinals alone."""

from __future__ import annotations

import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import structlog

from clusterkit.core.domains import Placement, failure_domains
from clusterkit.core.naming import PodNaming
from clusterkit.core.plan import Plan
from clusterkit.io.httpget import http_get

log = structlog.get_logger()


def node_report(ip: str, port: int, timeout: float = 1.0) -> dict[str, object] | None:
    """What the pod's sidecar says on /node; None when it does not answer."""
    status, body = http_get(f"http://{ip}:{port}/node", timeout)
    try:
        found = json.loads(body) if status == 200 else None
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def placement_of(ip: str, port: int) -> Placement | None:
    """The pod's node and zone as its sidecar reports them; None when it does not answer."""
    found = node_report(ip, port)
    if found is None or not found.get("kubernetes_node"):
        return None
    return Placement(str(found["kubernetes_node"]), str(found.get("zone") or ""))


def node_of(ip: str, port: int) -> str | None:
    placement = placement_of(ip, port)
    return None if placement is None else placement.node


def read_placements(
    addresses: Mapping[int, str], port: int, naming: PodNaming, *, quiet: bool = False
) -> dict[int, Placement]:
    """Pod ordinal -> placement for every pod whose sidecar answered; {} if any did not."""
    with ThreadPoolExecutor(max_workers=min(32, len(addresses) or 1)) as pool:
        found = dict(
            zip(
                addresses,
                pool.map(lambda i: placement_of(addresses[i], port), addresses),
                strict=True,
            )
        )
    missing = [naming.pod_name(i) for i, p in sorted(found.items()) if p is None]
    if missing:
        if not quiet:
            log.warning(
                "placement_unknown",
                missing=missing[:10],
                hint="sidecars did not answer /node: replicas are placed by ordinal only",
            )
        return {}
    return {i: p for i, p in found.items() if p is not None}


def read_hosts(addresses: Mapping[int, str], port: int, naming: PodNaming) -> dict[int, str]:
    """Pod ordinal -> failure domain (zone, else Kubernetes node); {} if a sidecar did not
    answer."""
    return failure_domains(read_placements(addresses, port, naming))


def warn_colocated(plan: Plan, hosts: dict[int, str], naming: PodNaming) -> None:
    """One warning when some replica shares its master's failure domain (no choice was left)."""
    together = {
        naming.pod_name(r): hosts[m]
        for r, m in plan.replica_of.items()
        if hosts.get(r) is not None and hosts.get(r) == hosts.get(m)
    }
    if together:
        log.warning(
            "replicas_on_master_node",
            replicas=together,
            hint="add Kubernetes nodes or zones, or spread the pods, to survive a domain loss",
        )

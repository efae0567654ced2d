"""The preStop handover, as the redis container's hook asks for it (sidecar.prestopwatch): a
master with slots hands over to its best replica before its pod stops."""

from __future__ import annotations

from dataclasses import asdict

import structlog

from clusterkit.io.access import Access
from sidecar.handover import hand_over
from sidecar.health import HealthState
from sidecar.layout import LayoutWatch
from sidecar.settings import SidecarSettings

log = structlog.get_logger()


def prestop(
    settings: SidecarSettings, state: HealthState, access: Access, layout: LayoutWatch | None
) -> dict[str, object]:
    """Hand over and return once this node is a replica (bounded); anything else at once.
    From its first moment, /node says `stopping` and no layout repair starts here."""
    log.info("prestop_started", timeout_seconds=settings.handover_timeout_seconds)
    state.stopping = True
    if layout is not None:
        layout.stopping = True
    result = hand_over(
        settings.pod_ip,
        settings.cluster.redis_port,
        access,
        settings.handover_timeout_seconds,
        server_name=settings.pod_fqdn,
        domains=layout.domains if layout is not None else {},
    )
    state.metrics.handovers.labels(result.outcome).inc()
    level = log.warning if result.outcome in ("timed_out", "failed") else log.info
    level("prestop_done", **asdict(result))
    return asdict(result)

"""`python -m sidecar status [--json]`: the cluster as this pod's Redis sees it, a row per pod
(node, zone, role, master, slots, link, lag, readiness) and the failure-domain verdict, the way
`patronictl list` shows a Patroni cluster. It reads each pod's Redis and its sidecar's /node and
/readyz with the sidecar's own credentials: no Kubernetes API."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import redis

from clusterkit.core.nodes import NodeLine, parse_cluster_nodes
from clusterkit.core.viewlayout import ordinals_in_view
from clusterkit.io.access import Access
from clusterkit.io.httpget import http_get
from clusterkit.io.placement import placement_of
from clusterkit.io.redisio import connect, info_fields
from clusterkit.io.settings import SettingsError
from sidecar.exitcodes import ExitCode
from sidecar.fixconf import read_pod_map
from sidecar.settings import SidecarSettings, parse_sidecar_settings
from sidecar.statustable import PodReading, Status, build_status

TIMEOUT_SECONDS = 1.0


def readyz_reason(ip: str, port: int) -> str:
    status, body = http_get(f"http://{ip}:{port}/readyz", TIMEOUT_SECONDS)
    if status == 0:
        return "sidecar not answering"
    try:
        reason = str(json.loads(body).get("reason", ""))
    except (ValueError, AttributeError):
        reason = body[:80]
    return "ready" if status == 200 else f"not ready: {reason}"


def read_pod(settings: SidecarSettings, access: Access, line: NodeLine, fqdn: str) -> PodReading:
    ip, port = line.address.ip, settings.cluster.redis_port
    if not ip:
        return PodReading(ready_reason="no address")
    client = connect(ip, port, access, TIMEOUT_SECONDS, server_name=fqdn)
    try:
        replication = info_fields(client.execute_command("INFO", "replication"))
    except (redis.RedisError, OSError):
        replication = {}
    finally:
        client.close()
    return PodReading(
        placement=placement_of(ip, settings.http_port),
        ready_reason=readyz_reason(ip, settings.http_port),
        replication=replication,
    )


def gather(settings: SidecarSettings, access: Access) -> Status:
    """Read this pod's CLUSTER NODES, then every pod it lists, all at once."""
    naming = settings.cluster.naming
    own = connect(
        settings.pod_ip,
        settings.cluster.redis_port,
        access,
        TIMEOUT_SECONDS,
        server_name=settings.pod_fqdn,
    )
    try:
        nodes = parse_cluster_nodes(str(own.execute_command("CLUSTER", "NODES")))
    finally:
        own.close()
    ordinals = ordinals_in_view(nodes, naming, read_pod_map(settings.nodes_conf))

    def fqdn(line: NodeLine) -> str:
        known = ordinals.get(line.node_id)
        return naming.pod_fqdn(known) if known is not None else line.address.hostname

    with ThreadPoolExecutor(max_workers=min(32, len(nodes) or 1)) as pool:
        readings = list(pool.map(lambda n: read_pod(settings, access, n, fqdn(n)), nodes))
    by_name = {
        naming.pod_name(ordinals[n.node_id]): r
        for n, r in zip(nodes, readings, strict=True)
        if n.node_id in ordinals
    }
    return build_status(nodes, ordinals, naming, by_name)


def status_command(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    """Print the status; 0 when it was read, else the reason on stderr and a distinct code."""
    as_json = "--json" in argv
    try:
        settings = parse_sidecar_settings([a for a in argv if a != "--json"], environ)
        access = settings.cluster.read_access()
    except SettingsError as exc:
        print(f"bad settings: {exc}", file=sys.stderr)
        return ExitCode.BAD_SETTINGS
    try:
        status = gather(settings, access)
    except (redis.RedisError, OSError) as exc:
        print(
            f"this pod's Redis at {settings.pod_ip}:{settings.cluster.redis_port} did not"
            f" answer CLUSTER NODES ({exc}): run the command in another pod",
            file=sys.stderr,
        )
        return ExitCode.REDIS_UNREACHABLE
    print(status.as_json() if as_json else status.as_table())
    return ExitCode.OK

"""The sidecar's settings: the shared cluster settings plus what only the sidecar needs."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from clusterkit.io.settings import ClusterSettings, SettingsError, parse_settings

ENDPOINT_TYPES = ("", "ip", "hostname", "unknown-endpoint")


@dataclass(frozen=True)
class SidecarSettings:
    """What `python -m sidecar` needs to know about its pod and the StatefulSet."""

    cluster: ClusterSettings
    """The StatefulSet, its Redis and logging, shared with the Job."""
    pod_ip: str
    """POD_IP: this pod's address (Downward API status.podIP)."""
    pod_name: str
    """POD_NAME: this pod's name (metadata.name), e.g. redis-3."""
    node_name: str = ""
    """NODE_NAME: the Kubernetes node this pod runs on (spec.nodeName), reported on /node."""
    zone: str = ""
    """ZONE: this pod's zone, from the Downward API label `topology.kubernetes.io/zone`
    (Kubernetes copies the node's label onto the pod from 1.35 on; a pod without the label
    gets an empty value). Reported on /node; empty: zones unknown, nodes are the failure
    domains."""
    nodes_conf: Path = Path("/data/nodes.conf")
    """NODES_CONF: Redis's cluster-config-file."""
    http_host: str = ""
    """HTTP_HOST: address the health and metrics server listens on; empty: every address of
    both families (IPv4 and IPv6, so probes work on single-stack IPv6 and dual-stack pods;
    IPv4 only where the kernel has no IPv6)."""
    http_port: int = 9380
    """HTTP_PORT: port of /startupz, /livez, /readyz, /metrics and /node."""
    heal_interval_seconds: float = 1.0
    """HEAL_INTERVAL_SECONDS: how often the loop checks Redis and heals peers."""
    termination_log: Path = Path("/dev/termination-log")
    """TERMINATION_LOG: where a fatal startup error is written for `kubectl describe pod`."""
    auth_conf: Path | None = None
    """AUTH_CONF: where the sidecar writes Redis's include before Redis starts: the ACL file
    and replication credentials (or requirepass), and the TLS settings; the redis container
    includes it. Unset: Redis gets its configuration elsewhere."""
    users_dir: Path | None = None
    """USERS_DIR: the users Secret's mount (keys app, bootstrap, sidecar, replication: one
    password each), from which the sidecar writes Redis's ACL file. A Secret holding only
    `password` (the single-password layout) gives Redis that one password (requirepass)."""
    acl_file: Path | None = None
    """ACL_FILE: where the sidecar writes Redis's ACL file (hashed passwords), which the
    include names; an in-memory volume both containers mount."""
    app_acl_rules: str = ""
    """APP_ACL_RULES: the `app` user's rules in Redis ACL syntax (`~* &* +@read ...`), instead
    of the default: data commands on every key, no @admin, @dangerous or MIGRATE."""
    preferred_endpoint_type: str = ""
    """PREFERRED_ENDPOINT_TYPE: Redis's cluster-preferred-endpoint-type (ip, hostname or
    unknown-endpoint) in the include; empty keeps Redis's default (ip). With TLS, `hostname`
    lets clients check a redirect's certificate against the pod's FQDN."""
    handover_timeout_seconds: float = 20.0
    """HANDOVER_TIMEOUT_SECONDS: how long the preStop handover waits for a replica to take over
    this master's slots before it lets the pod stop anyway; the pod's
    terminationGracePeriodSeconds covers it plus Redis's own shutdown-timeout."""
    handover_dir: Path = Path("/run/handover")
    """HANDOVER_DIR: the pod's in-memory volume, mounted in both containers, where the redis
    container's preStop hook asks for the handover (file `request`) and waits for the answer
    (file `done`, JSON); nothing outside the pod can ask."""

    crash_failover: bool = True
    """CRASH_FAILOVER: when this pod's Redis is a master with slots and stops accepting
    connections (refused CRASH_REFUSALS times in a row: it died, it is not hung), tell its best
    replica `CLUSTER FAILOVER FORCE` at once instead of waiting cluster-node-timeout and an
    election. Never while Redis starts or loads, never once the preStop hook has begun."""
    crash_refusals: int = 3
    """CRASH_REFUSALS: refused connections in a row to this pod's own Redis that mean it
    crashed (any reply, LOADING or a timeout starts the count again)."""
    crash_probe_seconds: float = 0.1
    """CRASH_PROBE_SECONDS: how often the crash watch PINGs this pod's Redis while it is a
    master with slots: CRASH_REFUSALS x this is how long a crash takes to be acted on."""

    drift_quiet_seconds: float = 60.0
    """DRIFT_QUIET_SECONDS: the layout is repaired (a role swap or a replica move) only after
    this long without any failover, role change or failing node seen, so that the repair never
    fights a rollout or node drain in progress."""
    drift_check_seconds: float = 10.0
    """DRIFT_CHECK_SECONDS: how often a replica's sidecar observes every pod to check the
    failure-domain layout (each check reads every pod once)."""
    drift_max_steps_per_hour: int = 4
    """DRIFT_MAX_STEPS_PER_HOUR: the most layout repairs this pod carries out in any hour, so
    roles never flap; 0 turns the repair off (the layout is then only reported)."""

    def __post_init__(self) -> None:
        for name, value in (
            ("DRIFT_QUIET_SECONDS", self.drift_quiet_seconds),
            ("DRIFT_CHECK_SECONDS", self.drift_check_seconds),
            ("CRASH_PROBE_SECONDS", self.crash_probe_seconds),
        ):
            if not math.isfinite(value) or value <= 0:
                raise SettingsError(f"{name} must be a positive number")
        if self.crash_refusals < 1:
            raise SettingsError("CRASH_REFUSALS must be 1 or more")
        if self.drift_max_steps_per_hour < 0:
            raise SettingsError("DRIFT_MAX_STEPS_PER_HOUR must be 0 or more")
        if not 0 < self.http_port < 65536:
            raise SettingsError(f"HTTP_PORT={self.http_port} must be 1..65535")
        interval = self.heal_interval_seconds
        if not math.isfinite(interval) or interval <= 0:
            raise SettingsError("HEAL_INTERVAL_SECONDS must be a positive number")
        handover = self.handover_timeout_seconds
        if not math.isfinite(handover) or handover <= 0:
            raise SettingsError("HANDOVER_TIMEOUT_SECONDS must be a positive number")
        if any(c in self.app_acl_rules for c in "\r\n\0"):
            raise SettingsError("APP_ACL_RULES must be one line of ACL rules")
        if any(
            word in ("on", "off", "nopass", "resetpass") or word[:1] in "<>#!"
            for word in self.app_acl_rules.split()
        ):
            raise SettingsError(
                "APP_ACL_RULES holds rules only: the password comes from the users Secret"
                " (no on, off, nopass, resetpass, >, <, #, !)"
            )
        if self.preferred_endpoint_type not in ENDPOINT_TYPES:
            raise SettingsError(
                f"PREFERRED_ENDPOINT_TYPE={self.preferred_endpoint_type!r} must be one of"
                f" {', '.join(t for t in ENDPOINT_TYPES if t)} (or empty)"
            )
        try:
            ipaddress.ip_address(self.pod_ip)
        except ValueError:
            raise SettingsError(f"POD_IP={self.pod_ip!r} is not an IP address") from None

    @property
    def pod_fqdn(self) -> str:
        naming = self.cluster.naming
        ordinal = naming.ordinal_of(self.pod_name)
        return naming.pod_fqdn(ordinal) if ordinal is not None else self.pod_name


def parse_sidecar_settings(argv: Sequence[str], environ: Mapping[str, str]) -> SidecarSettings:
    """Flags win over environment variables. Raises SettingsError naming the variable."""
    return parse_settings(SidecarSettings, argv, environ, prog="python -m sidecar")

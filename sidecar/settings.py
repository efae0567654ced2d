"""The sidecar's settings: environment variables, each also a command-line flag."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from clusterkit.dnsio import parse_nameserver
from clusterkit.envflags import read_password_file, typed_settings
from clusterkit.naming import PodNaming


class SidecarSettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class SidecarSettings:
    """What `python -m sidecar` needs to know about its pod and the StatefulSet."""

    pod_ip: str
    """POD_IP: this pod's address (Downward API status.podIP)."""
    pod_name: str
    """POD_NAME: this pod's name (metadata.name), e.g. redis-3."""
    statefulset_name: str
    """STATEFULSET_NAME: the StatefulSet whose pods form the cluster."""
    headless_service: str
    """HEADLESS_SERVICE: its headless Service."""
    namespace: str = "default"
    """NAMESPACE: namespace of both; defaults to POD_NAMESPACE, else `default`."""
    cluster_domain: str = "cluster.local"
    """CLUSTER_DOMAIN: the cluster's DNS domain."""
    node_name: str = ""
    """NODE_NAME: the Kubernetes node this pod runs on (spec.nodeName), reported on /node."""
    nodes_conf: Path = Path("/data/nodes.conf")
    """NODES_CONF: Redis's cluster-config-file."""
    redis_port: int = 6379
    """REDIS_PORT: Redis's client port (bus port = port + 10000)."""
    redis_password_file: Path | None = None
    """REDIS_PASSWORD_FILE: file holding the password; none = no auth."""
    dns_nameserver: str | None = None
    """DNS_NAMESERVER: `host[:port]` to ask instead of the system resolver."""
    http_host: str = "0.0.0.0"  # noqa: S104 - probes come from the kubelet, on the pod's IP
    """HTTP_HOST: address the health and metrics server listens on."""
    http_port: int = 9121
    """HTTP_PORT: port of /startupz, /livez, /readyz, /metrics and /node."""
    heal_interval_seconds: float = 1.0
    """HEAL_INTERVAL_SECONDS: how often the loop checks Redis and heals peers."""
    termination_log: Path = Path("/dev/termination-log")
    """TERMINATION_LOG: where a fatal startup error is written for `kubectl describe pod`."""
    log_level: str = "INFO"
    """LOG_LEVEL: DEBUG shows every loop turn."""

    def __post_init__(self) -> None:
        if not 0 < self.redis_port < 55536 or not 0 < self.http_port < 65536:
            raise SidecarSettingsError("REDIS_PORT / HTTP_PORT out of range")
        interval = self.heal_interval_seconds
        if not math.isfinite(interval) or interval <= 0:
            raise SidecarSettingsError("HEAL_INTERVAL_SECONDS must be a positive number")
        if self.dns_nameserver:
            self.nameserver_address()

    @property
    def naming(self) -> PodNaming:
        return PodNaming(
            self.statefulset_name, self.headless_service, self.namespace, self.cluster_domain
        )

    @property
    def pod_fqdn(self) -> str:
        ordinal = self.naming.ordinal_of(self.pod_name)
        return self.naming.pod_fqdn(ordinal) if ordinal is not None else self.pod_name

    def nameserver_address(self) -> tuple[str, int] | None:
        if not self.dns_nameserver:
            return None
        try:
            return parse_nameserver(self.dns_nameserver)
        except ValueError as exc:
            raise SidecarSettingsError(f"DNS_NAMESERVER: {exc}") from None

    def read_password(self) -> str | None:
        try:
            return read_password_file(self.redis_password_file)
        except ValueError as exc:
            raise SidecarSettingsError(str(exc)) from None


REQUIRED = ("pod_ip", "pod_name", "statefulset_name", "headless_service")


def parse_sidecar_settings(argv: Sequence[str], environ: Mapping[str, str]) -> SidecarSettings:
    converters: dict[str, Callable[[str], object]] = {
        "redis_port": int,
        "http_port": int,
        "heal_interval_seconds": float,
        "nodes_conf": Path,
        "redis_password_file": Path,
        "termination_log": Path,
    }
    try:
        values = typed_settings(
            SidecarSettings,
            argv,
            environ,
            prog="python -m sidecar",
            required=REQUIRED,
            converters=converters,
        )
    except ValueError as exc:
        raise SidecarSettingsError(str(exc)) from None
    return SidecarSettings(**values)  # type: ignore[arg-type]

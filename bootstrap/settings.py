"""The Job's settings: environment variables, each also a command-line flag, in one dataclass."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bootstrap.errors import BadSettings
from clusterkit.dnsio import parse_nameserver
from clusterkit.envflags import read_password_file, typed_settings
from clusterkit.naming import PodNaming

MIN_MASTERS = 3


@dataclass(frozen=True)
class Settings:
    """Everything `python -m bootstrap` needs to know about the StatefulSet it forms."""

    statefulset_name: str
    """STATEFULSET_NAME: the StatefulSet whose pods form the cluster."""
    headless_service: str
    """HEADLESS_SERVICE: its headless Service (publishNotReadyAddresses: true)."""
    cluster_size: int
    """CLUSTER_SIZE: number of pods in the StatefulSet."""
    namespace: str = "default"
    """NAMESPACE: namespace of both; defaults to POD_NAMESPACE, else `default`."""
    cluster_domain: str = "cluster.local"
    """CLUSTER_DOMAIN: the cluster's DNS domain."""
    replicas_per_master: int = 1
    """REPLICAS_PER_MASTER: CLUSTER_SIZE must be a multiple of 1 + this, with >= 3 masters."""
    redis_port: int = 6379
    """REDIS_PORT: client port; the cluster bus listens on port + 10000."""
    redis_password_file: Path | None = None
    """REDIS_PASSWORD_FILE: file holding the password (trailing newline ignored); none = no auth."""
    dns_nameserver: str | None = None
    """DNS_NAMESERVER: `host[:port]` to ask instead of the system resolver."""
    timeout_seconds: float = 600.0
    """TIMEOUT_SECONDS: overall deadline for the whole run."""
    sidecar_port: int = 9121
    """SIDECAR_PORT: the sidecars' HTTP port; their /node keeps replicas off masters' nodes."""
    log_level: str = "INFO"
    """LOG_LEVEL: DEBUG shows every observation round."""

    def __post_init__(self) -> None:
        if self.cluster_size < 1:
            raise BadSettings("CLUSTER_SIZE must be a positive number")
        if self.replicas_per_master < 0:
            raise BadSettings("REPLICAS_PER_MASTER must be 0 or more")
        group = 1 + self.replicas_per_master
        if self.cluster_size % group or self.cluster_size // group < MIN_MASTERS:
            raise BadSettings(
                f"CLUSTER_SIZE={self.cluster_size} must be a multiple of 1 + REPLICAS_PER_MASTER"
                f" ({group}) giving at least {MIN_MASTERS} masters; e.g. {MIN_MASTERS * group}"
            )
        if not 0 < self.redis_port < 55536:
            raise BadSettings("REDIS_PORT must leave room for the bus port (port + 10000)")
        if not math.isfinite(self.timeout_seconds) or self.timeout_seconds <= 0:
            raise BadSettings("TIMEOUT_SECONDS must be positive")
        if self.dns_nameserver is not None:
            self.nameserver_address()  # validates

    @property
    def masters(self) -> int:
        return self.cluster_size // (1 + self.replicas_per_master)

    @property
    def naming(self) -> PodNaming:
        return PodNaming(
            self.statefulset_name, self.headless_service, self.namespace, self.cluster_domain
        )

    def nameserver_address(self) -> tuple[str, int] | None:
        """DNS_NAMESERVER split into (host, port); IPv6 needs brackets when a port is given."""
        if not self.dns_nameserver:
            return None
        try:
            return parse_nameserver(self.dns_nameserver)
        except ValueError as exc:
            raise BadSettings(f"DNS_NAMESERVER={exc}") from None

    def read_password(self) -> str | None:
        try:
            return read_password_file(self.redis_password_file)
        except ValueError as exc:
            raise BadSettings(str(exc)) from None


def parse_settings(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    """Flags win over environment variables; both spell the same names (--cluster-size, ...)."""
    converters: dict[str, Callable[[str], object]] = {
        "cluster_size": int,
        "replicas_per_master": int,
        "redis_port": int,
        "sidecar_port": int,
        "timeout_seconds": float,
        "redis_password_file": Path,
    }
    try:
        values = typed_settings(
            Settings,
            argv,
            environ,
            prog="python -m bootstrap",
            required=("statefulset_name", "headless_service", "cluster_size"),
            converters=converters,
        )
    except ValueError as exc:
        raise BadSettings(str(exc)) from None
    return Settings(**values)  # type: ignore[arg-type]

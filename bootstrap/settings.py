"""The Job's settings: environment variables, each also a command-line flag, in one dataclass."""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from bootstrap.errors import BadSettings
from clusterkit.naming import PodNaming
from clusterkit.slots import is_number

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
        text = self.dns_nameserver.strip()
        host, port = text, "53"
        if text.startswith("["):
            host, bracket, rest = text[1:].partition("]")
            if not bracket or (rest and not rest.startswith(":")):
                raise BadSettings(f"DNS_NAMESERVER={text!r} is not [v6-address]:port")
            port = rest.removeprefix(":") or "53"
        elif text.count(":") == 1:
            host, port = text.split(":")
        if not host or not is_number(port) or not 0 < int(port) < 65536:
            raise BadSettings(f"DNS_NAMESERVER={text!r} is not host[:port] with port 1..65535")
        return host, int(port)

    def read_password(self) -> str | None:
        if self.redis_password_file is None:
            return None
        try:
            return self.redis_password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise BadSettings(
                f"REDIS_PASSWORD_FILE={self.redis_password_file} cannot be read ({exc.strerror});"
                " mount the Secret there or unset the variable"
            ) from None


def env_name(field_name: str) -> str:
    return field_name.upper()


def parse_settings(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    """Flags win over environment variables; both spell the same names (--cluster-size, ...)."""
    parser = argparse.ArgumentParser(
        prog="python -m bootstrap", description="Form a Redis Cluster from a StatefulSet's pods."
    )
    for field in fields(Settings):
        parser.add_argument("--" + field.name.replace("_", "-"), dest=field.name, default=None)
    args = parser.parse_args(list(argv))
    raw: dict[str, str] = {}
    for field in fields(Settings):
        value = getattr(args, field.name)
        if value is None:
            value = environ.get(env_name(field.name))
        if value is not None and value != "":
            raw[field.name] = value
    if "namespace" not in raw and environ.get("POD_NAMESPACE"):
        raw["namespace"] = environ["POD_NAMESPACE"]
    missing = [
        env_name(n)
        for n in ("statefulset_name", "headless_service", "cluster_size")
        if n not in raw
    ]
    if missing:
        raise BadSettings(f"required settings missing: {', '.join(missing)}")
    try:
        return Settings(
            statefulset_name=raw["statefulset_name"],
            headless_service=raw["headless_service"],
            cluster_size=int(raw["cluster_size"]),
            namespace=raw.get("namespace", "default"),
            cluster_domain=raw.get("cluster_domain", "cluster.local"),
            replicas_per_master=int(raw.get("replicas_per_master", "1")),
            redis_port=int(raw.get("redis_port", "6379")),
            redis_password_file=Path(raw["redis_password_file"])
            if "redis_password_file" in raw
            else None,
            dns_nameserver=raw.get("dns_nameserver"),
            timeout_seconds=float(raw.get("timeout_seconds", "600")),
            log_level=raw.get("log_level", "INFO"),
        )
    except ValueError as exc:
        if isinstance(exc, BadSettings):
            raise
        raise BadSettings(f"a numeric setting is not a number: {exc}") from None

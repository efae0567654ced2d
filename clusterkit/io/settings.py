"""Settings shared by the Job and the sidecar, and the one parser both programs use.

Every field of a settings dataclass is an environment variable (`cluster_size` is CLUSTER_SIZE)
and also a flag (`--cluster-size`; flags win). A field whose type is itself a settings dataclass
(`cluster: ClusterSettings`) contributes its own fields under the same rule, so the programs
compose the shared part instead of repeating it. Anything wrong raises SettingsError naming the
variable; each program turns that into its exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from clusterkit.core.naming import PodNaming
from clusterkit.io.access import Access, TlsClient, TlsFiles
from clusterkit.io.dnsio import parse_nameserver

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MAX_REDIS_PORT = 65535 - 10000
"""The bus port (client port + 10000) must be a port too."""

T = TypeVar("T")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable and what is allowed."""


@dataclass(frozen=True)
class ClusterSettings:
    """Which StatefulSet forms the cluster, how to reach its Redis, and how to log."""

    statefulset_name: str
    """STATEFULSET_NAME: the StatefulSet whose pods form the cluster."""
    headless_service: str
    """HEADLESS_SERVICE: its headless Service (publishNotReadyAddresses: true)."""
    namespace: str = "default"
    """NAMESPACE: namespace of both; defaults to POD_NAMESPACE, else `default`."""
    cluster_domain: str = "cluster.local"
    """CLUSTER_DOMAIN: the cluster's DNS domain."""
    redis_port: int = 6379
    """REDIS_PORT: Redis's client port; the cluster bus listens on port + 10000."""
    redis_password_file: Path | None = None
    """REDIS_PASSWORD_FILE: file holding REDIS_USER's password: every byte of it, a trailing
    newline included; unset = no auth. Missing while a `password` file sits beside it (a Secret
    of the single-password layout): that password, as the default user. Read by each program at
    its start (the Job exits 2, the sidecar holds Redis back) when missing, unreadable or
    empty."""
    dns_nameserver: str | None = None
    """DNS_NAMESERVER: `host[:port]` (`[v6]:port`) to ask instead of the system resolver."""
    log_level: str = "INFO"
    """LOG_LEVEL: DEBUG, INFO, WARNING, ERROR or CRITICAL (any case)."""
    redis_user: str | None = None
    """REDIS_USER: the ACL user this program authenticates as (`bootstrap` for the Job,
    `sidecar` for the sidecar); unset = Redis's default user (the single-password layout)."""
    tls_ca_file: Path | None = None
    """TLS_CA_FILE: the CA that signed Redis's certificates (ca.crt). Set: every connection is
    TLS, and the server's certificate must name the pod's FQDN. Unset: plain TCP."""
    tls_cert_file: Path | None = None
    """TLS_CERT_FILE: the certificate this program presents (tls.crt; Redis requires one)."""
    tls_key_file: Path | None = None
    """TLS_KEY_FILE: its private key (tls.key)."""

    def __post_init__(self) -> None:
        if not 0 < self.redis_port <= MAX_REDIS_PORT:
            raise SettingsError(
                f"REDIS_PORT={self.redis_port} must be 1..{MAX_REDIS_PORT}"
                " (the bus port is port + 10000)"
            )
        if self.log_level.upper() not in LOG_LEVELS:
            raise SettingsError(
                f"LOG_LEVEL={self.log_level!r} must be one of {', '.join(LOG_LEVELS)}"
            )
        object.__setattr__(self, "log_level", self.log_level.upper())
        for name in ("statefulset_name", "headless_service", "namespace", "cluster_domain"):
            if not getattr(self, name).strip():
                raise SettingsError(f"{name.upper()} must not be blank")
        self.nameserver_address()
        tls = (self.tls_ca_file, self.tls_cert_file, self.tls_key_file)
        if any(tls) and not all(tls):
            raise SettingsError(
                "TLS_CA_FILE, TLS_CERT_FILE and TLS_KEY_FILE go together: set all three (TLS)"
                " or none (plain TCP)"
            )

    @property
    def tls_files(self) -> TlsFiles | None:
        if self.tls_ca_file and self.tls_cert_file and self.tls_key_file:
            return TlsFiles(self.tls_ca_file, self.tls_cert_file, self.tls_key_file)
        return None

    def read_access(self) -> Access:
        """Who this program is to Redis and how it connects. Raises SettingsError when the
        password file is missing, unreadable or empty."""
        files = self.tls_files
        tls = TlsClient(files) if files else None
        path = self.redis_password_file
        if path is None:
            return Access(None, self.redis_user, tls)
        legacy = path.parent / "password"
        if self.redis_user and not path.exists() and legacy.exists():
            # A Secret of the single-password layout: the default user, as before users.
            return Access(read_secret_file(legacy, "REDIS_PASSWORD_FILE"), None, tls)
        return Access(read_secret_file(path, "REDIS_PASSWORD_FILE"), self.redis_user, tls)

    @property
    def naming(self) -> PodNaming:
        return PodNaming(
            self.statefulset_name, self.headless_service, self.namespace, self.cluster_domain
        )

    def nameserver_address(self) -> tuple[str, int] | None:
        """DNS_NAMESERVER split into (host, port); None means the system resolver."""
        if not self.dns_nameserver:
            return None
        try:
            return parse_nameserver(self.dns_nameserver)
        except ValueError as exc:
            raise SettingsError(f"DNS_NAMESERVER: {exc}") from None


def read_secret_file(path: Path, variable: str) -> str:
    """Every byte of a password file (bytes that are not UTF-8 kept as surrogates, which the
    Redis clients encode back). Raises SettingsError when missing, unreadable or empty."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SettingsError(
            f"{variable}={path} cannot be read ({exc.strerror}); mount the Secret there (its"
            " key must exist) or unset the variable"
        ) from None
    if not raw:
        raise SettingsError(
            f"{variable}={path} is empty: Redis would accept anyone. Put a password in the Secret"
        )
    return raw.decode("utf-8", "surrogateescape")


def parse_settings(
    settings_class: type[T], argv: Sequence[str], environ: Mapping[str, str], *, prog: str
) -> T:
    """Build `settings_class` from flags and environment variables (flags win; an empty
    variable counts as unset, as Kubernetes renders optional values). Raises SettingsError."""
    leaves = leaf_fields(settings_class)
    parser = argparse.ArgumentParser(prog=prog, description=settings_class.__doc__)
    for name, field in leaves.items():
        flag = "--" + name.replace("_", "-")
        if field.type in (bool, "bool"):  # the flag alone means yes (`--reassign-lost-slots`)
            parser.add_argument(flag, dest=name, default=None, nargs="?", const="true")
        else:
            parser.add_argument(flag, dest=name, default=None)
    args = parser.parse_args(list(argv))
    raw: dict[str, str] = {}
    for name in leaves:
        value = getattr(args, name)
        if value is None:
            value = environ.get(name.upper())
        if value is not None and value != "":
            raw[name] = value
    if "namespace" in leaves and "namespace" not in raw and environ.get("POD_NAMESPACE"):
        raw["namespace"] = environ["POD_NAMESPACE"]
    missing = [name.upper() for name, field in leaves.items() if is_required(field)]
    missing = [name for name in missing if name.lower() not in raw]
    if missing:
        raise SettingsError(f"required settings missing: {', '.join(missing)}")
    try:
        return build(settings_class, raw)
    except TypeError as exc:  # a dataclass rejected its arguments: a bug, not bad input
        raise RuntimeError(f"settings class {settings_class.__name__}: {exc}") from exc


def leaf_fields(settings_class: type[Any]) -> dict[str, dataclasses.Field[Any]]:
    """Field name -> field, nested settings dataclasses flattened."""
    hints = typing.get_type_hints(settings_class)
    leaves: dict[str, dataclasses.Field[Any]] = {}
    for field in dataclasses.fields(settings_class):
        if dataclasses.is_dataclass(hints[field.name]):
            leaves.update(leaf_fields(hints[field.name]))
        else:
            leaves[field.name] = field
    return leaves


def is_required(field: dataclasses.Field[Any]) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def build(settings_class: type[T], raw: Mapping[str, str]) -> T:
    hints = typing.get_type_hints(settings_class)
    values: dict[str, object] = {}
    for field in dataclasses.fields(settings_class):  # type: ignore[arg-type]
        kind = hints[field.name]
        if dataclasses.is_dataclass(kind):
            values[field.name] = build(kind, raw)  # type: ignore[arg-type]
        elif field.name in raw:
            values[field.name] = convert(field.name, raw[field.name], kind)
    return settings_class(**values)


BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def convert(name: str, text: str, kind: object) -> object:
    """The text of variable `name` as the field's type (`X | None` counts as X)."""
    if isinstance(kind, types.UnionType):
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    variable = name.upper()
    if kind is bool:
        if text.lower() not in BOOLEANS:
            raise SettingsError(f"{variable}={text!r} must be true or false")
        return BOOLEANS[text.lower()]
    if kind is int:
        try:
            return int(text, 10)
        except ValueError:
            raise SettingsError(f"{variable}={text!r} is not a whole number") from None
    if kind is float:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise SettingsError(f"{variable}={text!r} is not a number") from None
        return number
    if kind is Path:
        return Path(text)
    return text

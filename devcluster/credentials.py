"""The devcluster's Secrets: the users Secret (one password file per ACL user, or the
single-password layout's `password`) and, with TLS, a CA and a certificate per pod, for the Job
and for the application, in cert-manager's layout. Paths in the manifests (/etc/redis-auth,
/etc/redis-tls, /run/redis) are mapped to these directories."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from clusterkit.core.redisconf import USER_NAMES
from clusterkit.io.access import Access, TlsClient, TlsFiles
from devcluster import certs
from devcluster.state import ClusterState, StateDir

ADMIN_USER = "bootstrap"
"""Whom devcluster's own per-node client (`client()`) connects as: cluster commands and keys."""
APP_USER = "app"


class Credentials:
    def __init__(self, dirs: StateDir, state: ClusterState) -> None:
        self.dirs = dirs
        self.state = state

    def create(self, password: bytes | None) -> None:
        """Write the users Secret (and the CA with TLS). `password`: the single-password
        layout's bytes (default: random); ignored with users, which get random passwords."""
        auth = self.dirs.auth_dir
        auth.mkdir(parents=True, exist_ok=True)
        auth.chmod(0o700)
        keys = USER_NAMES if self.state.users else ("password",)
        for key in keys:
            value = password if key == "password" and password else None
            (auth / key).write_bytes(value or secrets.token_urlsafe(24).encode())
            (auth / key).chmod(0o600)
        if self.state.tls:
            certs.make_ca(self.dirs.ca_dir)
            for holder in ("job", APP_USER):
                certs.issue(self.dirs.ca_dir, self.dirs.tls_dir(holder), [holder], holder)

    def issue_pod(self, ordinal: int) -> None:
        """A pod's certificate names its FQDN; issued once, kept across restarts (new IPs)."""
        name = self.state.naming.pod_name(ordinal)
        if self.state.tls and not (self.dirs.tls_dir(name) / "tls.crt").exists():
            fqdn = self.state.naming.pod_fqdn(ordinal)
            certs.issue(self.dirs.ca_dir, self.dirs.tls_dir(name), [fqdn], name)

    def password_of(self, user: str | None) -> str:
        key = user if self.state.users and user else "password"
        return (self.dirs.auth_dir / key).read_bytes().decode("utf-8", "surrogateescape")

    def tls_files(self, holder: str) -> TlsFiles | None:
        if not self.state.tls:
            return None
        directory = self.dirs.tls_dir(holder)
        return TlsFiles(directory / "ca.crt", directory / "tls.crt", directory / "tls.key")

    def access(self, user: str = ADMIN_USER, holder: str = "job") -> Access:
        files = self.tls_files(holder)
        username = user if self.state.users else None
        return Access(self.password_of(user), username, TlsClient(files) if files else None)

    def env(self, holder: str) -> dict[str, str]:
        """TLS settings of a program's environment (the TLS component sets the same)."""
        files = self.tls_files(holder)
        if files is None:
            return {}
        return {
            "TLS_CA_FILE": str(files.ca_file),
            "TLS_CERT_FILE": str(files.cert_file),
            "TLS_KEY_FILE": str(files.key_file),
        }

    def localize(self, value: str, run_dir: Path) -> str:
        """A manifest path on this machine: the Secret's mount and the in-memory volume."""
        mounts = {"/etc/redis-auth/": self.dirs.auth_dir, "/run/redis/": run_dir}
        for prefix, directory in mounts.items():
            if value.startswith(prefix):
                return str(directory / value.removeprefix(prefix))
        if value == "/etc/redis-auth":
            return str(self.dirs.auth_dir)
        return value

    def cluster_client_options(self) -> dict[str, Any]:
        """redis-py RedisCluster options for an application: user `app` (or the password)
        and, with TLS, the app's certificate. Redirects name IPs (Redis's default endpoint
        type) which the pods' certificates do not: the CA is checked, the name is not."""
        options: dict[str, Any] = {"password": self.password_of(APP_USER)}
        if self.state.users:
            options["username"] = APP_USER
        files = self.tls_files(APP_USER)
        if files is not None:
            options.update(
                ssl=True,
                ssl_ca_certs=str(files.ca_file),
                ssl_certfile=str(files.cert_file),
                ssl_keyfile=str(files.key_file),
                ssl_check_hostname=False,
            )
        return options

    def status(self) -> dict[str, object]:
        users = USER_NAMES if self.state.users else ()
        return {
            "password_file": None if self.state.users else str(self.dirs.password_file),
            "users": {name: str(self.dirs.auth_dir / name) for name in users},
            "ca_file": str(self.dirs.ca_dir / "ca.crt") if self.state.tls else None,
            "client_cert": str(self.dirs.tls_dir(APP_USER)) if self.state.tls else None,
        }

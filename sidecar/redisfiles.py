"""What the sidecar writes for Redis before Redis starts: the include the redis container loads
(AUTH_CONF: users, replication credentials, TLS) and the ACL file (ACL_FILE), from the Secrets
mounted in the sidecar only. The redis container never mounts the password Secret."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from clusterkit.core.redisconf import (
    REPLICATION_USER,
    USER_NAMES,
    TlsServer,
    acl_file,
    auth_include,
    password_bytes,
    users_include,
)
from clusterkit.io.atomicfile import write_atomically
from clusterkit.io.settings import SettingsError, read_secret_file
from sidecar.settings import SidecarSettings

LEGACY_KEY = "password"
"""The single-password layout's Secret key (before ACL users)."""


class RedisFilesError(Exception):
    """Redis must not start: the message says what is missing and what to do."""


@dataclass(frozen=True)
class RedisFiles:
    include: str
    acl: str | None
    """The ACL file's text; None in the single-password layout (requirepass)."""
    users: bool


def render(settings: SidecarSettings) -> RedisFiles:
    """The files' text. Raises RedisFilesError."""
    try:
        files = render_auth(settings)
    except SettingsError as exc:
        raise RedisFilesError(str(exc)) from None
    tls = settings.cluster.tls_files
    extra = ""
    if tls is not None:
        port = settings.cluster.redis_port
        extra += TlsServer(port, tls.cert_file, tls.key_file, tls.ca_file).include()
    if settings.preferred_endpoint_type:
        extra += f"cluster-preferred-endpoint-type {settings.preferred_endpoint_type}\n"
    return RedisFiles(files.include + extra, files.acl, files.users)


def render_auth(settings: SidecarSettings) -> RedisFiles:
    users_dir = settings.users_dir
    if users_dir is None:
        path = settings.cluster.redis_password_file
        if path is None:
            raise RedisFilesError(
                "USERS_DIR and REDIS_PASSWORD_FILE are not set, so Redis would accept anyone."
                " Mount the users Secret and set USERS_DIR"
            )
        return RedisFiles(auth_include(read_secret_file(path, "REDIS_PASSWORD_FILE")), None, False)
    present = [name for name in USER_NAMES if (users_dir / name).exists()]
    legacy_path = users_dir / LEGACY_KEY
    legacy = read_key(legacy_path) if legacy_path.exists() else None
    if not present and legacy is not None:
        return RedisFiles(auth_include(legacy.decode("utf-8", "surrogateescape")), None, False)
    missing = [name for name in USER_NAMES if name not in present]
    if missing:
        raise RedisFilesError(
            f"the users Secret mounted at USERS_DIR={users_dir} lacks the keys"
            f" {', '.join(missing)}: add a password for each of {', '.join(USER_NAMES)}"
            f" (docs/security.md), or only `{LEGACY_KEY}` for the single-password layout"
        )
    if settings.acl_file is None:
        raise RedisFilesError("ACL_FILE is not set: where should Redis's ACL file go?")
    passwords = {name: read_key(users_dir / name) for name in USER_NAMES}
    return RedisFiles(
        users_include(settings.acl_file, passwords[REPLICATION_USER]),
        acl_file(passwords, legacy, settings.app_acl_rules),
        True,
    )


def read_key(path: Path) -> bytes:
    return password_bytes(read_secret_file(path, "USERS_DIR"))


def write(settings: SidecarSettings, include_path: Path) -> RedisFiles:
    """Render and write both files (0600, atomically). Raises RedisFilesError, OSError."""
    files = render(settings)
    if files.acl is not None and settings.acl_file is not None:
        write_atomically(settings.acl_file, files.acl, mode=0o600)
    write_atomically(include_path, files.include, mode=0o600)
    return files

"""The configuration the sidecar writes for Redis before it starts: the include (passwords,
ACL file, TLS) and the ACL file. Pure. Values that carry arbitrary bytes (a password, a path)
are quoted so that Redis reads back exactly those bytes.

Redis splits a config line with sdssplitargs: inside double quotes it understands `\\"`, `\\\\`,
`\\n`, `\\r`, `\\t`, `\\b`, `\\a` and `\\xHH`. Every byte that is not printable ASCII, and `"` and
`\\`, is written as `\\xHH`: the value can hold quotes, backslashes, newlines (no injected
config line), `%`, spaces and non-UTF-8 bytes, and Redis gets each byte as it is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PLAIN = frozenset(range(0x20, 0x7F)) - {ord('"'), ord("\\")}


def quote(value: bytes) -> str:
    """`value` as one double-quoted Redis config argument."""
    return '"' + "".join(chr(b) if b in PLAIN else f"\\x{b:02x}" for b in value) + '"'


def password_bytes(password: str) -> bytes:
    """The password's bytes as read from its file (clusterkit.io.settings keeps undecodable bytes
    as surrogates, and the Redis clients encode them back the same way)."""
    return password.encode("utf-8", "surrogateescape")


def auth_include(password: str) -> str:
    """The include that gives Redis its password: clients and replication (masterauth)."""
    quoted = quote(password_bytes(password))
    return f"requirepass {quoted}\nmasterauth {quoted}\n"


LEASE_KEY_PREFIX = "bootstrap:{jobs}:"
"""The Job's own keys (bootstrap.lease), one hash tag so both live in one slot."""

# What each ACL user may do. Subcommand rules (`+cluster|meet`) need Redis 7.0 / Valkey 7.2+.
CLUSTER_READS = "+cluster|info +cluster|nodes +cluster|myid +cluster|countkeysinslot"
CLUSTER_CHANGES = (
    "+cluster|meet +cluster|forget +cluster|replicate +cluster|failover +cluster|reset"
    " +cluster|set-config-epoch +cluster|addslots +cluster|addslotsrange +cluster|setslot"
)
USER_RULES: dict[str, str] = {
    # Applications: data commands on every key and channel; nothing that administers the
    # server (CONFIG, DEBUG, SHUTDOWN, FLUSHALL, KEYS, MIGRATE, CLUSTER RESET, ...); the
    # cluster topology reads a cluster client needs.
    "app": "~* &* +@all -@admin -@dangerous -migrate +cluster|slots +cluster|shards"
    " +cluster|nodes +cluster|info +cluster|myid +cluster|keyslot +cluster|countkeysinslot",
    # The Job: forms, resizes and repairs; MIGRATE moves keys (and, as the target's user,
    # RESTORE-ASKING stores them); DUMP compares copies of a key on both sides of a move;
    # BGREWRITEAOF / BGSAVE write a leaving node's emptied dataset to its disk (scale in); its
    # own two keys (bootstrap.lease: one Job acts at a time) and no other key's value.
    "bootstrap": f"resetchannels ~* -@all +ping +info +dbsize +role +asking +select {CLUSTER_READS}"
    f" {CLUSTER_CHANGES} +cluster|getkeysinslot +migrate +restore-asking +dump"
    f" +bgrewriteaof +bgsave (~{LEASE_KEY_PREFIX}* +get +set +incr +pexpire +del)",
    # The sidecar: watches, heals addresses, hands over, rejoins a replaced node and reloads
    # renewed certificates (CONFIG SET tls-*). No key at all: it cannot read or write data.
    "sidecar": f"resetchannels resetkeys -@all +ping +info +dbsize +role {CLUSTER_READS}"
    f" {CLUSTER_CHANGES} +config|set",
    # A replica's link to its master (masteruser).
    "replication": "resetchannels resetkeys -@all +psync +sync +replconf +ping",
}
USER_NAMES = tuple(USER_RULES)
REPLICATION_USER = "replication"
DEFAULT_OFF = "user default off resetpass resetkeys resetchannels -@all"


def password_hash(password: bytes) -> str:
    """An ACL file's `#<sha256>`: the file holds no password."""
    return "#" + hashlib.sha256(password).hexdigest()


def acl_file(
    passwords: Mapping[str, bytes], legacy: bytes | None = None, app_rules: str = ""
) -> str:
    """The ACL file: `default` off, each user on with its password and rules (`app_rules`
    replaces the app's). `legacy`, the single-password layout's password, keeps working as the
    `default` user with the app's rules while applications move to `app` (docs/security.md)."""
    rules = {**USER_RULES, "app": app_rules.strip() or USER_RULES["app"]}
    default = f"user default on {password_hash(legacy)} {rules['app']}" if legacy else DEFAULT_OFF
    users = [f"user {n} on {password_hash(passwords[n])} {rules[n]}" for n in USER_NAMES]
    return "\n".join([default, *users]) + "\n"


def users_include(acl_path: Path, replication_password: bytes) -> str:
    """Redis reads its users from the ACL file; a replica authenticates as `replication`."""
    return (
        f"aclfile {quote(str(acl_path).encode())}\n"
        f"masteruser {REPLICATION_USER}\n"
        f"masterauth {quote(replication_password)}\n"
    )


@dataclass(frozen=True)
class TlsServer:
    """Redis serving TLS only, on every link, with certificates in cert-manager's layout."""

    port: int
    cert_file: Path
    key_file: Path
    ca_file: Path

    def include(self) -> str:
        files = {
            "tls-cert-file": self.cert_file,
            "tls-key-file": self.key_file,
            "tls-ca-cert-file": self.ca_file,
        }
        lines = [
            "port 0",
            f"tls-port {self.port}",
            "tls-cluster yes",
            "tls-replication yes",
            # Clients, replicas and cluster-bus peers must all present a certificate signed by
            # the CA: a pod without one cannot join the bus.
            "tls-auth-clients yes",
            *(f"{name} {quote(str(path).encode())}" for name, path in files.items()),
        ]
        return "\n".join(lines) + "\n"

    def reload_command(self) -> tuple[str, ...]:
        """CONFIG SET of the same paths: Redis reloads the files it names (a renewed Secret)."""
        return (
            "CONFIG",
            "SET",
            "tls-cert-file",
            str(self.cert_file),
            "tls-key-file",
            str(self.key_file),
            "tls-ca-cert-file",
            str(self.ca_file),
        )

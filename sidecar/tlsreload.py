"""A renewed certificate reaches Redis without a restart: when the mounted TLS files change
(a Secret update swaps them), the sidecar sends CONFIG SET of the same paths, on which Redis
loads them again (measured on Redis 7.0 and Valkey 8.0: the new certificate is served at once).
Its own client uses the new files from its next connection on (clusterkit.io.access)."""

from __future__ import annotations

from collections.abc import Callable

import redis
import structlog

from clusterkit.core.redisconf import TlsServer
from clusterkit.io.access import TlsFiles
from clusterkit.io.settings import ClusterSettings

log = structlog.get_logger()

Fingerprint = tuple[tuple[int, int, int], ...]


class TlsReload:
    """Checked once per turn of the sidecar's loop; a no-op without TLS."""

    def __init__(self, cluster: ClusterSettings, count: Callable[[str], None]) -> None:
        self.count = count
        """Called with the outcome of each reload (ok, failed)."""
        self.files: TlsFiles | None = cluster.tls_files
        self.port = cluster.redis_port
        self.loaded: Fingerprint | None = self.fingerprint()
        """The files Redis was started with (or last reloaded)."""

    def fingerprint(self) -> Fingerprint | None:
        if self.files is None:
            return None
        try:
            return self.files.fingerprint()
        except OSError:
            return None  # mid-swap or unmounted: next turn

    def check(self, client: redis.Redis) -> bool:
        """Reload when the files changed since Redis loaded them; True when it did."""
        current = self.fingerprint()
        if self.files is None or current is None or current == self.loaded:
            return False
        files = self.files
        command = TlsServer(self.port, files.cert_file, files.key_file, files.ca_file)
        try:
            client.execute_command(*command.reload_command())
        except redis.RedisError as exc:
            # The new files do not load (a key that does not match the certificate): Redis
            # keeps serving the old ones; tried again on the next change.
            log.error(
                "tls_reload_failed",
                error=str(exc),
                action="check the TLS Secret: tls.crt, tls.key and ca.crt must match",
            )
            self.loaded = current
            self.count("failed")
            return False
        self.loaded = current
        self.count("ok")
        log.info("tls_reloaded", cert_file=str(files.cert_file))
        return True

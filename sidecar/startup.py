"""The startup gate: before Redis starts, write its include (passwords, ACL file, TLS) and fix
nodes.conf; /startupz reports the outcome and holds Redis back on a failure."""

from __future__ import annotations

from collections.abc import Callable

import redis
import structlog

from clusterkit.io.access import Access, TlsError
from sidecar import redisfiles
from sidecar.fixconf import FixError, fix_nodes_conf
from sidecar.health import HealthState
from sidecar.pingcheck import ping
from sidecar.settings import SidecarSettings

log = structlog.get_logger()


class Startup:
    """Runs once, before the loop; reports on /startupz and never raises."""

    def __init__(
        self,
        settings: SidecarSettings,
        state: HealthState,
        *,
        access: Access,
        password_problem: str,
        resolve: Callable[[str], str | None],
        connect_own: Callable[[float], redis.Redis],
    ) -> None:
        self.settings = settings
        self.state = state
        self.access = access
        self.password_problem = password_problem
        """Why the password Secret cannot be used ("" when it can): Redis is then held back."""
        self.resolve = resolve
        self.connect_own = connect_own

    def run(self) -> bool:
        """Fix nodes.conf; True when Redis may start. A failure is reported, never raised."""
        s = self.settings
        own = self.connect_own(1.0)
        outcome, _ = ping(own)
        own.close()
        if outcome != "down":
            # This sidecar restarted while its Redis runs (or hangs): Redis holds a lock on
            # nodes.conf and owns it; the heal loop fixes addresses through Redis instead.
            log.info("nodes_conf_left_to_redis", path=str(s.nodes_conf), redis=outcome)
            return self.started("ok", "Redis already runs: nodes.conf is its own")
        refusal = self.write_auth_conf()
        if refusal:
            log.error("redis_password_refused", error=refusal)
            self.write_termination_message(refusal)
            return self.started("failed", refusal)
        metrics = self.state.metrics
        try:
            report = fix_nodes_conf(s.nodes_conf, s.pod_ip, s.cluster.naming, self.resolve)
        except (FixError, OSError) as exc:
            corrupt = isinstance(exc, FixError)
            reason = (
                str(exc)
                if corrupt
                else f"{s.nodes_conf} could not be read or written ({exc}); left as it was and"
                " Redis not started. Check the data volume (mounted, writable, not full), then"
                " delete the pod"
            )
            log.error("nodes_conf_corrupt" if corrupt else "nodes_conf_io_error", error=reason)
            metrics.nodes_conf_rewrites.labels("corrupt" if corrupt else "io_error").set(1)
            self.write_termination_message(reason)
            return self.started("failed", reason)
        metrics.nodes_conf_rewrites.labels(report.outcome).set(1)
        log.info(
            "nodes_conf_checked",
            path=str(s.nodes_conf),
            outcome=report.outcome,
            changed={k[:8]: f"{a} -> {b}" for k, (a, b) in report.changed.items()},
            unresolved=[k[:8] for k in report.unresolved],
        )
        return self.started("ok", f"nodes.conf {report.outcome}")

    def write_auth_conf(self) -> str:
        """Write Redis's include (AUTH_CONF) and ACL file; "" when done, else why Redis must not
        start."""
        if self.password_problem:
            return f"Redis not started: {self.password_problem}"
        if self.access.tls is not None:
            try:
                self.access.tls.context()
            except TlsError as exc:
                return f"Redis not started: {exc}"
        path = self.settings.auth_conf
        if path is None:
            return ""
        try:
            files = redisfiles.write(self.settings, path)
        except redisfiles.RedisFilesError as exc:
            return f"Redis not started: {exc}"
        except OSError as exc:
            return f"Redis not started: its include {path} cannot be written ({exc})"
        log.info(
            "auth_conf_written",
            path=str(path),
            acl_users=files.users,
            tls=self.access.tls is not None,
        )
        return ""

    def started(self, status: str, reason: str) -> bool:
        with self.state.lock:
            self.state.startup, self.state.startup_reason = status, reason
        return status == "ok"

    def write_termination_message(self, reason: str) -> None:
        try:
            self.settings.termination_log.write_text(reason[:4000] + "\n")
        except OSError as exc:
            log.warning("termination_log_unwritable", error=str(exc))

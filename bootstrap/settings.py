"""The Job's settings: the shared cluster settings plus what only the Job needs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bootstrap.errors import BadSettings
from clusterkit.io.access import TlsError
from clusterkit.io.settings import ClusterSettings, SettingsError, parse_settings

MIN_MASTERS = 3


@dataclass(frozen=True)
class Settings:
    """Everything `python -m bootstrap` needs to know about the StatefulSet it forms."""

    cluster: ClusterSettings
    """The StatefulSet, its Redis and logging, shared with the sidecar."""
    cluster_size: int
    """CLUSTER_SIZE: number of pods in the StatefulSet."""
    replicas_per_master: int = 1
    """REPLICAS_PER_MASTER: CLUSTER_SIZE must be a multiple of 1 + this, with >= 3 masters."""
    timeout_seconds: float = 600.0
    """TIMEOUT_SECONDS: overall deadline for the whole run."""
    sidecar_port: int = 9380
    """SIDECAR_PORT: the sidecars' HTTP port; their /node keeps replicas off masters' nodes."""
    reassign_lost_slots: bool = False
    """REASSIGN_LOST_SLOTS: accept the loss of a shard whose master died with no surviving
    replica: forget the dead node and give its slots, empty, to masters. Without it the Job
    stops (exit 5) naming the lost slots."""
    takeover_lost_masters: bool = False
    """TAKEOVER_LOST_MASTERS: when half or more of the masters are unreachable (their node or
    zone is down: Redis cannot vote them out), send CLUSTER FAILOVER TAKEOVER to the best
    reachable replica of each, once every reachable node has flagged them failing for
    TAKEOVER_AFTER_SECONDS. Writes they took alone are lost if they return."""
    takeover_after_seconds: float = 15.0
    """TAKEOVER_AFTER_SECONDS: how long every reachable view must flag the lost masters first;
    longer than cluster-node-timeout (5 s in manifests/redis.conf)."""
    move_parallelism: int = 4
    """MOVE_PARALLELISM: slot moves between different pairs of masters carried out at once
    during a resize. More finish sooner; fewer leave more of the CPU and network to clients
    (1 moves one pair at a time, as redis-cli's rebalance does)."""

    def __post_init__(self) -> None:
        if self.move_parallelism < 1:
            raise SettingsError(f"MOVE_PARALLELISM={self.move_parallelism} must be 1 or more")
        if self.cluster_size < 1:
            raise SettingsError(f"CLUSTER_SIZE={self.cluster_size} must be a positive number")
        if self.replicas_per_master < 0:
            raise SettingsError("REPLICAS_PER_MASTER must be 0 or more")
        group = 1 + self.replicas_per_master
        if self.cluster_size % group or self.cluster_size // group < MIN_MASTERS:
            raise SettingsError(
                f"CLUSTER_SIZE={self.cluster_size} must be a multiple of 1 + REPLICAS_PER_MASTER"
                f" ({group}) giving at least {MIN_MASTERS} masters; e.g. {MIN_MASTERS * group}"
            )
        if self.timeout_seconds <= 0:
            raise SettingsError(f"TIMEOUT_SECONDS={self.timeout_seconds} must be positive")
        if self.takeover_after_seconds <= 0:
            raise SettingsError(
                f"TAKEOVER_AFTER_SECONDS={self.takeover_after_seconds} must be positive"
            )
        if not 0 < self.sidecar_port < 65536:
            raise SettingsError(f"SIDECAR_PORT={self.sidecar_port} must be 1..65535")
        # A missing or empty Secret, TLS files that do not load: exit 2 before any work.
        access = self.cluster.read_access()
        if access.tls is not None:
            try:
                access.tls.context()
            except TlsError as exc:
                raise SettingsError(str(exc)) from None

    @property
    def masters(self) -> int:
        return self.cluster_size // (1 + self.replicas_per_master)


def parse_job_settings(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    """Flags win over environment variables; both spell the same names (--cluster-size, ...).
    Raises BadSettings naming the variable."""
    try:
        return parse_settings(Settings, argv, environ, prog="python -m bootstrap")
    except SettingsError as exc:
        raise BadSettings(str(exc)) from None

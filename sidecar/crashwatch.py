"""Fast failover when this pod's own Redis dies (an OOM kill, a segfault, a container restart).

The loop arms the watch on each turn that finds its Redis a master with slots and replicas. The
watch then PINGs that Redis every CRASH_PROBE_SECONDS on a connection of its own. Once
CRASH_REFUSALS connections in a row are refused (clusterkit.core.crash), it asks each replica
what it holds and tells the best one `CLUSTER FAILOVER FORCE`. The master is gone, so there is
nobody to wait for; the other masters still vote, so Redis's epochs keep the result safe. When
the crashed Redis comes back with its data, gossip shows it a newer owner of its slots and Redis
makes it a replica by itself.

It never fires while disarmed: before the loop has seen this Redis answer as a master, after it
fired (until the loop arms it again), once the preStop hook has begun (the handover owns that),
or once the sidecar is stopping. A timeout, LOADING or an error reply resets the count.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import redis
import structlog

from clusterkit.core.crash import RefusalWindow, ReplicaReport, crash_successors
from clusterkit.core.nodes import NodeLine, myself, parse_cluster_nodes
from clusterkit.io.access import Access
from clusterkit.io.logs import start_thread
from clusterkit.io.pingreply import is_refused
from clusterkit.io.redisio import connect
from sidecar.health import HealthState

log = structlog.get_logger()

REPLICA_TIMEOUT_SECONDS = 0.5
"""Each replica is asked with this timeout: one that does not answer at once is skipped."""
TAKEOVER_WAIT_SECONDS = 3.0
"""How long a replica told to take over gets to become master before the next one is told."""


@dataclass(frozen=True)
class Armed:
    """The master this watch may fail over: its id and its last view's replicas and masters."""

    node_id: str
    replicas: tuple[NodeLine, ...]
    masters: tuple[NodeLine, ...]


class CrashWatch:
    """Watches this pod's Redis for a crash and fails its slots over to the best replica."""

    def __init__(
        self,
        state: HealthState,
        access: Access,
        *,
        own: redis.Redis,
        refusals: int,
        probe_seconds: float,
        domains: Callable[[], Mapping[str, str]],
    ) -> None:
        self.state = state
        self.access = access
        self.own = own
        self.probe_seconds = probe_seconds
        # Any other outcome resets the count; the window only bounds probes that come slowly.
        self.window = RefusalWindow(refusals, window_seconds=max(1.0, 2 * refusals * probe_seconds))
        self.domains = domains
        self.armed: Armed | None = None
        self.lock = threading.Lock()

    def arm(self, me: NodeLine, nodes: list[NodeLine]) -> None:
        """From the loop, after its Redis answered: armed for a master with slots and replicas."""
        replicas = tuple(n for n in nodes if n.master_id == me.node_id and not n.is_down)
        masters = tuple(n for n in nodes if n.is_master and n.slots and not n.is_down)
        with self.lock:
            if me.is_master and me.slots and replicas:
                self.armed = Armed(me.node_id, replicas, masters)
            else:
                self.armed = None

    def probe(self) -> bool:
        """One PING; True when it was refused (nothing listens on this pod's address)."""
        try:
            self.own.ping()
        except (redis.RedisError, OSError) as exc:
            return is_refused(exc)
        return False

    def turn(self, now: float) -> str:
        """One probe while armed; what it did ("" for nothing)."""
        with self.lock:
            armed = None if self.state.stopping else self.armed
        if armed is None:
            self.window.reset()
            return ""
        if not self.window.observe(self.probe(), now):
            return ""
        with self.lock:
            self.armed = None  # once per crash: the loop arms it again when Redis leads again
        self.window.reset()
        return self.fail_over(armed)

    def fail_over(self, armed: Armed) -> str:
        started = time.monotonic()
        log.warning(
            "own_redis_crashed",
            refusals=self.window.needed,
            next_step="telling the best replica CLUSTER FAILOVER FORCE",
        )
        reports = {n.node_id: self.report(n) for n in armed.replicas}
        found = {k: v for k, v in reports.items() if v is not None}
        ranked = crash_successors(
            armed.replicas, armed.node_id, found, self.domains(), armed.masters
        )
        if not ranked:
            self.count("no_replica")
            log.warning(
                "crash_failover_skipped",
                reason="no replica answered as still following this master with a fresh link",
                asked=len(armed.replicas),
                next_step="Redis fails over by itself after cluster-node-timeout, if it can",
            )
            return "own Redis crashed; no replica fit to take over"
        for replica in ranked:
            where = f"{replica.address.ip}:{replica.address.port}"
            if self.tell_to_take_over(replica):
                seconds = round(time.monotonic() - started, 3)
                self.count("took_over")
                log.info(
                    "crash_failover_done",
                    replica=where,
                    offset=found[replica.node_id].offset,
                    seconds=seconds,
                )
                return f"own Redis crashed; {where} took over its slots"
            log.warning("crash_failover_not_taken", replica=where)
        self.count("not_taken")
        return "own Redis crashed; no replica took over (Redis's own failover may)"

    def report(self, replica: NodeLine) -> ReplicaReport | None:
        """What the replica says of itself now (None: it did not answer, or not as a replica)."""
        try:
            client = self.client(replica)
            try:
                me = myself(parse_cluster_nodes(str(client.execute_command("CLUSTER", "NODES"))))
                fields = client.info("replication")
            finally:
                client.close()
            return ReplicaReport(
                master_id=me.master_id or "",
                offset=int(str(fields.get("slave_repl_offset", 0))),
                link_down_seconds=max(0, int(str(fields.get("master_link_down_since_seconds", 0)))),
            )
        except (redis.RedisError, OSError, ValueError):
            return None

    def tell_to_take_over(self, replica: NodeLine) -> bool:
        """CLUSTER FAILOVER FORCE, then wait (bounded) for the replica to say it is master."""
        try:
            client = self.client(replica)
            try:
                client.execute_command("CLUSTER", "FAILOVER", "FORCE")
                log.info("crash_failover_requested", replica=replica.node_id)
                until = time.monotonic() + TAKEOVER_WAIT_SECONDS
                while time.monotonic() < until:
                    if str(client.execute_command("ROLE")[0]) == "master":
                        return True
                    time.sleep(0.02)
            finally:
                client.close()
        except (redis.RedisError, OSError) as exc:
            log.warning("crash_failover_failed", replica=replica.node_id, error=str(exc))
        return False

    def client(self, replica: NodeLine) -> redis.Redis:
        address = replica.address
        return connect(
            address.ip,
            address.port,
            self.access,
            REPLICA_TIMEOUT_SECONDS,
            server_name=address.hostname,
        )

    def count(self, outcome: str) -> None:
        self.state.metrics.crash_failovers.labels(outcome).inc()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.turn(time.monotonic())
            except Exception:  # the watch must go on watching
                log.exception("crash_watch_failed")
            stop.wait(self.probe_seconds)

    def start(self, stop: threading.Event) -> threading.Thread:
        return start_thread(self.run, stop, "crash-watch")

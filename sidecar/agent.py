"""The sidecar's work: fix nodes.conf once at startup, then turn a loop that watches Redis,
reports health and heals peer addresses."""

from __future__ import annotations

import json
import threading
from dataclasses import asdict

import dns.resolver
import redis
import structlog

from clusterkit.core.ghosts import pod_map_from
from clusterkit.core.nodes import NodeLine, NodeLineError, myself, parse_cluster_nodes
from clusterkit.core.readiness import readiness, unserved_slots
from clusterkit.core.slots import format_ranges
from clusterkit.io.access import NO_ACCESS, TlsError
from clusterkit.io.atomicfile import write_atomically
from clusterkit.io.dnsio import resolve_addresses
from clusterkit.io.redisio import connect, info_fields
from clusterkit.io.settings import SettingsError
from sidecar import redisfiles, stats
from sidecar.fixconf import POD_MAP_NAME, FixError, fix_nodes_conf, read_pod_map
from sidecar.handover import hand_over
from sidecar.heal import RateLimit, heal_candidates, plan_meets
from sidecar.health import HealthState
from sidecar.layout import LayoutWatch
from sidecar.locate import PeerLocator
from sidecar.pingcheck import ping
from sidecar.rejoin import Rejoin, RejoinStatus
from sidecar.settings import SidecarSettings
from sidecar.tlsreload import TlsReload

log = structlog.get_logger()

PING_TIMEOUT_SECONDS = 2.0
PEER_TIMEOUT_SECONDS = 1.0


class Agent:
    def __init__(
        self, settings: SidecarSettings, state: HealthState, resolver: dns.resolver.Resolver
    ) -> None:
        self.settings = settings
        self.state = state
        self.metrics = state.metrics
        self.resolver = resolver
        self.password_problem = ""
        try:
            self.access = settings.cluster.read_access()
        except SettingsError as exc:
            # Reported on /startupz (Redis held back) rather than a crash loop of the sidecar.
            self.access, self.password_problem = NO_ACCESS, str(exc)
        self.redis = self.own_client(PING_TIMEOUT_SECONDS)
        self.tls_reload = TlsReload(
            settings.cluster, lambda outcome: self.metrics.tls_reloads.labels(outcome).inc()
        )
        self.colocation = stats.Colocation(
            settings.http_port, settings.node_name, settings.pod_name
        )
        self.meet_limit = RateLimit(seconds=5.0)
        self.forgotten_by: set[str] = set()
        """Peers that do not know this node (logged once each; never met)."""
        self.locator = PeerLocator(self.locate, self.metrics.peer_timeouts.inc)
        self.pod_map = read_pod_map(settings.nodes_conf)
        ordinal = settings.cluster.naming.ordinal_of(settings.pod_name)
        self.layout = (
            None if ordinal is None else LayoutWatch(settings, self.access, self.metrics, ordinal)
        )
        self.rejoin = (
            None
            if ordinal is None
            else Rejoin(
                settings.cluster.naming,
                ordinal=ordinal,
                port=settings.cluster.redis_port,
                sidecar_port=settings.http_port,
                access=self.access,
                resolve=self.resolve,
                count_forgets=self.metrics.rejoin_forgets.inc,
            )
        )

    # -- startup ---------------------------------------------------------------------------

    def resolve(self, fqdn: str) -> str | None:
        addresses = resolve_addresses(self.resolver, fqdn)
        if not addresses:
            self.metrics.dns_failures.inc()
        return addresses[0] if addresses else None

    def startup(self) -> bool:
        """Fix nodes.conf; True when Redis may start. A failure is reported, never raised."""
        s = self.settings
        own = self.own_client(1.0)
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
            self.metrics.nodes_conf_rewrites.labels("corrupt" if corrupt else "io_error").set(1)
            self.write_termination_message(reason)
            return self.started("failed", reason)
        self.metrics.nodes_conf_rewrites.labels(report.outcome).set(1)
        log.info(
            "nodes_conf_checked",
            path=str(s.nodes_conf),
            outcome=report.outcome,
            changed={k[:8]: f"{a} -> {b}" for k, (a, b) in report.changed.items()},
            unresolved=[k[:8] for k in report.unresolved],
        )
        return self.started("ok", f"nodes.conf {report.outcome}")

    def own_client(self, timeout: float) -> redis.Redis:
        s = self.settings
        return connect(s.pod_ip, s.cluster.redis_port, self.access, timeout, server_name=s.pod_fqdn)

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

    def prestop(self) -> dict[str, object]:
        """The redis container's preStop hook: a master with slots hands over to its best
        replica and returns once this node is a replica (bounded); anything else at once."""
        s = self.settings
        log.info("prestop_started", timeout_seconds=s.handover_timeout_seconds)
        self.state.stopping = True
        if self.layout is not None:
            self.layout.stopping = True
        result = hand_over(
            s.pod_ip,
            s.cluster.redis_port,
            self.access,
            s.handover_timeout_seconds,
            server_name=s.pod_fqdn,
            domains=self.layout.domains if self.layout is not None else {},
        )
        self.metrics.handovers.labels(result.outcome).inc()
        level = log.warning if result.outcome in ("timed_out", "failed") else log.info
        level("prestop_done", **asdict(result))
        return asdict(result)

    # -- the loop --------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.turn()
            stop.wait(self.settings.heal_interval_seconds)

    def turn(self) -> None:
        """One turn: PING, observe, readiness, metrics, heal. Never raises."""
        self.metrics.loop_turns.inc()
        try:
            if self.ping():
                self.tls_reload.check(self.redis)
                self.observe_and_heal()
        except (redis.RedisError, OSError, NodeLineError, ValueError) as exc:
            log.warning("turn_failed", error=str(exc))
            self.set_ready(False, f"cannot read cluster state: {exc}")
        self.state.turned()

    def ping(self) -> bool:
        """True when Redis answered PONG; anything else makes the pod unready (the liveness
        PING is sidecar.pingcheck's, in a thread of its own)."""
        outcome, reason = ping(self.redis)
        if outcome != "pong":
            self.set_ready(False, reason)
        return outcome == "pong"

    def set_ready(self, ready: bool, reason: str) -> None:
        with self.state.lock:
            self.state.ready, self.state.ready_reason = ready, reason

    def observe_and_heal(self) -> None:
        info = info_fields(self.redis.execute_command("CLUSTER", "INFO"))
        nodes = parse_cluster_nodes(str(self.redis.execute_command("CLUSTER", "NODES")))
        redis_info = self.redis.info()
        link = redis_info.get("master_link_status")
        link = None if link is None else str(link)
        me = myself(nodes)
        stats.update_cluster(self.metrics, info, me, nodes)
        stats.update_redis(self.metrics, redis_info, me, nodes, self.settings.pod_name)
        self.colocation.update(self.metrics, me, nodes)
        ready, reason = readiness(info, me, link)
        with self.state.lock:
            self.state.node_id = me.node_id
        self.remember_pods(nodes)
        status = RejoinStatus()
        try:
            status = self.rejoin_turn(info, me, ready)
            self.heal(nodes)
            if self.layout is not None:
                self.layout.turn(self.redis, nodes, self.pod_map, redis_info)
        except (redis.RedisError, OSError, NodeLineError, ValueError) as exc:
            # Healing is the sidecar's work, not Redis's state: readiness stays what Redis says.
            self.metrics.heal_failures.inc()
            log.warning("heal_failed", error=str(exc))
        lost = None if ready or self.layout is None else self.layout.quorum_reason(nodes)
        self.set_ready(ready, lost or (reason if ready or not status.reason else status.reason))
        self.report_unserved(nodes, status)

    def rejoin_turn(self, info: dict[str, str], me: NodeLine, ready: bool) -> RejoinStatus:
        """A Redis that knows only itself and holds nothing may be a replaced pod's new node."""
        if self.rejoin is None:
            return RejoinStatus()
        alone = info.get("cluster_known_nodes") == "1" and not me.slots
        if not self.rejoin.wanted(alone and not self.redis.dbsize()):
            return RejoinStatus()
        return self.rejoin.turn(me.node_id, ready, self.pod_map)

    def report_unserved(self, nodes: list[NodeLine], status: RejoinStatus) -> None:
        """The lost-shard gauge: slots failing with no live replica in this node's view, and the
        lost shards the rejoin step saw (a replaced pod's Redis knows no peer yet)."""
        gauge = self.metrics.slots_without_live_owner
        gauge.clear()
        naming = self.settings.cluster.naming
        for owner, ranges in unserved_slots(nodes):
            pod = owner.address.hostname.split(".")[0] or self.pod_map.get(owner.node_id, "")
            gauge.labels(owner.node_id, pod, ranges).set(owner.slot_count)
        for ghost in status.lost:
            count = sum(r.count for r in ghost.slots)
            gauge.labels(ghost.node_id, naming.pod_name(ghost.pod), format_ranges(ghost.slots)).set(
                count
            )

    def remember_pods(self, nodes: list[NodeLine]) -> None:
        """Keep node id -> pod beside nodes.conf, for peers whose lines lose their hostname."""
        current = {**self.pod_map, **pod_map_from(nodes, self.settings.cluster.naming)}
        if current != self.pod_map:
            self.pod_map = current
            try:
                write_atomically(
                    self.settings.nodes_conf.parent / POD_MAP_NAME,
                    json.dumps(current, indent=1, sort_keys=True) + "\n",
                )
            except OSError as exc:
                log.warning("pod_map_unwritable", error=str(exc))

    def locate(self, fqdn: str, node_id: str) -> str | None:
        """The pod's address, if the Redis answering there is `node_id` and still knows this
        node. A peer that does not list this node forgot it on purpose (the Job drained it, or
        gave its lost slots to another): meeting it would bring a forgotten node back."""
        ip = self.resolve(fqdn)
        if ip is None:
            return None
        try:
            peer = connect(
                ip,
                self.settings.cluster.redis_port,
                self.access,
                PEER_TIMEOUT_SECONDS,
                server_name=fqdn,
            )
            answered = str(peer.execute_command("CLUSTER", "MYID"))
            known = str(peer.execute_command("CLUSTER", "NODES")) if answered == node_id else ""
            peer.close()
        except (redis.RedisError, OSError):
            return None
        if answered != node_id:
            return None
        mine = self.state.node_id
        if mine and mine not in known:
            if fqdn not in self.forgotten_by:  # once per peer: this is asked every turn
                self.forgotten_by.add(fqdn)
                log.info(
                    "heal_skipped_forgotten",
                    peer=fqdn,
                    reason="the peer does not know this node: it was forgotten on purpose",
                )
            return None
        return ip

    def heal(self, nodes: list[NodeLine]) -> None:
        naming = self.settings.cluster.naming
        # Every unreachable peer is located at once and within a time box (sidecar.locate).
        candidates = heal_candidates(nodes, naming, self.pod_map)
        found = self.locator.locate_all([(fqdn, line.node_id) for line, fqdn in candidates])
        for meet in plan_meets(
            nodes,
            naming,
            self.pod_map,
            lambda fqdn, node_id: found.get(node_id),
            self.settings.cluster.redis_port,
        ):
            if not self.meet_limit.allow(meet.node_id):
                continue
            self.redis.execute_command("CLUSTER", "MEET", meet.ip, meet.port, meet.bus_port)
            self.metrics.heal_meets.inc()
            log.info(
                "heal_meet",
                peer=meet.pod_fqdn.split(".")[0],
                peer_node=meet.node_id,
                address=f"{meet.ip}:{meet.port}",
            )

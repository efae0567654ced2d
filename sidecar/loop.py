"""The sidecar's loop, Patroni's way: each turn observes this pod's Redis, works out readiness
and metrics, carries out this pod's own steps (address healing, rejoining, layout repair) and
returns one sentence saying what it did or why it waited. The loop always turns: an unexpected
exception is logged with its traceback, counted, and the next turn comes anyway."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

import redis
import structlog

from clusterkit.core.identity import pod_label, pod_map_from
from clusterkit.core.nodes import NodeLine, NodeLineError, myself, parse_cluster_nodes
from clusterkit.core.readiness import readiness, unserved_slots
from clusterkit.core.slots import format_ranges
from clusterkit.io.atomicfile import write_atomically
from clusterkit.io.redisio import info_fields
from sidecar import stats
from sidecar.crashwatch import CrashWatch
from sidecar.fixconf import POD_MAP_NAME
from sidecar.health import HealthState
from sidecar.layout import LayoutWatch
from sidecar.peers import Peers
from sidecar.pingcheck import ping
from sidecar.rejoin import Rejoin, RejoinStatus
from sidecar.settings import SidecarSettings
from sidecar.tlsreload import TlsReload

log = structlog.get_logger()

EXPECTED_ERRORS = (redis.RedisError, OSError, NodeLineError, ValueError)
"""What Redis, the network or a node line can raise: the turn reports it and waits."""


@dataclass
class Steps:
    """What this turn's own steps did, for its sentence."""

    met: list[str] = field(default_factory=list)
    rejoin: RejoinStatus = field(default_factory=RejoinStatus)
    failed: str = ""


class Loop:
    """One pod's loop; its Redis client, peers, rejoin and layout steps are handed in."""

    def __init__(
        self,
        settings: SidecarSettings,
        state: HealthState,
        *,
        own: redis.Redis,
        peers: Peers,
        rejoin: Rejoin | None,
        layout: LayoutWatch | None,
        crash: CrashWatch | None = None,
        tls_reload: TlsReload,
        pod_map: dict[str, str],
    ) -> None:
        self.settings = settings
        self.state = state
        self.metrics = state.metrics
        self.redis = own
        self.peers = peers
        self.rejoin = rejoin
        self.layout = layout
        self.crash = crash
        self.tls_reload = tls_reload
        self.pod_map = pod_map
        """Node id -> pod, kept beside nodes.conf for peers whose lines lose their hostname."""
        self.colocation = stats.Colocation(
            settings.http_port, settings.node_name, settings.pod_name
        )
        self.said = ""

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.turn()
            stop.wait(self.settings.heal_interval_seconds)

    def turn(self) -> str:
        """One turn: PING, observe, readiness, metrics, this pod's steps. Never raises; returns
        (and serves on /status, and logs when it changes) what the turn did or waited for."""
        self.metrics.loop_turns.inc()
        try:
            sentence = self.ping() or self.observe_and_act()
        except EXPECTED_ERRORS as exc:
            log.warning("turn_failed", error=str(exc))
            sentence = f"cannot read cluster state: {exc}"
            self.set_ready(False, sentence)
        except Exception as exc:  # the loop must turn: the liveness probe asks this process
            log.exception("turn_crashed", error=repr(exc))
            self.metrics.loop_errors.inc()
            sentence = f"sidecar error: {exc!r} (its log has the traceback)"
            self.set_ready(False, sentence)
        self.say(sentence)
        self.state.turned()
        return sentence

    def say(self, sentence: str) -> None:
        with self.state.lock:
            self.state.status = sentence
        if sentence != self.said:
            self.said = sentence
            log.info("loop_status", status=sentence)

    def ping(self) -> str:
        """ "" when Redis answered PONG, else why not (the pod is then unready; the liveness
        PING is sidecar.pingcheck's, in a thread of its own)."""
        outcome, reason = ping(self.redis)
        if outcome == "pong":
            return ""
        self.set_ready(False, reason)
        return f"waiting: {reason}"

    def set_ready(self, ready: bool, reason: str) -> None:
        with self.state.lock:
            self.state.ready, self.state.ready_reason = ready, reason

    def observe_and_act(self) -> str:
        self.tls_reload.check(self.redis)
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
        if self.crash is not None:
            self.crash.arm(me, nodes)
        with self.state.lock:
            self.state.node_id = me.node_id
        self.remember_pods(pod_map_from(nodes, self.settings.cluster.naming))
        steps = self.own_steps(info, me, nodes, ready, redis_info)
        lost = None if ready or self.layout is None else self.layout.quorum_reason(nodes)
        status = steps.rejoin
        self.set_ready(ready, lost or (reason if ready or not status.reason else status.reason))
        self.report_unserved(nodes, status)
        return self.sentence(
            me=me, nodes=nodes, link=link, steps=steps, reason=lost or reason, ready=ready
        )

    def own_steps(
        self,
        info: dict[str, str],
        me: NodeLine,
        nodes: list[NodeLine],
        ready: bool,
        redis_info: dict[str, object],
    ) -> Steps:
        steps = Steps()
        try:
            steps.rejoin = self.rejoin_turn(info, me, ready)
            self.remember_pods(steps.rejoin.named)
            steps.met = self.peers.heal(self.redis, nodes, self.pod_map)
            if self.layout is not None:
                self.layout.turn(self.redis, nodes, self.pod_map, redis_info)
        except EXPECTED_ERRORS as exc:
            # Healing is the sidecar's work, not Redis's state: readiness stays what Redis says.
            self.metrics.heal_failures.inc()
            log.warning("heal_failed", error=str(exc))
            steps.failed = str(exc)
        except Exception as exc:  # a bug met in a step (a peer's odd reply): never unready for it
            log.exception("step_crashed", error=repr(exc))
            self.metrics.loop_errors.inc()
            steps.failed = f"sidecar error: {exc!r} (its log has the traceback)"
        return steps

    def sentence(
        self,
        *,
        me: NodeLine,
        nodes: list[NodeLine],
        link: str | None,
        steps: Steps,
        reason: str,
        ready: bool,
    ) -> str:
        """What this node is, then what the turn did or why it waits."""
        if me.is_replica:
            master = next((n for n in nodes if n.node_id == me.master_id), None)
            name = self.pod_name_of(master) if master else (me.master_id or "?")[:8]
            role = f"replica of {name}, link {link or 'unknown'}"
        elif me.slots:
            role = f"master of {me.slot_count} slots"
        else:
            role = "master without slots"
        parts = [role]
        if steps.met:
            parts.append("met " + ", ".join(steps.met) + " at their new addresses")
        if steps.rejoin.reason:
            parts.append(f"waiting: {steps.rejoin.reason}")
        elif not ready:
            parts.append(f"not ready: {reason}")
        if steps.failed:
            parts.append(f"a step failed (retried next turn): {steps.failed}")
        return "; ".join(parts)

    def pod_name_of(self, line: NodeLine) -> str:
        return pod_label(line, self.pod_map)

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
            gauge.labels(owner.node_id, self.pod_name_of(owner), ranges).set(owner.slot_count)
        for ghost in status.lost:
            count = sum(r.count for r in ghost.slots)
            gauge.labels(ghost.node_id, naming.pod_name(ghost.pod), format_ranges(ghost.slots)).set(
                count
            )

    def remember_pods(self, named: Mapping[str, str]) -> None:
        """Keep node id -> pod beside nodes.conf, for peers whose lines lose their hostname."""
        current = {**self.pod_map, **named}
        if current != self.pod_map:
            self.pod_map.clear()
            self.pod_map.update(current)
            try:
                write_atomically(
                    self.settings.nodes_conf.parent / POD_MAP_NAME,
                    json.dumps(current, indent=1, sort_keys=True) + "\n",
                )
            except OSError as exc:
                log.warning("pod_map_unwritable", error=str(exc))

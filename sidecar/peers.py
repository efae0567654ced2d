"""Address healing while Redis runs: find the peers this node cannot reach at their pods'
current addresses and MEET them there (clusterkit.core.addresses decides; this is the I/O)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis
import structlog

from clusterkit.core.addresses import heal_candidates, plan_meets
from clusterkit.core.naming import PodNaming
from clusterkit.core.nodes import NodeLine
from sidecar.locate import PeerLocator
from sidecar.metrics import Metrics

log = structlog.get_logger()


@dataclass
class RateLimit:
    """At most one action per key every `seconds` (Redis needs a moment to finish a handshake)."""

    seconds: float = 5.0
    last: dict[str, float] = field(default_factory=dict)

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if now - self.last.get(key, -1e18) < self.seconds:
            return False
        self.last[key] = now
        return True


class Peers:
    """Locates unreachable peers (time-boxed, sidecar.locate) and sends the MEETs."""

    def __init__(
        self,
        naming: PodNaming,
        port: int,
        metrics: Metrics,
        *,
        resolve: Callable[[str], str | None],
        connect_peer: Callable[[str, str], redis.Redis],
        my_id: Callable[[], str],
    ) -> None:
        self.naming = naming
        self.port = port
        self.metrics = metrics
        self.resolve = resolve
        self.connect_peer = connect_peer
        """A client to (ip, pod FQDN): short timeouts, the FQDN checked over TLS."""
        self.my_id = my_id
        self.meet_limit = RateLimit(seconds=5.0)
        self.forgotten_by: set[str] = set()
        """Peers that do not know this node (logged once each; never met)."""
        self.locator = PeerLocator(self.locate, metrics.peer_timeouts.inc)

    def locate(self, fqdn: str, node_id: str) -> str | None:
        """The pod's address, if the Redis answering there is `node_id` and still knows this
        node. A peer that does not list this node forgot it on purpose (the Job drained it, or
        gave its lost slots to another): meeting it would bring a forgotten node back."""
        ip = self.resolve(fqdn)
        if ip is None:
            return None
        try:
            peer = self.connect_peer(ip, fqdn)
            answered = str(peer.execute_command("CLUSTER", "MYID"))
            known = str(peer.execute_command("CLUSTER", "NODES")) if answered == node_id else ""
            peer.close()
        except (redis.RedisError, OSError):
            return None
        if answered != node_id:
            return None
        mine = self.my_id()
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

    def heal(self, own: redis.Redis, nodes: list[NodeLine], pod_map: dict[str, str]) -> list[str]:
        """MEET each unreachable peer at its pod's new address; the pods met this turn."""
        # Every unreachable peer is located at once and within a time box (sidecar.locate).
        candidates = heal_candidates(nodes, self.naming, pod_map)
        found = self.locator.locate_all([(fqdn, line.node_id) for line, fqdn in candidates])
        met = []
        for meet in plan_meets(
            nodes, self.naming, pod_map, lambda fqdn, node_id: found.get(node_id), self.port
        ):
            if not self.meet_limit.allow(meet.node_id):
                continue
            own.execute_command("CLUSTER", "MEET", meet.ip, meet.port, meet.bus_port)
            self.metrics.heal_meets.inc()
            peer = meet.pod_fqdn.split(".")[0]
            met.append(peer)
            log.info(
                "heal_meet", peer=peer, peer_node=meet.node_id, address=f"{meet.ip}:{meet.port}"
            )
        return met

"""Heal peer addresses while Redis runs: a peer Redis can't reach whose pod now lives at another
address gets a CLUSTER MEET there, and Redis updates that node's address after the handshake."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from clusterkit.core.naming import PodNaming
from clusterkit.core.nodes import BUS_PORT_OFFSET, NodeLine
from sidecar.fixconf import pod_fqdn_of


@dataclass(frozen=True)
class Meet:
    """MEET `node_id` at its pod's current address."""

    node_id: str
    pod_fqdn: str
    ip: str
    port: int
    bus_port: int


def needs_healing(line: NodeLine) -> bool:
    """A peer this node can't talk to: disconnected, suspected or failed, or without address."""
    return not line.is_myself and not line.is_handshake and line.is_down


def heal_candidates(
    nodes: list[NodeLine], naming: PodNaming, pod_map: dict[str, str]
) -> list[tuple[NodeLine, str]]:
    """(line, pod FQDN) of every unhealthy peer whose pod is known."""
    found = []
    for line in nodes:
        if needs_healing(line):
            fqdn = pod_fqdn_of(line, naming, pod_map)
            if fqdn is not None:
                found.append((line, fqdn))
    return found


def plan_meets(
    nodes: list[NodeLine],
    naming: PodNaming,
    pod_map: dict[str, str],
    locate: Callable[[str, str], str | None],
    default_port: int = 6379,
) -> list[Meet]:
    """MEETs for unhealthy peers whose pod answers at a different address.

    `locate(pod_fqdn, node_id)` returns the pod's address only when the Redis there says it is
    `node_id` (CLUSTER MYID): a pod that came back with a new identity must not be met under
    the old one.
    """
    meets: list[Meet] = []
    for line, fqdn in heal_candidates(nodes, naming, pod_map):
        ip = locate(fqdn, line.node_id)
        if ip is not None and ip != line.address.ip:
            # A `noaddr` line says :0@0: the pod's port is the StatefulSet's port then.
            port = line.address.port or default_port
            bus = line.address.cport or port + BUS_PORT_OFFSET
            meets.append(Meet(line.node_id, fqdn, ip, port, bus))
    return meets


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

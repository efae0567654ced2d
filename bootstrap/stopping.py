"""Pods that are stopping: their sidecar's /node says so once the preStop hook has begun. A
master hands its slots over to a replica then, and the replica wins the election only once its
view of the master's slots is current, which it never is while slots keep moving off that
master (the other masters refuse their vote: "slot N epoch > reqEpoch"). So the Job starts no
chunk of moves from or to a stopping pod; the chunk in flight ends, the handover goes ahead,
and the next round moves the slots from the new master."""

from __future__ import annotations

import structlog

from clusterkit.core.model import MoveSlot
from clusterkit.io.placement import node_report

log = structlog.get_logger()

ASK_SECONDS = 0.5
"""Per question: a sidecar on the same network answers in milliseconds."""


class StoppingPods:
    """Asks the sidecars at both ends of a move before each chunk (thread-safe)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.silent: set[str] = set()
        """Addresses whose sidecar did not answer: not asked again (no sidecar there, or a
        NetworkPolicy in the way); moves go on as they would without this check."""

    def stopping(self, ip: str) -> bool:
        if ip in self.silent:
            return False
        found = node_report(ip, self.port, ASK_SECONDS)
        if found is None:
            self.silent.add(ip)
            return False
        return found.get("stopping") is True

    def may_move(self, move: MoveSlot) -> bool:
        """Whether neither end of the move is stopping."""
        for ip in (move.source_ip, move.target_ip):
            if self.stopping(ip):
                log.info(
                    "pod_stopping", ip=ip, slot=move.slot, next_step="moves wait for its handover"
                )
                return False
        return True

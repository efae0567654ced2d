"""Telling the other masters a moved slot's new owner, in the background.

They learn it by gossip anyway (the target's epoch bump): telling them directly only saves
clients a redirect, so it never holds up the next slots; the replies are read once, at the end.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future

import redis

from clusterkit.core.model import MoveSlot
from clusterkit.core.naming import PodNaming
from clusterkit.io.redisio import Command, Reply, submit
from clusterkit.io.setslot import ONLY_MASTERS


class OwnerAnnouncements:
    """The SETSLOT NODE pipelines sent to the masters a move names, until their replies are read."""

    def __init__(self, clients: dict[int, redis.Redis], naming: PodNaming) -> None:
        self.clients = clients
        self.naming = naming
        self.lock = threading.Lock()
        self.sent: list[tuple[int, Future[list[Reply] | Exception]]] = []

    def send(self, moves: Sequence[MoveSlot]) -> None:
        """One pipeline per master for these moves' new owners."""
        commands: dict[int, list[Command]] = {}
        for move in moves:
            for ordinal in move.announce:
                command = ("CLUSTER", "SETSLOT", move.slot, "NODE", move.target_id)
                commands.setdefault(ordinal, []).append(command)
        sent = [(o, submit(self.clients[o], batch)) for o, batch in commands.items()]
        with self.lock:
            self.sent.extend(sent)

    def failed(self) -> list[str]:
        """Wait for every announcement; which ones Redis refused (other than ONLY_MASTERS: a
        master that gave its last slot away and turned replica)."""
        failed = []
        for ordinal, future in self.sent:
            result = future.result()
            for reply in [result] if isinstance(result, Exception) else result:
                if isinstance(reply, Exception) and ONLY_MASTERS not in str(reply):
                    failed.append(f"{self.naming.pod_name(ordinal)}: {reply}")
        return failed

"""Helpers around the bootstrap Job's output and the devcluster's address range."""

from __future__ import annotations

import json
import random
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from devcluster.state import DNS_PORT


@dataclass(frozen=True)
class JobResult:
    returncode: int
    events: list[dict[str, object]]
    """The Job's structlog events, parsed from its JSON lines."""

    def last(self, event: str) -> dict[str, object] | None:
        found = [e for e in self.events if e.get("event") == event]
        return found[-1] if found else None


def parse_events(output: str) -> list[dict[str, object]]:
    events = []
    for line in output.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, Mapping):
            events.append(dict(event))
    return events


def free_octet() -> int:
    """A 127.X.0.0/16 range whose DNS address is free, so devclusters (and tests) don't collide."""
    for _ in range(50):
        octet = random.randint(16, 250)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((f"127.{octet}.255.53", DNS_PORT))
            except OSError:
                continue
        return octet
    raise RuntimeError("no free 127.X.0.0/16 range for a devcluster")

"""A writer that measures what the servers serve, not what a client library's retry policy lets
through: it SETs keys of one shard on a plain connection to whichever pod owns the shard,
follows MOVED at once, and after a refused or broken connection tries every running pod in turn
(a replica answers MOVED to the owner). redis-py's cluster client waits at least a second
between two topology refreshes after an error (redis-py 8), which adds up to a second to every
outage it sees; bench.rollout's ShardWriter is that client's view, this one the cluster's."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.crc import key_slot
from redis.exceptions import MovedError

WRITES_MAX = 2_000_000
"""Bound on the loop (the benchmark stops it long before)."""
WRITE_PAUSE_SECONDS = 0.002
CONNECT_SECONDS = 0.2
"""A pod that does not accept a connection this fast is skipped for the next one."""


@dataclass
class DirectWriter:
    tag: str
    addresses: Callable[[], list[tuple[str, int]]]
    """The running pods' (ip, port), read again whenever the owner is lost."""
    options: dict[str, Any]
    """redis.Redis options: credentials, TLS."""
    acknowledged: dict[str, str] = field(default_factory=dict)
    failed: int = 0
    longest_gap: float = 0.0
    gap_started: float = 0.0
    """When the longest gap began (time.monotonic)."""
    stop: threading.Event = field(default_factory=threading.Event)
    last_ack: float = 0.0

    def client(self, ip: str, port: int) -> redis.Redis:
        return redis.Redis(
            host=ip,
            port=port,
            socket_timeout=1.0,
            socket_connect_timeout=CONNECT_SECONDS,
            decode_responses=True,
            retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0),
            **self.options,
        )

    def run(self) -> None:
        self.last_ack = time.monotonic()
        candidates: list[tuple[str, int]] = []
        owner: redis.Redis | None = None
        for n in range(WRITES_MAX):
            if self.stop.is_set():
                break
            if owner is None:
                if not candidates:
                    candidates = list(self.addresses())
                    time.sleep(WRITE_PAUSE_SECONDS)
                if not candidates:
                    continue
                owner = self.client(*candidates.pop(0))
            key = f"{self.tag}:{n}"
            try:
                owner.set(key, str(n))
            except MovedError as moved:
                self.failed += 1
                owner.close()
                owner = self.client(moved.host, moved.port)
                continue
            except redis.RedisError:
                # Refused, broken, CLUSTERDOWN, a replica still following the dead master: the
                # next pod in turn (a pod that is no owner answers MOVED, which leads there).
                self.failed += 1
                owner.close()
                owner = None
                continue
            self.acked(key, str(n))
        if owner is not None:
            owner.close()

    def acked(self, key: str, value: str) -> None:
        now = time.monotonic()
        if now - self.last_ack > self.longest_gap:
            self.longest_gap, self.gap_started = now - self.last_ack, self.last_ack
        self.last_ack = now
        self.acknowledged[key] = value
        time.sleep(WRITE_PAUSE_SECONDS)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        return thread


def shard_tags(first: int, last: int) -> Iterator[str]:
    """Hash tags whose keys fall into the slots first..last (not bench.rollout's)."""
    return (f"{{c{n}}}" for n in range(100_000) if first <= key_slot(f"{{c{n}}}".encode()) <= last)

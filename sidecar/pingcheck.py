"""Is this pod's Redis alive? A PING on a connection of its own, in a thread of its own, so that
nothing else the sidecar does (healing, a slow peer, DNS) can delay the answer: the redis
container's liveness probe reads only this.

Alive: PONG, or a reply that says "busy" (LOADING, MASTERDOWN, BUSY); not running at all is not
"hung" either (Kubernetes restarts a crashed container by itself). Hung: no reply, three times
in a row (sidecar.health.HUNG_AFTER_TIMEOUTS).
"""

from __future__ import annotations

import threading

import redis

from clusterkit.io.access import Access
from clusterkit.io.logs import start_thread
from clusterkit.io.pingreply import classify_ping_failure
from clusterkit.io.redisio import connect
from sidecar.health import HealthState

PING_TIMEOUT_SECONDS = 2.0
PING_INTERVAL_SECONDS = 1.0

OUTCOMES = {"tls": "error", "auth": "error"}
"""A PING failure's kind -> the sidecar's outcome, where they differ: both are replies."""


def classify_ping(error: Exception | None) -> tuple[str, str]:
    """(outcome, readiness reason) for a PING that raised `error` (None: PONG).

    Outcomes: pong; busy (LOADING, MASTERDOWN, BUSY: alive, not ready); down (not listening:
    not started yet or restarting, which Kubernetes handles by itself); timeout (no reply at
    all: only this counts towards "hung"); error (any other reply, a refused password, and a
    TLS handshake that fails on certificates: the reason says which check, not "not running").
    """
    if error is None:
        return "pong", "ok"
    failure = classify_ping_failure(error, "this pod's Redis")
    return OUTCOMES.get(failure.kind, failure.kind), failure.reason


def ping(client: redis.Redis) -> tuple[str, str]:
    """PING once: (outcome, reason) as classify_ping says."""
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return classify_ping(exc)
    return classify_ping(None)


class PingCheck:
    """The liveness PING: its own client, its own thread (run), its own count of timeouts."""

    def __init__(
        self, ip: str, port: int, access: Access, state: HealthState, server_name: str
    ) -> None:
        self.client = connect(ip, port, access, PING_TIMEOUT_SECONDS, server_name=server_name)
        self.state = state

    def turn(self) -> str:
        """One PING; counts a timeout towards "hung", any reply resets the count."""
        outcome, _ = ping(self.client)
        with self.state.lock:
            self.state.ping_timeouts = self.state.ping_timeouts + 1 if outcome == "timeout" else 0
        self.state.metrics.redis_up.set(1 if outcome in ("pong", "busy") else 0)
        self.state.ping_turned()
        return outcome

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.turn()
            stop.wait(PING_INTERVAL_SECONDS)

    def start(self, stop: threading.Event) -> threading.Thread:
        return start_thread(self.run, stop, "ping-check")

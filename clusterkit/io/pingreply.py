"""What a failed PING says about a node: one classification for the Job and the sidecar."""

from __future__ import annotations

import errno
from dataclasses import dataclass

import redis

from clusterkit.io.access import explain_tls_failure
from clusterkit.io.redisio import BUSY_PREFIXES


@dataclass(frozen=True)
class PingFailure:
    kind: str
    """tls (a handshake no retry fixes), timeout (no reply at all), busy (LOADING, MASTERDOWN,
    BUSY: alive, not serving yet), auth (the password or user was refused), down (nothing
    listening), error (any other reply)."""
    reason: str
    """For people: what is wrong ("Redis is LOADING", the TLS check that failed)."""
    text: str
    """The reply itself; for busy its first word (LOADING)."""


BY_CLASS: tuple[tuple[type[Exception], str, str, str | None], ...] = (
    (redis.TimeoutError, "timeout", "Redis does not answer PING", None),
    # redis-py drops the code from the text of a LOADING reply.
    (redis.BusyLoadingError, "busy", "Redis is LOADING", "LOADING"),
    (redis.exceptions.MasterDownError, "busy", "Redis is MASTERDOWN", "MASTERDOWN"),
)
"""Exception class -> (kind, reason, text; None: the reply's), before any look at the text."""


def classify_ping_failure(error: Exception, server_name: str) -> PingFailure:
    """First match wins: redis-py files LOADING and refused passwords under ConnectionError."""
    tls_problem = explain_tls_failure(error, server_name)
    text = str(error) or type(error).__name__
    if tls_problem:
        return PingFailure("tls", tls_problem, text)
    for kind, name, reason, word in BY_CLASS:
        if isinstance(error, kind):
            return PingFailure(name, reason, word or text)
    if text.startswith(BUSY_PREFIXES):
        word = text.split(" ", maxsplit=1)[0]
        failure = PingFailure("busy", f"Redis is {word}", word)
    elif isinstance(error, redis.AuthenticationError) or text.startswith(("NOAUTH", "WRONGPASS")):
        failure = PingFailure("auth", f"Redis refused the credentials: {text}", text)
    elif isinstance(error, redis.ConnectionError):
        failure = PingFailure("down", "Redis is not running", text)
    else:
        failure = PingFailure("error", text, text)
    return failure


def is_refused(error: BaseException) -> bool:
    """Whether the connection was refused: nothing listens at the address (the process is gone),
    as opposed to a timeout (a hang) or any reply. redis-py wraps the OSError it met."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return True
        if isinstance(current, OSError) and current.errno == errno.ECONNREFUSED:
            return True
        current = current.__cause__ or current.__context__
    # redis-py's ConnectionError keeps only the text of the OSError it met on connect.
    return isinstance(error, redis.ConnectionError) and "Connection refused" in str(error)

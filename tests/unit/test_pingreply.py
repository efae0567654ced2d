"""clusterkit.io.pingreply: one classification of a failed PING for the Job and the sidecar."""

from __future__ import annotations

import pytest
import redis

from clusterkit.io.pingreply import classify_ping_failure
from sidecar.pingcheck import classify_ping


@pytest.mark.parametrize(
    ("error", "kind", "text"),
    [
        (
            redis.TimeoutError("Timeout reading from socket"),
            "timeout",
            "Timeout reading from socket",
        ),
        (redis.BusyLoadingError("Redis is loading the dataset in memory"), "busy", "LOADING"),
        (
            redis.exceptions.MasterDownError("MASTERDOWN Link with MASTER is down"),
            "busy",
            "MASTERDOWN",
        ),
        (redis.ResponseError("BUSY Redis is busy running a script"), "busy", "BUSY"),
        (
            redis.AuthenticationError("invalid username-password pair"),
            "auth",
            "invalid username-password pair",
        ),
        (
            redis.ResponseError("NOAUTH Authentication required."),
            "auth",
            "NOAUTH Authentication required.",
        ),
        (
            redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
            "down",
            "Error 111 connecting to 127.0.0.1:6379. Connection refused.",
        ),
        (redis.ResponseError("ERR unknown command"), "error", "ERR unknown command"),
    ],
)
def test_each_reply_has_one_kind(error: Exception, kind: str, text: str) -> None:
    failure = classify_ping_failure(error, "redis-0")
    assert (failure.kind, failure.text) == (kind, text)


def test_the_sidecar_counts_a_refused_password_as_a_reply_not_as_redis_down() -> None:
    outcome, reason = classify_ping(redis.AuthenticationError("invalid username-password pair"))
    assert outcome == "error"
    assert reason == "Redis refused the credentials: invalid username-password pair"


def test_the_sidecar_keeps_its_outcomes_for_the_other_kinds() -> None:
    assert classify_ping(None) == ("pong", "ok")
    assert classify_ping(redis.BusyLoadingError("loading")) == ("busy", "Redis is LOADING")
    assert classify_ping(redis.TimeoutError("t")) == ("timeout", "Redis does not answer PING")
    assert classify_ping(redis.ConnectionError("refused")) == ("down", "Redis is not running")

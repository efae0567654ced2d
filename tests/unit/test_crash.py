"""A crashed master's fast failover (clusterkit.core.crash, clusterkit.io.pingreply.is_refused):
when the sidecar calls its Redis crashed, and which replica it tells to take over."""

from __future__ import annotations

import errno

import pytest
import redis

from clusterkit.core.crash import STALE_LINK_SECONDS, RefusalWindow, ReplicaReport, crash_successors
from clusterkit.core.nodes import parse_cluster_nodes
from clusterkit.io.pingreply import is_refused
from tests.unit.factories import node_id, node_line

OLD, FAR, NEAR, OTHER = node_id("old"), node_id("far"), node_id("near"), node_id("other")


def test_three_refusals_in_a_row_within_the_window_mean_a_crash() -> None:
    window = RefusalWindow(3, window_seconds=1.0)
    assert not window.observe(True, 0.0)
    assert not window.observe(True, 0.1)
    assert window.observe(True, 0.2)


@pytest.mark.parametrize("between", ["pong", "loading", "timeout", "error"])
def test_any_reply_or_a_timeout_starts_the_count_again(between: str) -> None:
    """LOADING is a restart, an error reply is a Redis that runs, a timeout is a hang: only
    refusals in a row count (the caller gives False for each of these)."""
    window = RefusalWindow(3, window_seconds=1.0)
    window.observe(True, 0.0)
    window.observe(True, 0.1)
    assert not window.observe(False, 0.2), between
    assert not window.observe(True, 0.3)
    assert not window.observe(True, 0.4)
    assert window.observe(True, 0.5)


def test_refusals_spread_wider_than_the_window_are_not_a_crash() -> None:
    window = RefusalWindow(3, window_seconds=1.0)
    assert not window.observe(True, 0.0)
    assert not window.observe(True, 0.9)
    assert not window.observe(True, 2.0)  # the first two fell out of the window


def refused() -> redis.ConnectionError:
    try:
        try:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        except OSError as exc:
            raise redis.ConnectionError("Error 111 connecting to 10.0.0.1:6379.") from exc
    except redis.ConnectionError as error:
        return error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (refused(), True),
        (redis.ConnectionError("Error 111 connecting to 10.0.0.1:6379. Connection refused."), True),
        (redis.TimeoutError("Timeout connecting to server"), False),
        (redis.ConnectionError("Connection closed by server."), False),
        (redis.BusyLoadingError("Redis is loading the dataset in memory"), False),
        (redis.ResponseError("ERR something"), False),
        (redis.AuthenticationError("invalid username-password pair"), False),
    ],
)
def test_only_a_refused_connection_counts_as_refused(error: Exception, expected: bool) -> None:
    assert is_refused(error) is expected


def successors(
    reports: dict[str, ReplicaReport], domains: dict[str, str] | None = None
) -> list[str]:
    nodes = parse_cluster_nodes(
        "\n".join(
            [
                node_line(OLD, "10.0.0.1:6379@16379", "myself,master", slots="0-99"),
                node_line(FAR, "10.0.0.2:6379@16379", "slave", master=OLD),
                node_line(NEAR, "10.0.0.3:6379@16379", "slave", master=OLD),
                node_line(OTHER, "10.0.0.4:6379@16379", "master", slots="100-16383"),
            ]
        )
    )
    replicas = [n for n in nodes if n.master_id == OLD]
    masters = [n for n in nodes if n.is_master]
    chosen = crash_successors(replicas, OLD, reports, domains or {}, masters)
    return [n.node_id for n in chosen]


def test_the_replica_with_the_highest_offset_takes_over_first() -> None:
    reports = {FAR: ReplicaReport(OLD, 500, 0), NEAR: ReplicaReport(OLD, 400, 0)}
    assert successors(reports) == [FAR, NEAR]


def test_at_equal_offsets_the_replica_in_the_domain_with_fewer_masters_goes_first() -> None:
    reports = {FAR: ReplicaReport(OLD, 500, 0), NEAR: ReplicaReport(OLD, 500, 0)}
    domains = {OLD: "node-a", FAR: "node-b", NEAR: "node-c", OTHER: "node-b"}
    assert successors(reports, domains) == [NEAR, FAR]


def test_a_replica_following_another_master_lagging_or_silent_is_left_out() -> None:
    reports = {
        FAR: ReplicaReport(OTHER, 900, 0),  # moved to another master since the last view
        NEAR: ReplicaReport(OLD, 800, STALE_LINK_SECONDS + 1),  # not following before the crash
    }
    assert successors(reports) == []
    assert successors({NEAR: ReplicaReport(OLD, 10, 1)}) == [NEAR]

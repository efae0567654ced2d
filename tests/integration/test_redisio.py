"""clusterkit.io.redisio.scatter on real servers: every node's replies in order, errors in place."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from clusterkit.io.redisio import connect, info_fields, scatter
from devcluster.cluster import DevCluster

pytestmark = [pytest.mark.integration, pytest.mark.needs_server]


def test_scatter_returns_each_nodes_replies_in_order_with_errors_in_place(
    make_cluster: Callable[..., DevCluster],
) -> None:
    cluster = make_cluster(6, 1)
    pods = cluster.require().pods
    clients = [cluster.client(p.name) for p in pods]
    commands = [("PING",), ("CLUSTER", "REPLICATE", "0" * 40), ("CLUSTER", "MYID"), ("DBSIZE",)]
    nowhere = connect("127.0.0.1", 1, None, timeout=0.5)  # nothing listens on port 1
    results = scatter([*[(c, commands) for c in clients], (nowhere, [("PING",)])])
    assert len(results) == len(pods) + 1
    for client, result in zip(clients, results, strict=False):
        assert not isinstance(result, Exception)
        pong, replicate, myid, keys = result
        assert pong is True
        assert isinstance(replicate, redis.ResponseError) and "Unknown node" in str(replicate)
        assert myid == client.execute_command("CLUSTER", "MYID")
        assert keys == 0
    assert isinstance(results[-1], redis.ConnectionError)
    # The connection survives an error reply: the next round on the same clients works.
    again = scatter([(c, [("INFO", "replication")]) for c in clients])
    assert all(
        not isinstance(r, Exception) and info_fields(r[0])["role"] == "master" for r in again
    )

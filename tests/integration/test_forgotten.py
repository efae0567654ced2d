"""A node the cluster forgot on purpose stays forgotten: the Job forgets a leaving node before it
resets it, and a Job killed in between leaves a node that still knows the cluster. Its sidecar's
address healing must not MEET it back in when a peer comes back at a new address."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from devcluster.cluster import DevCluster
from devcluster.health import views
from tests.integration.helpers import formed_with_keys, missing_keys

pytestmark = [pytest.mark.integration, pytest.mark.needs_server]

MakeCluster = Callable[..., DevCluster]
KEYS = 2000
HEAL_WINDOW_SECONDS = 15.0
"""Long past the sidecar's heal turns (every second) and a MEET's handshake."""


def listing(cluster: DevCluster, node_id: str) -> list[str]:
    """The pods whose view lists `node_id`."""
    return sorted(
        pod for pod, lines in views(cluster).items() if any(n.node_id == node_id for n in lines)
    )


@pytest.mark.slow
def test_a_forgotten_node_is_not_met_back_when_a_peer_moves(make_cluster: MakeCluster) -> None:
    cluster, keys = formed_with_keys(make_cluster, KEYS)
    roles = cluster.roles()
    forgotten = next(r for r in roles if r["role"] == "replica")
    gone = str(cluster.client(forgotten["pod"]).execute_command("CLUSTER", "MYID"))
    others = [r["pod"] for r in roles if r["pod"] != forgotten["pod"]]
    for pod in others:  # the Job's forget, then killed before its reset
        cluster.client(pod).execute_command("CLUSTER", "FORGET", gone)
    assert listing(cluster, gone) == [forgotten["pod"]]
    moved = next(p for p in others if p != forgotten["master"])
    cluster.restart([moved])  # back at a new address: the forgotten node sees it failing
    assert cluster.wait_ready(), cluster.unready()
    time.sleep(HEAL_WINDOW_SECONDS)
    assert listing(cluster, gone) == [forgotten["pod"]]
    assert missing_keys(cluster, keys) == []

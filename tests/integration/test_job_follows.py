"""A pod that restarts during a Job run comes back at a new address: the Job looks its name up
again and carries on there instead of waiting on the old address until its timeout."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from clusterkit.io.waiting import wait_until
from devcluster.cluster import DevCluster
from devcluster.health import wait_healthy
from tests.integration.helpers import (
    JOB_SECONDS,
    RunningJob,
    formed_with_keys,
    missing_keys,
    outcome,
)

pytestmark = [pytest.mark.integration, pytest.mark.needs_server]

MakeCluster = Callable[..., DevCluster]
KEYS = 60_000
"""Enough that the scale out's moves last seconds, so the restart lands in the middle."""


@pytest.mark.slow
def test_a_pod_restarted_at_a_new_address_during_a_scale_out_is_followed(
    make_cluster: MakeCluster,
) -> None:
    cluster, before = formed_with_keys(make_cluster, KEYS)
    cluster.add_pods(2)
    old_ip = cluster.require().pod("redis-7").ip
    job = RunningJob(cluster.start_job())
    wait_until(
        lambda: job.said("slot_moved") or job.process.poll() is not None,
        timeout=JOB_SECONDS,
        what="the Job to move its first slot",
    )
    cluster.restart(["redis-7"])  # the new replica, at another address
    assert cluster.require().pod("redis-7").ip != old_ip
    code, events = job.end()
    assert code == 0, events[-3:]
    assert outcome(events) == "cluster_formed", events[-3:]
    assert wait_healthy(cluster, masters=4, replicas_per_master=1, timeout=60) == []
    assert missing_keys(cluster, before) == []

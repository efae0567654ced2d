"""A master that hands over (its pod's preStop hook) while the Job moves slots off it, then its
pod restarts: the Job re-opens the move on the new master and finishes it, and every key reads
back (on Redis 7.0 the MIGRATING state does not reach the replica that takes over)."""

from __future__ import annotations

import json
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
    open_or_split,
    outcome,
    writing,
)

pytestmark = [pytest.mark.integration, pytest.mark.needs_server]

MakeCluster = Callable[..., DevCluster]
KEYS = 100_000
"""Enough that the scale out's moves last seconds, so the handover lands in the middle."""


def moving_source(job: RunningJob) -> str:
    """The pod of the first slot the Job moved (its source), once it said so; "" before."""
    for line in list(job.lines):
        if '"event": "slot_moved"' in line:
            return str(json.loads(line)["pod"])
    return ""


@pytest.mark.slow
def test_a_master_handing_over_in_the_middle_of_a_scale_out_loses_no_key(
    make_cluster: MakeCluster,
) -> None:
    cluster, before = formed_with_keys(make_cluster, KEYS)
    cluster.add_pods(2)
    with writing(cluster) as during:
        job = RunningJob(cluster.start_job())
        source = wait_until(
            lambda: moving_source(job) or job.process.poll() is not None,
            timeout=JOB_SECONDS,
            what="the Job to move its first slot",
        )
        assert isinstance(source, str), "the Job ended before it moved a slot"
        cluster.stop_pods([source])  # preStop: the hand over, while the moves go on
        cluster.start_pods([source])
        code, events = job.end()
    assert code == 0, events[-3:]
    assert outcome(events) == "cluster_formed", events[-3:]
    assert wait_healthy(cluster, masters=4, replicas_per_master=1, timeout=60) == []
    assert missing_keys(cluster, before) == []
    assert missing_keys(cluster, during) == []
    assert open_or_split(cluster, KEYS + len(during)) == []

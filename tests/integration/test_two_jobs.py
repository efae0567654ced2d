"""Two Jobs with different settings at once (a reapply, a GitOps revert, a CronJob rerun): the one
started later wins, the earlier one stops after its chunk in flight, and no key is lost, split
between two nodes, or left in an open slot."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from clusterkit.io.waiting import wait_until
from devcluster.cluster import DevCluster
from devcluster.health import wait_healthy
from tests.integration.helpers import RunningJob, missing_keys, open_or_split, outcome, write_keys

pytestmark = [pytest.mark.integration, pytest.mark.needs_server]

MakeCluster = Callable[..., DevCluster]
KEYS = 60_000
"""Enough that the first Job's moves last seconds, so the second arrives in the middle."""
JOB_SECONDS = 300.0
"""A bound that stops a hang (each Job alone takes seconds)."""


@pytest.mark.slow
def test_a_scale_in_overtaken_by_a_later_job_ends_in_the_later_settings(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(8, 1)
    assert cluster.run_job().returncode == 0
    write_keys(cluster, KEYS)
    keys = {f"key:{i}": str(i) for i in range(KEYS)}
    earlier = RunningJob(cluster.start_job(CLUSTER_SIZE="6"))
    wait_until(
        lambda: earlier.said("slot_moved") or earlier.process.poll() is not None,
        timeout=JOB_SECONDS,
        what="the scale-in Job to move its first slot",
    )
    later = RunningJob(cluster.start_job(CLUSTER_SIZE="8"))
    later_code, later_events = later.end()
    earlier_code, earlier_events = earlier.end()
    assert earlier_code == 0, earlier_events[-3:]
    assert outcome(earlier_events) == "superseded", earlier_events[-3:]
    assert later_code == 0, later_events[-3:]
    assert outcome(later_events) == "cluster_formed", later_events[-3:]
    assert wait_healthy(cluster, masters=4, replicas_per_master=1, timeout=30) == []
    assert missing_keys(cluster, keys) == []
    assert open_or_split(cluster, KEYS) == []


@pytest.mark.slow
def test_a_scale_out_overtaken_by_a_later_scale_in_ends_in_the_later_settings(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(8, 1)
    assert cluster.run_job(CLUSTER_SIZE="6").returncode == 0
    write_keys(cluster, KEYS)
    keys = {f"key:{i}": str(i) for i in range(KEYS)}
    earlier = RunningJob(cluster.start_job(CLUSTER_SIZE="8"))
    wait_until(
        lambda: earlier.said("slot_moved") or earlier.process.poll() is not None,
        timeout=JOB_SECONDS,
        what="the scale-out Job to move its first slot",
    )
    later = RunningJob(cluster.start_job(CLUSTER_SIZE="6"))
    later_code, later_events = later.end()
    earlier_code, earlier_events = earlier.end()
    assert earlier_code == 0, earlier_events[-3:]
    assert outcome(earlier_events) == "superseded", earlier_events[-3:]
    assert later_code == 0, later_events[-3:]
    assert outcome(later_events) == "ready_to_scale_down", later_events[-3:]
    cluster.remove_pods(2)
    assert wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=30) == []
    assert missing_keys(cluster, keys) == []
    assert open_or_split(cluster, KEYS) == []

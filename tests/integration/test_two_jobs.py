"""Two Jobs with different settings at once (a reapply, a GitOps revert, a CronJob rerun): the one
started later wins, the earlier one stops after its chunk in flight, and no key is lost, split
between two nodes, or left in an open slot."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable

from bootstrap.lease import GENERATION_KEY, HOLDER_KEY
from clusterkit.waiting import wait_until
from devcluster.cluster import DevCluster
from devcluster.health import wait_healthy
from devcluster.jobs import parse_events
from tests.integration.writers import missing_keys, write_keys

MakeCluster = Callable[..., DevCluster]
KEYS = 60_000
"""Enough that the first Job's moves last seconds, so the second arrives in the middle."""
JOB_SECONDS = 300.0
"""A bound that stops a hang (each Job alone takes seconds)."""


class RunningJob:
    """A Job process whose output is read as it comes (a full pipe would stall the Job)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def said(self, event: str) -> bool:
        return any(f'"event": "{event}"' in line for line in list(self.lines))

    def end(self) -> tuple[int, list[dict[str, object]]]:
        code = self.process.wait(timeout=JOB_SECONDS)
        self.reader.join(timeout=10)
        return code, parse_events("".join(self.lines))


def outcome(events: list[dict[str, object]]) -> object:
    """The Job's last word on the cluster (the lease's release may be logged after it)."""
    return [e["event"] for e in events if not str(e["event"]).startswith("job_lease")][-1]


def open_or_split(cluster: DevCluster, keys: int) -> list[str]:
    """Slots some master left open, and keys held beyond what a client can read (a slot's keys
    on two nodes): [] when neither."""
    found = []
    held = 0
    for role in cluster.roles():
        if role["role"] != "master":
            continue
        client = cluster.client(role["pod"])
        mine = next(
            line
            for line in client.execute_command("CLUSTER", "NODES").splitlines()
            if "myself" in line
        )
        if "[" in mine:
            found.append(f"{role['pod']} has open slots: {mine.split('[', 1)[1][:60]}")
        held += int(client.dbsize())
    lease_keys = int(cluster.cluster_client().exists(GENERATION_KEY, HOLDER_KEY))
    if held != keys + lease_keys:
        found.append(f"the masters hold {held} keys, {keys + lease_keys} exist")
    return found


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

"""A Job running in the background while a test does something else, and what a day-2 event
may leave behind in the cluster (open slots, a slot's keys on two nodes)."""

from __future__ import annotations

import subprocess
import threading

from bootstrap.lease import GENERATION_KEY, HOLDER_KEY
from devcluster.cluster import DevCluster
from devcluster.jobs import parse_events

JOB_SECONDS = 300.0
"""A bound that stops a hang (a Job moving tens of thousands of keys takes seconds)."""


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

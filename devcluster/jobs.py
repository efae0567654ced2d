"""The bootstrap Job run on devcluster (a DevCluster mixin), its output, and the devcluster's
address range."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from devcluster.state import DNS_PORT

if TYPE_CHECKING:
    from pathlib import Path

    from devcluster.manifests import Manifests
    from devcluster.state import ClusterState, StateDir


@dataclass(frozen=True)
class JobResult:
    returncode: int
    events: list[dict[str, object]]
    """The Job's structlog events, parsed from its JSON lines."""

    def last(self, event: str) -> dict[str, object] | None:
        found = [e for e in self.events if e.get("event") == event]
        return found[-1] if found else None


def parse_events(output: str) -> list[dict[str, object]]:
    events = []
    for line in output.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, Mapping):
            events.append(dict(event))
    return events


OCTETS_ENV = "DEVCLUSTER_OCTETS"
"""Second octets this process's devclusters pick from, as FIRST-LAST (default 16-250). The test
suite gives each pytest-xdist worker its own block, so two workers never race for one range."""


def octets() -> range:
    """The second octets free_octet picks from: DEVCLUSTER_OCTETS, else 16-250."""
    first, _, last = os.environ.get(OCTETS_ENV, "16-250").partition("-")
    return range(int(first), int(last or first) + 1)


def free_octet() -> int:
    """A 127.X.0.0/16 range whose DNS address is free, so devclusters (and tests) don't collide."""
    choices = octets()
    for _ in range(50):
        octet = random.choice(choices)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((f"127.{octet}.255.53", DNS_PORT))
            except OSError:
                continue
        return octet
    raise RuntimeError("no free 127.X.0.0/16 range for a devcluster")


class JobRunner:
    """DevCluster's Job: its environment from the manifests, sized to the devcluster."""

    if TYPE_CHECKING:  # what DevCluster gives this mixin
        dirs: StateDir

        def require(self) -> ClusterState: ...
        @property
        def manifests(self) -> Manifests: ...
        def loopback_env(
            self, settings: dict[str, str], holder: str, run_dir: Path | None = None
        ) -> dict[str, str]: ...

    def job_env(self, **overrides: str) -> dict[str, str]:
        """The Job container's environment from the manifests, sized to this devcluster."""
        state = self.require()
        m = self.manifests
        return {
            **self.loopback_env(
                {**m.job_settings, **m.env(m.job_env, {"metadata.namespace": state.namespace})},
                "job",
            ),
            "CLUSTER_SIZE": str(len(state.pods)),
            "REPLICAS_PER_MASTER": str(state.replicas_per_master),
            **overrides,
        }

    def start_job(self, **overrides: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.manifests.job_command,
            env=self.job_env(**overrides),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def run_job(self, timeout: float = 180.0, **overrides: str) -> JobResult:
        process = self.start_job(**overrides)
        output, _ = process.communicate(timeout=timeout)
        with (self.dirs.root / "job.log").open("a") as log:
            log.write(output)
        return JobResult(process.returncode, parse_events(output))

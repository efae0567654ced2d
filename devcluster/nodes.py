"""Simulated Kubernetes nodes: where the scheduler put each pod, and what happens to a node's pods
when the node is drained (a node-pool upgrade) or dies (a machine lost). A mixin of DevCluster,
kept apart so the pod lifecycle in cluster.py stays readable."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import redis

from clusterkit.io.httpget import http_get
from clusterkit.io.waiting import WaitTimeout, wait_until
from devcluster import placement, processes
from devcluster.servers import server_marker
from devcluster.state import PodRecord

if TYPE_CHECKING:
    from devcluster.manifests import Manifests
    from devcluster.state import ClusterState, StateDir

READY_TIMEOUT_SECONDS = 120.0
"""How long `drain_node` waits for every pod to be ready again."""


def kill_pods(records: Iterable[PodRecord]) -> None:
    """SIGKILL every Redis and sidecar of these pods at once: no hook runs, nothing is saved."""
    targets = [(p.pid, server_marker()) for p in records] + [
        (p.sidecar_pid, "sidecar") for p in records
    ]
    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(lambda target: processes.kill(*target), targets))


class NodeOperations:
    """DevCluster's node-level operations (`drain-node`, `crash-node`, `restore-node`)."""

    if TYPE_CHECKING:  # what DevCluster gives this mixin
        dirs: StateDir

        def require(self) -> ClusterState: ...
        @property
        def manifests(self) -> Manifests: ...
        def sidecar_url(self, pod: PodRecord, path: str) -> str: ...
        def client(self, name: str, timeout: float = 2.0) -> redis.Redis: ...
        def start_pods(self, names: Iterable[str]) -> dict[str, str]: ...
        def stop_pods(self, names: Iterable[str]) -> None: ...
        def sidecar_env(self, pod: PodRecord) -> dict[str, str]: ...
        def roles(self) -> list[dict[str, str]]: ...

    def schedule(self, records: Iterable[PodRecord]) -> None:
        """Give the pods without a node one, as a batch the scheduler places beside the pods
        already placed (devcluster/placement.py). Pods keep their node for life, as a pod
        bound to a local volume does."""
        state = self.require()
        new = [p for p in records if not p.node]
        if not new:
            return
        where = placement.place(
            [p.ordinal for p in new],
            nodes=state.nodes,
            zones=state.zones,
            seed=state.placement_seed,
            placed=[p.node for p in state.pods if p.node],
        )
        for pod in new:
            pod.node, pod.zone = where[pod.ordinal].node, where[pod.ordinal].zone

    def pods_on(self, node: str) -> list[str]:
        """Every pod placed on `node`, whatever its state. Raises KeyError for an unknown node."""
        state = self.require()
        if node not in placement.layout(state.nodes, state.zones):
            last = placement.node_name(state.nodes - 1)
            raise KeyError(f"no node named {node!r}; nodes are devnode-0 .. {last}")
        return [p.name for p in state.pods if p.node == node]

    def unready(self) -> list[str]:
        """Running pods (not crashed) whose readiness probe does not answer 200 (without
        sidecars: whose Redis does not answer PING)."""
        state = self.require()
        path = self.manifests.readiness_path
        found = []
        for pod in state.pods:
            if not pod.running or pod.crashed:
                continue
            if state.sidecars:
                ready = http_get(self.sidecar_url(pod, path))[0] == 200
            else:
                try:
                    ready = bool(self.client(pod.name, 1.0).ping())
                except redis.RedisError:
                    ready = False
            if not ready:
                found.append(pod.name)
        return found

    def wait_ready(self, deadline_seconds: float = READY_TIMEOUT_SECONDS) -> bool:
        """Whether every running pod turned ready within `deadline_seconds`."""
        try:
            wait_until(
                lambda: not self.unready(),
                timeout=deadline_seconds,
                what="every pod to be ready",
                interval=0.2,
            )
        except WaitTimeout:
            return False
        return True

    def drain_node(
        self,
        node: str,
        down_seconds: float = 0.0,
        progress: Callable[[str, str], None] | None = None,
        *,
        ready_timeout: float = READY_TIMEOUT_SECONDS,
    ) -> list[str]:
        """A node-pool upgrade of `node`: its pods stop as the kubelet stops them (preStop hook,
        a master hands over; then SIGTERM), all at once since the node goes away (evictions are
        not paced by the PodDisruptionBudget here), stay down `down_seconds`, come back on the
        same node with their data at new addresses; returns once every pod of the devcluster is
        ready (TimeoutError after `ready_timeout`). `progress(pod, step)` hears each step:
        stopping, started, ready. Returns the drained pods."""
        state = self.require()
        names = [n for n in self.pods_on(node) if state.pod(n).running and not state.pod(n).crashed]
        report(progress, names, "stopping")
        self.stop_pods(names)
        time.sleep(down_seconds)
        self.start_pods(names)
        report(progress, names, "started")
        if not self.wait_ready(ready_timeout):
            raise TimeoutError(
                f"not ready {ready_timeout:.0f}s after draining {node}: {', '.join(self.unready())}"
            )
        report(progress, names, "ready")
        return names

    def crash_node(self, node: str) -> list[str]:
        """`node` dies: every Redis and sidecar on it is SIGKILLed at once (no hook, no save).
        Their DNS records stay published, as a dead node's pods keep theirs until Kubernetes
        deletes the pods; `restore_node` brings them back. Returns the crashed pods."""
        state = self.require()
        records = [state.pod(n) for n in self.pods_on(node)]
        records = [p for p in records if p.running and not p.crashed]
        kill_pods(records)
        for pod in records:
            pod.pid = pod.sidecar_pid = None
            pod.crashed = True
        self.dirs.save(state)
        return [p.name for p in records]

    def restore_node(self, node: str) -> list[str]:
        """The crashed node is back: its pods start again with their data, at new addresses.
        Returns them once their Redis answers (not necessarily ready: see `wait_ready`)."""
        state = self.require()
        names = [n for n in self.pods_on(node) if state.pod(n).crashed]
        self.start_pods(names)
        return names

    def masters_per_node(self) -> Counter[str]:
        """Slot-owning masters on each simulated node."""
        return Counter(
            r["node"] for r in self.roles() if r["role"] == "master" and r["slots"] != "-"
        )

    def masters_spread(self, masters: int = 3) -> bool:
        """`masters` slot-owning masters, one per node."""
        counts = self.masters_per_node()
        return sum(counts.values()) == masters and max(counts.values()) == 1

    def sidecar_status(self, pod: str, *args: str) -> subprocess.CompletedProcess[str]:
        """`kubectl exec POD -c sidecar -- python -m sidecar status ARGS`: run with that pod's
        sidecar environment (its credentials, no API)."""
        return subprocess.run(
            [sys.executable, "-m", "sidecar", "status", *args],
            env=self.sidecar_env(self.require().pod(pod)),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def report(progress: Callable[[str, str], None] | None, names: list[str], step: str) -> None:
    if progress is not None:
        for name in names:
            progress(name, step)

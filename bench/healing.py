"""Healing after a full restart with all-new addresses: our sidecar vs update-node.sh's sed.

Run by hand: `python -m bench.healing --runs 3`. Each run forms a 6-pod devcluster, writes keys,
stops every pod, starts them all again at new addresses (same data), and times from the moment
the last Redis started until the cluster is strictly healthy (every node ok, every link
connected, no fail flags, one slot map, replica links up). The sed variant runs
`sed -i -e "/myself/ s/<ipv4>/${POD_IP}/" nodes.conf` before each Redis starts, as the common
recipe does, on pods without our sidecar. Also: sidecar RSS, and /readyz latency at 50 req/s.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from clusterkit.io.httpget import http_get
from devcluster.cluster import DevCluster
from devcluster.health import wait_healthy
from devcluster.manifests import load as load_manifests
from devcluster.state import PodRecord

IPV4 = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
GIVE_UP_SECONDS = 30.0


def update_node_sed(cluster: DevCluster, pod: PodRecord) -> None:
    """What update-node.sh does: patch the first IPv4 on the myself line, nothing else."""
    conf = cluster.dirs.data_dir(pod.name) / "nodes.conf"
    lines = conf.read_text().splitlines(keepends=True)
    conf.write_text(
        "".join(IPV4.sub(pod.ip, line, count=1) if "myself" in line else line for line in lines)
    )


def heal_once(tool: str, root: Path) -> float | None:
    """Seconds from the last Redis start to strictly healthy; None when not healed in time."""
    cluster = DevCluster(root / f"{tool}-{time.monotonic_ns()}")
    cluster.up(6, 1, sidecars=tool == "sidecar")
    try:
        if cluster.run_job().returncode != 0:
            raise RuntimeError("the Job failed")
        names = [p.name for p in cluster.require().pods]
        cluster.stop_pods(names)
        hook = None if tool == "sidecar" else (lambda pod: update_node_sed(cluster, pod))
        cluster.start_pods(names, before_redis=hook)
        started = time.monotonic()
        problems = wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=GIVE_UP_SECONDS)
        return None if problems else time.monotonic() - started
    finally:
        cluster.down()


def sidecar_figures(
    root: Path, seconds: float = 10.0, rate: int = 50
) -> tuple[float, float, float]:
    """(max sidecar RSS in MB, /readyz p50 ms, p99 ms) on a formed 6-pod cluster."""
    cluster = DevCluster(root / "probe")
    cluster.up(6, 1)
    try:
        cluster.run_job()
        pods = cluster.require().pods
        url = f"http://{pods[0].ip}:{load_manifests().sidecar_port}/readyz"
        latencies = []
        begin = time.monotonic()
        for i in range(int(seconds * rate)):
            time.sleep(max(0.0, begin + i / rate - time.monotonic()))  # a steady 50 req/s
            started = time.monotonic()
            http_get(url)
            latencies.append((time.monotonic() - started) * 1000)
        rss = [rss_mb(p.sidecar_pid) for p in pods if p.sidecar_pid]
        latencies.sort()
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        return max(rss), statistics.median(latencies), p99
    finally:
        cluster.down()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-healing-") as tmp:
        results: dict[str, list[float | None]] = {"sidecar": [], "sed": []}
        for run in range(args.runs):
            for tool in ("sidecar", "sed") if run % 2 == 0 else ("sed", "sidecar"):
                took = heal_once(tool, Path(tmp))
                results[tool].append(took)
                shown = (
                    f"{took:6.2f} s"
                    if took is not None
                    else f"not healed in {GIVE_UP_SECONDS:.0f} s"
                )
                print(f"full restart, new addresses  {tool:8s}  healthy after {shown}", flush=True)
        rss, p50, p99 = sidecar_figures(Path(tmp))
    for tool, runs in results.items():
        healed = [r for r in runs if r is not None]
        median = f"{statistics.median(healed):.2f} s" if healed else "never"
        print(f"{tool:8s} median {median}  ({len(healed)}/{len(runs)} runs healed)")
    print(f"sidecar RSS max {rss:.1f} MB; /readyz at 50 req/s: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

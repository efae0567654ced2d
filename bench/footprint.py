"""The sidecar's footprint against the manifest's limits (100m CPU, 128Mi): calm, during a full
restart's heal, during a replaced pod's rejoin, and the heal held to 100m.

Run by hand: `python -m bench.footprint --pods 30,90`. Per size, one devcluster is formed (1
replica per master, the Job). Reported per sidecar process (read from /proc: utime + stime, and
VmRSS), median and max over the pods:
- calm: CPU seconds per second over `--calm-seconds`, and RSS;
- full restart: every pod stopped (preStop hook) and started again at new addresses with its
  data; the sidecars' CPU from their start until the cluster is strictly healthy, per second,
  and the time that takes;
- rejoin: one pod's volume lost (devcluster wipe), its sidecar's CPU until healthy again;
- throttled: the full restart again with every sidecar held to 100m by a cgroup (v1 `cpu`
  controller, cfs_quota_us 10000 of 100000), as the kubelet holds a container to its limit;
  skipped when this machine gives no writable cgroup.
The anchor is the limit itself: the CPU figures are shown as a share of 100m (0.1 CPU s/s).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from bench.healing import rss_mb
from devcluster.cluster import DevCluster
from devcluster.health import wait_healthy
from devcluster.servers import server_version
from devcluster.state import PodRecord

LIMIT_CPU = 0.1
"""The manifest's sidecar CPU limit (100m), in CPU seconds per second."""
LIMIT_MB = 128.0
CGROUPS = Path("/sys/fs/cgroup/cpu")
HEAL_SECONDS = 300.0
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    """utime + stime of a process, in seconds (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def sidecar_pids(cluster: DevCluster) -> list[int]:
    return [p.sidecar_pid for p in cluster.require().pods if p.sidecar_pid]


def spread(values: Sequence[float]) -> str:
    return f"median {statistics.median(values):.3f}, max {max(values):.3f}" if values else "-"


def share(values: Sequence[float]) -> str:
    """CPU s/s as a share of the limit, median and max."""
    if not values:
        return "-"
    return f"{statistics.median(values) / LIMIT_CPU:.0%} / {max(values) / LIMIT_CPU:.0%} of 100m"


@contextlib.contextmanager
def throttled_sidecars() -> Iterator[list[str] | None]:
    """A `before_redis` hook putting each pod's sidecar into its own 100m cgroup (yields the
    cgroup names made, or None without a writable cgroup); removed afterwards."""
    made: list[str] = []
    if not os.access(CGROUPS, os.W_OK):
        yield None
        return
    try:
        yield made
    finally:
        for name in made:
            with contextlib.suppress(OSError):
                (CGROUPS / name).rmdir()


def throttle(pod: PodRecord, made: list[str]) -> None:
    name = f"bench-sidecar-{os.getpid()}-{pod.name}"
    group = CGROUPS / name
    group.mkdir(exist_ok=True)
    made.append(name)
    (group / "cpu.cfs_period_us").write_text("100000")
    (group / "cpu.cfs_quota_us").write_text(str(int(100000 * LIMIT_CPU)))
    (group / "cgroup.procs").write_text(str(pod.sidecar_pid))


def full_restart(
    cluster: DevCluster, pods: int, made: list[str] | None = None
) -> tuple[float | None, list[float]]:
    """(seconds from the last Redis start to strictly healthy or None, CPU s/s per sidecar)."""
    names = [p.name for p in cluster.require().pods]
    cluster.stop_pods(names)
    hook = None if made is None else (lambda pod: throttle(pod, made))
    began = time.monotonic()
    cluster.start_pods(names, before_redis=hook)
    started = time.monotonic()
    problems = wait_healthy(cluster, masters=pods // 2, replicas_per_master=1, timeout=HEAL_SECONDS)
    ended = time.monotonic()
    rates = [cpu_seconds(pid) / (ended - began) for pid in sidecar_pids(cluster)]
    return (None if problems else round(ended - started, 1)), rates


def one_size(pods: int, root: Path, calm_seconds: float) -> list[str]:
    cluster = DevCluster(root / f"pods-{pods}")
    cluster.up(pods, 1)
    lines: list[str] = []
    try:
        if cluster.run_job(timeout=600).returncode != 0:
            raise RuntimeError("the Job did not form the cluster")
        wait_healthy(cluster, masters=pods // 2, replicas_per_master=1, timeout=HEAL_SECONDS)
        time.sleep(5.0)  # past the formation's aftermath
        pids = sidecar_pids(cluster)
        before = [cpu_seconds(pid) for pid in pids]
        time.sleep(calm_seconds)
        calm = [(cpu_seconds(p) - b) / calm_seconds for p, b in zip(pids, before, strict=True)]
        rss = [rss_mb(pid) for pid in pids]
        lines.append(f"{pods} pods, calm: CPU {share(calm)}; RSS MB {spread(rss)} (limit 128)")
        took, rates = full_restart(cluster, pods)
        rss = [rss_mb(pid) for pid in sidecar_pids(cluster)]
        lines.append(
            f"{pods} pods, full restart: healthy after {took} s; CPU {share(rates)};"
            f" RSS MB {spread(rss)}"
        )
        wiped = cluster.require().pods[0].name
        cluster.wipe([wiped])
        began = time.monotonic()
        problems = wait_healthy(cluster, pods // 2, 1, timeout=HEAL_SECONDS)
        pod = cluster.require().pod(wiped)
        rate = cpu_seconds(pod.sidecar_pid) / (time.monotonic() - began)
        lines.append(
            f"{pods} pods, rejoin of a wiped pod: healthy {'yes' if not problems else 'NO'}"
            f" after {time.monotonic() - began:.1f} s; its sidecar's CPU {share([rate])},"
            f" RSS {rss_mb(pod.sidecar_pid or 0):.1f} MB"
        )
        with throttled_sidecars() as made:
            if made is None:
                lines.append(f"{pods} pods, throttled: no writable cgroup here, skipped")
            else:
                took, rates = full_restart(cluster, pods, made)
                lines.append(
                    f"{pods} pods, full restart, each sidecar held to 100m: healthy after"
                    f" {took} s; CPU {share(rates)}"
                )
    finally:
        cluster.down()
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pods", default="30,90", help="sizes, comma-separated (even numbers)")
    parser.add_argument("--calm-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    print(f"{server_version()}; limits: sidecar {LIMIT_CPU * 1000:.0f}m CPU, {LIMIT_MB:.0f} MB")
    with tempfile.TemporaryDirectory(prefix="bench-footprint-") as tmp:
        for pods in (int(p) for p in args.pods.split(",")):
            for line in one_size(pods, Path(tmp), args.calm_seconds):
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

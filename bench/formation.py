"""Formation time: our Job vs `redis-cli --cluster create`, on the same kind of fresh pods.

Run by hand (not in CI): `make bench` or `python -m bench.formation --sizes 6 30 90 --runs 3`.
For each size and run, in alternating order, both tools get a fresh devcluster whose pods are
aged >= 2.5 s (as pods in Kubernetes are when a Job reaches them); the clock runs from the
tool's start until every node reports cluster_state:ok, polled independently of the tool.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import redis

from devcluster.cluster import DevCluster

POD_AGE_SECONDS = 2.5
POLL_SECONDS = 0.05


def all_ok_after(cluster: DevCluster, process: subprocess.Popen[bytes], limit: float) -> float:
    """Seconds from now until every node says cluster_state:ok (a full sweep confirms it)."""
    start = time.monotonic()
    pods = [p.name for p in cluster.require().pods]
    clients = {name: cluster.client(name, 1.0) for name in pods}
    pending = set(pods)
    while time.monotonic() - start < limit:
        for name in sorted(pending):
            try:
                if clients[name].cluster("info").get("cluster_state") == "ok":
                    pending.discard(name)
            except redis.RedisError:
                pass
        if not pending:
            elapsed = time.monotonic() - start
            if all(clients[n].cluster("info").get("cluster_state") == "ok" for n in pods):
                return elapsed
            pending = set(pods)
        process.poll()
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"not every node ok after {limit:.0f}s")


def start_ours(cluster: DevCluster) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bootstrap"],
        env=cluster.job_env(TIMEOUT_SECONDS="300"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_redis_cli(cluster: DevCluster) -> subprocess.Popen[bytes]:
    state = cluster.require()
    nodes = [f"{p.ip}:{state.port}" for p in state.pods]
    return subprocess.Popen(
        ["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", "1", "--cluster-yes"],
        env={**os.environ, "REDISCLI_AUTH": cluster.password},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def one_run(tool: str, size: int, root: Path) -> tuple[float, float]:
    """(seconds until all nodes ok, seconds until the tool exited)."""
    cluster = DevCluster(root / f"{tool}-{size}-{time.monotonic_ns()}")
    cluster.up(size, 1, sidecars=False)  # formation only: both tools on the same bare pods
    try:
        time.sleep(POD_AGE_SECONDS)
        started = time.monotonic()
        process = start_ours(cluster) if tool == "ours" else start_redis_cli(cluster)
        ok_after = all_ok_after(cluster, process, limit=300)
        process.wait(timeout=300)
        exited = time.monotonic() - started
        if process.returncode != 0:
            raise RuntimeError(f"{tool} exited with {process.returncode} at {size} pods")
        return ok_after, exited
    finally:
        cluster.down()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[6, 30, 90])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)
    results: dict[str, dict[str, list[list[float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-formation-") as tmp:
        for size in args.sizes:
            runs: dict[str, list[list[float]]] = {"ours": [], "redis-cli": []}
            for run in range(args.runs):
                order = ["ours", "redis-cli"] if run % 2 == 0 else ["redis-cli", "ours"]
                for tool in order:
                    ok_after, exited = one_run(tool, size, Path(tmp))
                    runs[tool].append([ok_after, exited])
                    print(
                        f"{size:4d} pods  {tool:9s}  all ok {ok_after:6.2f} s"
                        f"  (tool exited {exited:6.2f} s)",
                        flush=True,
                    )
            results[str(size)] = runs
    print("\npods  ours median  redis-cli median  ratio  (time to every node cluster_state:ok)")
    for size, runs in results.items():
        ours = statistics.median(r[0] for r in runs["ours"])
        theirs = statistics.median(r[0] for r in runs["redis-cli"])
        print(f"{size:>4}  {ours:9.2f} s  {theirs:14.2f} s  {ours / theirs:5.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

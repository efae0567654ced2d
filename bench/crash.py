"""A master's Redis crashes while its sidecar runs (SIGKILL, as an OOM kill does): the sidecar's
crash watch vs Redis alone (CRASH_FAILOVER=false: cluster-node-timeout, 5 s, then an election,
which is what every other tool leaves it to).

Run by hand: `python -m bench.crash --rounds 2`. Per server (Redis 7.0, then Valkey 8.0, where
installed) and mode, each run forms 6 pods (3 masters, 3 replicas, the Job), writes into the
shard of redis-0 with two writers: a direct one (bench.directwriter: what the servers serve)
and redis-py's cluster client (bench.rollout.ShardWriter: what an application sees, with its
own reconnect policy). Then redis-0's Redis is SIGKILLed, and started again with its data once
the shard is served again. Reported: the longest gap between two acknowledged writes (the write
outage), both writers; the acknowledged writes that do not read back afterwards (lost to
asynchronous replication); whether the crashed Redis came back as a replica.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.directwriter import DirectWriter, shard_tags
from bench.rollout import SHARDS, ShardWriter, lost_writes
from clusterkit.io.waiting import WaitTimeout, wait_until
from devcluster.cluster import DevCluster
from devcluster.health import wait_healthy
from devcluster.servers import server_version

MODES = ("crash watch", "Redis alone")
SERVERS = (("redis-server", "redis-cli"), ("valkey-server", "valkey-cli"))
SERVED_SECONDS = 30.0


@dataclass
class Run:
    server: str
    mode: str
    outage: float = 0.0
    """Direct writer: the cluster's own outage for the shard."""
    client_outage: float = 0.0
    """redis-py's cluster client."""
    acknowledged: int = 0
    lost: int = 0
    back_as_replica: bool = False
    healthy: bool = False


def one_run(server: str, mode: str, root: Path, warm_seconds: float) -> Run:
    cluster = DevCluster(root / f"{Path(server).name}-{mode.replace(' ', '-')}")
    env = {} if mode == "crash watch" else {"CRASH_FAILOVER": "false"}
    cluster.up(6, 1, sidecar_env=env)
    run = Run(short_version(), mode)
    try:
        if cluster.run_job().returncode != 0:
            raise RuntimeError("the Job did not form the cluster")
        port = cluster.require().port
        tags = shard_tags(*SHARDS["redis-0"])
        direct = DirectWriter(
            next(tags),
            lambda: [(p.ip, port) for p in cluster.require().pods if p.pid is not None],
            cluster.credentials.cluster_client_options(),
        )
        app = ShardWriter(next(tags), cluster.cluster_client)
        threads = [direct.start(), start(app)]
        time.sleep(warm_seconds)  # the sidecars' loops have armed their watches
        crashed = time.monotonic()
        cluster.kill_redis("redis-0")
        with contextlib.suppress(WaitTimeout):  # never served again: the figures say so
            wait_until(
                lambda: direct.last_ack > crashed + 0.5 and app.last_ack > crashed,
                timeout=SERVED_SECONDS,
                what="the shard to be served again",
                interval=0.05,
            )
        time.sleep(1.0)
        cluster.start_redis("redis-0")
        run.healthy = not wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=60)
        run.back_as_replica = any(
            r["pod"] == "redis-0" and r["role"] == "replica" for r in cluster.roles()
        )
        direct.stop.set()
        app.stop.set()
        for thread in threads:
            thread.join(timeout=30)
        run.outage = round(direct.longest_gap, 3)
        run.client_outage = round(app.longest_gap, 3)
        reader = cluster.cluster_client()
        run.acknowledged = len(direct.acknowledged) + len(app.acknowledged)
        run.lost = lost_writes(reader, direct.acknowledged) + lost_writes(reader, app.acknowledged)
    finally:
        cluster.down()
    return run


def start(writer: ShardWriter) -> threading.Thread:
    thread = threading.Thread(target=writer.run, daemon=True)
    thread.start()
    return thread


def short_version() -> str:
    """`Redis 7.0.15` from `Redis server v=7.0.15 sha=...`."""
    words = server_version().split()
    version = next((w[2:] for w in words if w.startswith("v=")), "?")
    return f"{words[0] if words else '?'} {version}"


def describe(run: Run) -> str:
    return (
        f"{run.server:14s} {run.mode:>12s}: outage {run.outage:.2f} s (redis-py client"
        f" {run.client_outage:.2f} s); acknowledged {run.acknowledged}, lost {run.lost};"
        f" back as a replica: {'yes' if run.back_as_replica else 'NO'}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warm-seconds", type=float, default=3.0)
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-crash-") as tmp:
        for server, cli in SERVERS:
            if shutil.which(server) is None:
                print(f"{server} not installed: skipped")
                continue
            os.environ["REDIS_SERVER_BIN"], os.environ["REDIS_CLI_BIN"] = server, cli
            for index in range(args.rounds):
                for mode in MODES if index % 2 == 0 else reversed(MODES):
                    run = one_run(server, mode, Path(tmp) / str(index), args.warm_seconds)
                    runs.append(run)
                    print(describe(run), flush=True)
    print(f"\n{'server':14s} {'mode':>12s}  outage (median)  redis-py client  lost/acknowledged")
    for server in dict.fromkeys(r.server for r in runs):
        for mode in MODES:
            mine = [r for r in runs if r.server == server and r.mode == mode]
            outage = statistics.median(r.outage for r in mine)
            client = statistics.median(r.client_outage for r in mine)
            print(
                f"{server:14s} {mode:>12s}  {outage:13.2f} s  {client:13.2f} s"
                f"  {sum(r.lost for r in mine)}/{sum(r.acknowledged for r in mine)}"
            )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=2))
    return 1 if any(not (r.healthy and r.back_as_replica) for r in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())

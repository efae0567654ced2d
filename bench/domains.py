"""A node-pool upgrade, then the loss of a node: with the sidecars' layout repair vs without it
(DRIFT_MAX_STEPS_PER_HOUR=0, which is every tool a user would otherwise run: none restores the
roles).

Run by hand: `python -m bench.domains`. Each run forms 6 pods on 3 simulated nodes (3 masters,
3 replicas, the Job) and starts one writer per shard (bench.rollout's ShardWriter). It drains
node 0, 1 and 2 in turn as a node-pool upgrade does (preStop hook, back with its data), which
leaves two masters on one node; then it waits up to `--safe-seconds` for one master per node
(the sidecars' repair after DRIFT_QUIET_SECONDS, here `--quiet-seconds`), and crashes the node
holding the most masters (SIGKILL, no hook). Reported:
- drift -> safe: seconds from the end of the last drain to one master per node;
- repair outage: the longest gap between two acknowledged writes of any shard while the repair
  ran, and the writes acknowledged before the crash that do not read back;
- served after crash: seconds until every shard acknowledges a write again (one failover is
  cluster-node-timeout 5 s plus an election), on a plain connection to the owner
  (bench.directwriter) and with redis-py's cluster client (which waits at least 1 s between
  two topology refreshes);
- lost: acknowledged writes that do not read back after the node returns (the crashed masters'
  asynchronous replication).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import redis
from redis.exceptions import RedisClusterException

from bench.directwriter import DirectWriter, shard_tags
from bench.rollout import SHARDS, ShardWriter, lost_writes, shard_tag
from clusterkit.io.waiting import Deadline, WaitTimeout, wait_until
from devcluster.cluster import DevCluster
from devcluster.health import wait_healthy
from devcluster.placement import node_name
from devcluster.servers import server_version

MODES = ("with repair", "without")
POLL_SECONDS = 0.1


@dataclass
class Run:
    mode: str
    drift_to_safe: float | None = None
    repair_outage: float = 0.0
    lost_in_repair: int = 0
    served_after_crash: float | None = None
    """Until redis-py's cluster client writes to every shard again."""
    served_direct: float | None = None
    """Until every shard acknowledges a write again on a plain connection (the cluster's own
    figure: redis-py's client adds its topology refresh interval)."""
    failed: int = 0
    acknowledged: int = 0
    lost: int = 0
    masters_before_crash: dict[str, int] = field(default_factory=dict)
    healthy: list[str] = field(default_factory=list)


def first_time(check: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until `check()` holds (a pod down mid-poll is "not yet"), or None."""
    deadline = Deadline(timeout)
    try:
        wait_until(
            check,
            timeout=deadline,
            what="the figure",
            interval=POLL_SECONDS,
            retry_on=(redis.RedisError, RedisClusterException, ValueError),
        )
    except WaitTimeout:
        return None
    return round(deadline.elapsed(), 1)


def one_run(mode: str, root: Path, args: argparse.Namespace) -> Run:
    env = {"DRIFT_QUIET_SECONDS": str(args.quiet_seconds), "DRIFT_CHECK_SECONDS": "2"}
    if mode == "without":
        env["DRIFT_MAX_STEPS_PER_HOUR"] = "0"
    cluster = DevCluster(root / mode.replace(" ", "-"))
    cluster.up(6, 1, nodes=3, sidecar_env=env)
    run = Run(mode)
    try:
        if cluster.run_job().returncode != 0:
            raise RuntimeError("the Job did not form the cluster")
        writers = [ShardWriter(shard_tag(*s), cluster.cluster_client) for s in SHARDS.values()]
        threads = [threading.Thread(target=w.run, daemon=True) for w in writers]
        for thread in threads:
            thread.start()
        port = cluster.require().port
        direct = [
            DirectWriter(
                next(shard_tags(*s)),
                lambda: [(p.ip, port) for p in cluster.require().pods if p.pid is not None],
                cluster.credentials.cluster_client_options(),
            )
            for s in SHARDS.values()
        ]
        threads += [d.start() for d in direct]
        for node in range(3):
            cluster.drain_node(node_name(node))
        for writer in writers:
            writer.longest_gap = 0.0  # the drains' own handovers are bench.rollout's figure
        run.drift_to_safe = first_time(
            lambda: max(cluster.masters_per_node().values()) == 1, args.safe_seconds
        )
        time.sleep(2.0)
        run.repair_outage = round(max(w.longest_gap for w in writers), 3)
        reader = cluster.cluster_client()
        run.lost_in_repair = sum(lost_writes(reader, dict(w.acknowledged)) for w in writers)
        run.masters_before_crash = dict(cluster.masters_per_node())
        crowded = cluster.masters_per_node().most_common(1)[0][0]
        counts = [len(w.acknowledged) for w in writers]
        crashed = time.monotonic()
        cluster.crash_node(crowded)
        run.served_after_crash = first_time(
            lambda: all(len(w.acknowledged) > c + 1 for w, c in zip(writers, counts, strict=True)),
            args.served_seconds,
        )
        with contextlib.suppress(WaitTimeout):
            wait_until(
                lambda: all(d.last_ack > crashed + 0.5 for d in direct),
                timeout=Deadline(args.served_seconds),
                what="every shard served (direct)",
                interval=POLL_SECONDS,
            )
        # The longest gap of a direct writer spans the crash: its end is the shard served again.
        ends = [d.gap_started + d.longest_gap - crashed for d in direct]
        run.served_direct = round(max(ends), 1) if min(ends) > 0 else None
        cluster.restore_node(crowded)
        run.healthy = wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=120)
        time.sleep(1.0)
        for stop in [w.stop for w in writers] + [d.stop for d in direct]:
            stop.set()
        for thread in threads:
            thread.join(timeout=30)
        reader = cluster.cluster_client()
        run.failed = sum(w.failed for w in writers)
        run.acknowledged = sum(len(w.acknowledged) for w in writers)
        run.lost = sum(lost_writes(reader, w.acknowledged) for w in writers)
        run.lost += sum(lost_writes(reader, d.acknowledged) for d in direct)
        run.acknowledged += sum(len(d.acknowledged) for d in direct)
    finally:
        cluster.down()
    return run


def seconds(value: float | None, bound: float) -> str:
    return f"{value:.1f} s" if value is not None else f"never (>{bound:.0f} s)"


def describe(run: Run, args: argparse.Namespace) -> str:
    return (
        f"{run.mode:>11s}: drift -> safe {seconds(run.drift_to_safe, args.safe_seconds)};"
        f" repair: longest write gap {run.repair_outage:.2f} s, lost {run.lost_in_repair};"
        f" masters per node before the crash {run.masters_before_crash};"
        f" every shard served after the crash"
        f" {seconds(run.served_direct, args.served_seconds)}"
        f" (redis-py client {seconds(run.served_after_crash, args.served_seconds)});"
        f" failed writes {run.failed}; acknowledged {run.acknowledged}, lost {run.lost};"
        f" healthy after the node returned: {'yes' if not run.healthy else run.healthy}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--quiet-seconds", type=float, default=10.0)
    parser.add_argument("--safe-seconds", type=float, default=90.0)
    parser.add_argument("--served-seconds", type=float, default=60.0)
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)
    print(f"{server_version()}; DRIFT_QUIET_SECONDS={args.quiet_seconds:.0f}")
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-domains-") as tmp:
        for index in range(args.rounds):
            for mode in MODES if index % 2 == 0 else reversed(MODES):
                run = one_run(mode, Path(tmp), args)
                runs.append(run)
                print(describe(run, args), flush=True)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=2))
    mine = [r for r in runs if r.mode == "with repair"]
    return (
        1 if any(r.lost_in_repair or r.healthy or r.served_after_crash is None for r in mine) else 0
    )


if __name__ == "__main__":
    raise SystemExit(main())

"""A rolling update under writes: with the preStop handover vs without it (as before).

Run by hand: `python -m bench.rollout --rounds 2`. Each run forms a 6-pod devcluster (3 masters
+ 3 replicas, the Job), starts one writer thread per shard (a cluster client SETting new keys
with a hash tag in that shard's slots, counting acknowledged and failed writes), then restarts
every pod as a StatefulSet rolling update does (`devcluster.rollout`: highest ordinal first,
each pod down `--down-seconds`, as a rescheduled pod is, back at a new address, the next one
once it has been ready for minReadySeconds). "with hook": each pod stopped as the kubelet does,
the preStop hook first (a master hands over), then SIGTERM; "without": SIGTERM only, as before
the hook existed (a master's replica takes over only after cluster-node-timeout and an
election). Per shard it reports the longest time between two acknowledged writes (the write
outage), and the failed writes; afterwards every acknowledged write is read back.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import redis
from redis.crc import key_slot
from redis.exceptions import RedisClusterException

from devcluster.cluster import DevCluster
from devcluster.health import wait_healthy
from devcluster.rollout import rollout
from devcluster.servers import server_version

MODES = ("with hook", "without")
SHARDS = {"redis-0": (0, 5460), "redis-1": (5461, 10922), "redis-2": (10923, 16383)}
"""Where the Job puts the slots of a fresh 6-pod cluster."""
WRITES_MAX = 1_000_000
"""Bound on each writer's loop (it stops when the rollout ends, long before)."""
WRITE_PAUSE_SECONDS = 0.005
"""Between writes: outages are measured to a few ms, and reading every write back stays short."""


@dataclass
class ShardWriter:
    """One thread writing keys `{tag}:n` into one shard; the longest gap between acks."""

    tag: str
    connect: Callable[[], redis.RedisCluster]
    """A new cluster client at the pods' current addresses (every pod moves in a rollout)."""
    acknowledged: dict[str, str] = field(default_factory=dict)
    failed: int = 0
    longest_gap: float = 0.0
    last_ack: float = 0.0
    """When the last write was acknowledged (time.monotonic)."""
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        last = time.monotonic()
        client = self.connect()
        for n in range(WRITES_MAX):
            if self.stop.is_set():
                return
            key = f"{self.tag}:{n}"
            try:
                client.set(key, str(n))
            except (redis.RedisError, RedisClusterException, AttributeError):
                # AttributeError: redis-py's cluster client can trip over its slot cache while
                # it refreshes; the write was not acknowledged either way. A client that lost
                # every node it knew is made again from the current addresses.
                self.failed += 1
                time.sleep(0.01)
                with contextlib.suppress(redis.RedisError, RedisClusterException):
                    client = self.connect()
                continue
            now = time.monotonic()
            self.longest_gap = max(self.longest_gap, now - last)
            last = self.last_ack = now
            self.acknowledged[key] = str(n)
            time.sleep(WRITE_PAUSE_SECONDS)


def shard_tag(first: int, last: int) -> str:
    return next(
        f"{{r{n}}}" for n in range(100_000) if first <= key_slot(f"{{r{n}}}".encode()) <= last
    )


@dataclass
class Run:
    mode: str
    seconds: float = 0.0
    longest_outage: dict[str, float] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    acknowledged: int = 0
    lost: int = 0
    healthy: list[str] = field(default_factory=list)


def one_run(mode: str, root: Path, down_seconds: float) -> Run:
    cluster = DevCluster(root / mode.replace(" ", "-"))
    # "without" is the cluster before the hook and the crash watch: a pod stopped without its
    # hook is a Redis gone, which the crash watch would fail over at once.
    cluster.up(6, 1, sidecar_env=None if mode == "with hook" else {"CRASH_FAILOVER": "false"})
    run = Run(mode)
    try:
        if cluster.run_job().returncode != 0:
            raise RuntimeError("the Job did not form the cluster")
        writers = [
            ShardWriter(shard_tag(*slots), cluster.cluster_client) for slots in SHARDS.values()
        ]
        threads = [threading.Thread(target=w.run, daemon=True) for w in writers]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        started = time.monotonic()
        rollout(cluster, down_seconds, prestop=mode == "with hook")
        run.seconds = round(time.monotonic() - started, 1)
        for writer in writers:
            writer.stop.set()
        for thread in threads:
            thread.join(timeout=30)
        run.healthy = wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=60)
        reader = cluster.cluster_client()
        for shard, writer in zip(SHARDS, writers, strict=True):
            run.longest_outage[shard] = round(writer.longest_gap, 3)
            run.failed[shard] = writer.failed
            run.acknowledged += len(writer.acknowledged)
            run.lost += lost_writes(reader, writer.acknowledged)
    finally:
        cluster.down()
    return run


def lost_writes(reader: redis.RedisCluster, acknowledged: dict[str, str]) -> int:
    """Acknowledged writes not read back (one shard per writer: MGET in batches)."""
    keys = list(acknowledged)
    lost = 0
    for start in range(0, len(keys), 500):
        batch = keys[start : start + 500]
        values = reader.mget(batch)
        lost += sum(1 for k, v in zip(batch, values, strict=True) if v != acknowledged[k])
    return lost


def describe(run: Run) -> str:
    outages = ", ".join(f"{s} {g:.2f} s" for s, g in run.longest_outage.items())
    return (
        f"{run.mode:>9s}: rollout {run.seconds:.1f} s; longest write outage per shard: {outages};"
        f" failed writes {sum(run.failed.values())}; acknowledged {run.acknowledged}, lost"
        f" {run.lost}; healthy after: {'yes' if not run.healthy else run.healthy}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--down-seconds", type=float, default=6.0)
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)
    print(f"{server_version()}; each pod down {args.down_seconds:.0f} s")
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-rollout-") as tmp:
        for index in range(args.rounds):
            for mode in MODES if index % 2 == 0 else reversed(MODES):
                run = one_run(mode, Path(tmp), args.down_seconds)
                runs.append(run)
                print(describe(run), flush=True)
    print(f"\n{'':>9s}  {'longest outage, any shard (median of runs)':>44s}  failed  lost")
    for mode in MODES:
        mine = [r for r in runs if r.mode == mode]
        worst = statistics.median(max(r.longest_outage.values()) for r in mine)
        failed = sum(sum(r.failed.values()) for r in mine)
        lost = sum(r.lost for r in mine)
        print(f"{mode:>9s}  {worst:>42.2f} s  {failed:>6d}  {lost:>4d}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=2))
    return 1 if any(r.lost or r.healthy for r in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())

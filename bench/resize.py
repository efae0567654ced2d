"""Scale out 6 -> 8 pods holding N keys, under writes: our Job vs the redis-cli recipe.

Run by hand: `python -m bench.resize --keys 1000000 --rounds 2`. Each run forms a 6-pod
devcluster (3 masters + 3 replicas, the Job), writes `--keys` keys `k:{i}` (100-byte values,
MSET per slot, pipelined per master), starts redis-6 and redis-7 (`DevCluster.add_pods`) and a
writer thread (a cluster client SETting new keys `w:{n}`, counting acknowledged and failed
writes), then times the resize:

- ours: the Job with CLUSTER_SIZE=8 (meets the new pods, moves slots with their keys until the
  4 masters are balanced, attaches redis-7 to redis-6); ends when the Job exits;
- redis-cli: `--cluster add-node redis-6 redis-0`, once redis-6 is known `--cluster add-node
  redis-7 redis-0 --cluster-slave --cluster-master-id <redis-6>`, once every node knows all 8
  `--cluster rebalance redis-0 --cluster-use-empty-masters`; ends when rebalance exits.

Then the writer stops, the cluster must become strictly healthy (4 masters, 1 replica each),
every master must own 4096 slots within 1%, and every key written before and every write the
writer saw acknowledged is read back.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import redis
from redis.crc import key_slot

from bench.replaced import ANSI
from clusterkit.io.waiting import Deadline, wait_until
from devcluster.cluster import DevCluster
from devcluster.health import views, wait_healthy
from devcluster.servers import cli_bin, server_version

PIPELINE = 50
"""MSET / MGET commands (one slot each) per round trip."""
WRITER_MAX = 2_000_000
WRITER_SECONDS = 1800.0


@dataclass
class Run:
    tool: str
    keys: int
    seconds: float | None = None
    exit_code: int | None = None
    healthy: list[str] = field(default_factory=list)
    """Problems left after the resize ([] = strictly healthy)."""
    slots: dict[str, int] = field(default_factory=dict)
    balanced: bool = False
    lost: int = -1
    """Keys written before the resize that read back missing or wrong."""
    writer_acked: int = 0
    writer_failed: int = 0
    writer_lost: int = -1
    samples: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def value(key: str) -> str:
    return key.ljust(100, "v")


def owners(cluster: DevCluster) -> list[str]:
    """The pod owning each slot, as redis-0 sees it."""
    state = cluster.require()
    by_ip = {p.ip: p.name for p in state.pods}
    table = [""] * 16384
    for node in views(cluster)["redis-0"]:
        if node.is_master:
            for r in node.slots:
                for slot in r.slots():
                    table[slot] = by_ip[node.address.ip]
    return table


def by_slot(keys: Iterable[str]) -> dict[int, list[str]]:
    grouped: dict[int, list[str]] = defaultdict(list)
    for key in keys:
        grouped[key_slot(key.encode())].append(key)
    return grouped


def per_pod(cluster: DevCluster, grouped: dict[int, list[str]]) -> dict[str, list[list[str]]]:
    table = owners(cluster)
    pods: dict[str, list[list[str]]] = defaultdict(list)
    for slot, keys in grouped.items():
        pods[table[slot]].append(keys)
    return pods


def write_keys(cluster: DevCluster, count: int) -> None:
    for pod, groups in per_pod(cluster, by_slot(f"k:{{{i}}}" for i in range(count))).items():
        client = cluster.client(pod, 30.0)
        for first in range(0, len(groups), PIPELINE):
            pipe = client.pipeline(transaction=False)
            for keys in groups[first : first + PIPELINE]:
                pipe.mset({k: value(k) for k in keys})
            pipe.execute()


def wrong_keys(cluster: DevCluster, keys: Iterable[str]) -> list[str]:
    wrong: list[str] = []
    for pod, groups in per_pod(cluster, by_slot(keys)).items():
        client = cluster.client(pod, 30.0)
        for first in range(0, len(groups), PIPELINE):
            chunk = groups[first : first + PIPELINE]
            pipe = client.pipeline(transaction=False)
            for keys_ in chunk:
                pipe.mget(keys_)
            for keys_, values in zip(chunk, pipe.execute(), strict=True):
                wrong += [k for k, v in zip(keys_, values, strict=True) if v != value(k)]
    return wrong


class Writer(threading.Thread):
    """SETs new keys through a cluster client until stopped (bounded in count and time)."""

    def __init__(self, cluster: DevCluster) -> None:
        super().__init__(daemon=True)
        self.client = cluster.cluster_client()
        self.stop = threading.Event()
        self.acked: list[str] = []
        self.failed = 0
        self.errors: dict[str, int] = defaultdict(int)

    def run(self) -> None:
        deadline = Deadline(WRITER_SECONDS)
        for n in range(WRITER_MAX):
            if self.stop.is_set() or deadline.expired:
                return
            key = f"w:{{{n}}}"
            try:
                self.client.set(key, value(key))
                self.acked.append(key)
            # AttributeError: redis-py's cluster client can trip over its own slot cache while it
            # refreshes ('NoneType' object has no attribute 'redis_connection'); a failed write
            # like any other, and the writer goes on.
            except (redis.RedisError, OSError, AttributeError) as exc:
                self.failed += 1
                self.errors[type(exc).__name__] += 1
                time.sleep(0.01)


def cli(cluster: DevCluster, timeout: float, *args: str) -> tuple[int, str]:
    """redis-cli as a script runs it; the password in REDISCLI_AUTH, never on the command line."""
    done = subprocess.run(
        [cli_bin(), *args],
        env={**os.environ, "REDISCLI_AUTH": cluster.password},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, ANSI.sub("", done.stdout + done.stderr)


def known_by_all(cluster: DevCluster, count: int) -> bool:
    """The first `count` pods all know each other."""
    members = [f"redis-{i}" for i in range(count)]
    seen = views(cluster)
    return all(len(seen[pod]) == count for pod in members)


def redis_cli_resize(cluster: DevCluster, timeout: float) -> tuple[int, list[str]]:
    state = cluster.require()
    port = state.port
    addr = {p.name: f"{p.ip}:{port}" for p in state.pods}
    notes: list[str] = []

    def step(*args: str) -> int:
        code, out = cli(cluster, timeout, "--cluster", *args)
        notes.extend(f"{args[0]}: {x}" for x in out.splitlines() if "ERR" in x or "[WARN" in x)
        if code != 0:
            notes.append(f"{args[0]} exited {code}: {out.strip().splitlines()[-3:]}")
        return code

    if code := step("add-node", addr["redis-6"], addr["redis-0"]):
        return code, notes
    redis6 = cluster.client("redis-6")
    new_id = str(redis6.execute_command("CLUSTER", "MYID"))
    wait_until(
        lambda: known_by_all(cluster, 7) or None, timeout=60.0, what="redis-6 known", interval=0.05
    )
    replica_of = ("--cluster-slave", "--cluster-master-id", new_id)
    if code := step("add-node", addr["redis-7"], addr["redis-0"], *replica_of):
        return code, notes
    wait_until(
        lambda: known_by_all(cluster, 8) or None, timeout=60.0, what="8 nodes known", interval=0.05
    )
    rebalance = ("--cluster-use-empty-masters", "--cluster-yes")
    return step("rebalance", addr["redis-0"], *rebalance), notes


def parallelism_of(tool: str) -> int | None:
    """`ours x2` -> 2 (the Job's MOVE_PARALLELISM); redis-cli -> None."""
    return int(tool.split("x")[1]) if tool.startswith("ours x") else None


def one_run(tool: str, keys: int, *, root: Path, timeout: float) -> Run:
    run = Run(tool, keys)
    parallelism = parallelism_of(tool)
    cluster = DevCluster(root / f"{tool.replace(' ', '-')}-{keys}-{time.monotonic_ns()}")
    cluster.up(6, 1, sidecars=parallelism is not None)
    writer: Writer | None = None
    try:
        if cluster.run_job().returncode != 0:
            raise RuntimeError("the Job failed to form the cluster")
        t0 = time.monotonic()
        write_keys(cluster, keys)
        run.notes.append(f"wrote {keys} keys in {time.monotonic() - t0:.1f} s")
        cluster.add_pods(2)
        writer = Writer(cluster)
        writer.start()
        start = time.monotonic()
        if parallelism is not None:
            job = cluster.run_job(timeout=timeout, MOVE_PARALLELISM=str(parallelism))
            run.exit_code = job.returncode
        else:
            run.exit_code, notes = redis_cli_resize(cluster, timeout)
            run.notes += notes
        run.seconds = time.monotonic() - start
        writer.stop.set()
        writer.join(timeout=30.0)
        run.writer_acked, run.writer_failed = len(writer.acked), writer.failed
        if writer.errors:
            run.notes.append(f"writer errors: {dict(writer.errors)}")
        run.healthy = wait_healthy(cluster, masters=4, replicas_per_master=1, timeout=60.0)
        table = owners(cluster)
        run.slots = {pod: table.count(pod) for pod in sorted(set(table))}
        run.balanced = len(run.slots) == 4 and all(
            abs(n - 4096) <= 4096 * 0.01 for n in run.slots.values()
        )
        lost = wrong_keys(cluster, (f"k:{{{i}}}" for i in range(keys)))
        lost_writes = wrong_keys(cluster, writer.acked)
        run.lost, run.writer_lost = len(lost), len(lost_writes)
        run.samples = lost[:5] + lost_writes[:5]
        return run
    finally:
        if writer is not None:
            writer.stop.set()
            writer.join(timeout=30.0)
        cluster.down()


def figures_of(runs: Sequence[Run]) -> tuple[float | None, float | None]:
    """(median resize seconds, median writes/s the writer got during it); None if a run never
    ended."""
    done = [r for r in runs if r.seconds]
    if not runs or len(done) < len(runs):
        return None, None
    return (
        statistics.median(r.seconds or 0.0 for r in done),
        statistics.median(r.writer_acked / (r.seconds or 1.0) for r in done),
    )


def describe(run: Run) -> str:
    took = f"{run.seconds:7.1f} s" if run.seconds is not None else "   never"
    text = (
        f"{run.tool:9s} {run.keys:>8d} keys  {took}  exit {run.exit_code}  slots {run.slots}"
        f"  writer acked {run.writer_acked} failed {run.writer_failed}"
    )
    if run.lost or run.writer_lost:
        text += f"  !!! LOST: {run.lost} keys, {run.writer_lost} acked writes"
    if not run.balanced:
        text += "  !!! NOT BALANCED"
    return text + "".join(f"\n    {x}" for x in run.healthy + run.notes + run.samples)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per resize")
    parser.add_argument(
        "--parallelism",
        default="4,1",
        help="the Job's MOVE_PARALLELISM values to run, comma-separated (each against redis-cli)",
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)
    tools = [f"ours x{int(p)}" for p in args.parallelism.split(",")] + ["redis-cli"]
    print(f"{server_version()}; {cli_bin()}; recipe timed as a script runs it (no think time)")
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-resize-") as tmp:
        for index in range(args.rounds):
            for tool in tools if index % 2 == 0 else reversed(tools):
                run = one_run(tool, args.keys, root=Path(tmp), timeout=args.timeout)
                runs.append(run)
                print(describe(run), flush=True)
    print(
        f"\n{'keys':>8s}  {'tool':>9s}  {'resize (s)':>10s}  {'x redis-cli':>11s}"
        f"  {'writes/s':>8s}  {'x redis-cli':>11s}  failed"
    )
    figures = {tool: figures_of([r for r in runs if r.tool == tool]) for tool in tools}
    anchor_seconds, anchor_rate = figures["redis-cli"]
    for tool, (took, rate) in figures.items():
        ratio = f"{took / anchor_seconds:.2f}" if took and anchor_seconds else "-"
        rate_ratio = f"{rate / anchor_rate:.2f}" if rate and anchor_rate else "-"
        failed = sum(r.writer_failed for r in runs if r.tool == tool)
        shown = f"{took:.1f}" if took is not None else "-"
        print(
            f"{args.keys:>8d}  {tool:>9s}  {shown:>10s}  {ratio:>11s}  {rate or 0:>8.0f}"
            f"  {rate_ratio:>11s}  {failed}"
        )
    bad = [
        r
        for r in runs
        if r.exit_code != 0 or r.healthy or not r.balanced or r.lost or r.writer_lost
    ]
    if bad:
        print(f"\n!!! {len(bad)} run(s) failed, were unhealthy or unbalanced, or lost keys")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=2))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

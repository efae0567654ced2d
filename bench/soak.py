"""A seeded random soak: day-2 events one after another on one devcluster, writers on every
shard throughout, every key read back after each event.

Run by hand: `python -m bench.soak --seed 1 --events 8`. It forms 6 pods (3 masters + 3
replicas, the Job), writes `--keys` keys, starts one writer per shard (bench.rollout), then
draws each event from the seed: a pod stopped as the kubelet does and started again, a pod
crashed (SIGKILL, nothing saved) and started again, a pod whose volume is lost, every pod
restarted at once at new addresses, a rolling update, a resize (6 -> 8 or 8 -> 6 pods, the Job).
After each event it reports the seconds until the cluster is healthy again (every master
serving with its replica, one slot map) and the keys written before that are not read back
(must be 0). At the end: the writers' acknowledged writes lost, which only a crash may cost
(Redis replicates asynchronously), reported apart. The same seed draws the same events.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.rollout import SHARDS, ShardWriter, lost_writes, shard_tag
from devcluster.cluster import DevCluster
from devcluster.health import wait_healthy
from devcluster.rollout import rollout
from devcluster.servers import server_version

EVENTS = ("stop", "crash", "lost volume", "full restart", "rollout", "resize")
HEALTHY_SECONDS = 180.0
"""A bound per event that stops a hang (each heals in seconds)."""
JOB_SECONDS = 300.0


@dataclass
class Outcome:
    event: str
    pod: str
    seconds: float
    keys_lost: int
    unhealthy: list[str]


def apply_event(cluster: DevCluster, event: str, rng: random.Random) -> str:
    """Carry out one event; the pod it hit ("" for all)."""
    pods = [p.name for p in cluster.require().pods]
    pod = rng.choice(pods)
    if event == "stop":
        cluster.restart([pod])
    elif event == "crash":
        cluster.stop_pods([pod], crash=True)
        cluster.start_pods([pod])
    elif event == "lost volume":
        cluster.wipe([pod])
    elif event == "full restart":
        cluster.stop_pods(pods, crash=True)
        cluster.start_pods(pods)
        pod = ""
    elif event == "rollout":
        rollout(cluster)
        pod = ""
    else:
        pod = resize(cluster, len(pods))
    return pod


def resize(cluster: DevCluster, size: int) -> str:
    if size == 6:
        cluster.add_pods(2)
        result = cluster.run_job(timeout=JOB_SECONDS)
        what = "6 -> 8"
    else:
        result = cluster.run_job(timeout=JOB_SECONDS, CLUSTER_SIZE="6")
        if result.returncode == 0:
            cluster.remove_pods(2)
        what = "8 -> 6"
    if result.returncode != 0:
        raise RuntimeError(f"the Job of the resize {what} exited {result.returncode}")
    return what


def soak(root: Path, seed: int, events: int, keys: int) -> tuple[list[Outcome], int, int]:
    """(per event outcomes, acknowledged writes, of which lost)."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible draw of events, no secret
    cluster = DevCluster(root / f"soak-{seed}")
    cluster.up(6, 1)
    try:
        if cluster.run_job().returncode != 0:
            raise RuntimeError("the Job did not form the cluster")
        client = cluster.cluster_client()
        before = {f"soak:{i}": str(i) for i in range(keys)}
        pipe = client.pipeline(transaction=False)
        for key, value in before.items():
            pipe.set(key, value)
        pipe.execute()
        writers = [ShardWriter(shard_tag(*s), cluster.cluster_client) for s in SHARDS.values()]
        threads = [threading.Thread(target=w.run, daemon=True) for w in writers]
        for thread in threads:
            thread.start()
        outcomes = []
        for _ in range(events):
            event = rng.choice(EVENTS)
            started = time.monotonic()
            pod = apply_event(cluster, event, rng)
            masters = len(cluster.require().pods) // 2
            unhealthy = wait_healthy(
                cluster, masters=masters, replicas_per_master=1, timeout=HEALTHY_SECONDS
            )
            seconds = round(time.monotonic() - started, 1)
            lost = keys_lost(cluster, before)
            outcomes.append(Outcome(event, pod, seconds, lost, unhealthy))
            print(describe(outcomes[-1]), flush=True)
        for writer in writers:
            writer.stop.set()
        for thread in threads:
            thread.join(timeout=30)
        reader = cluster.cluster_client()
        acknowledged = sum(len(w.acknowledged) for w in writers)
        lost = sum(lost_writes(reader, w.acknowledged) for w in writers)
        return outcomes, acknowledged, lost
    finally:
        cluster.down()


def keys_lost(cluster: DevCluster, keys: dict[str, str]) -> int:
    """Keys (of any slot) not read back with their value: GETs in cluster pipelines."""
    client = cluster.cluster_client()
    items = list(keys.items())
    lost = 0
    for start in range(0, len(items), 1000):
        batch = items[start : start + 1000]
        pipe = client.pipeline(transaction=False)
        for key, _ in batch:
            pipe.get(key)
        values = pipe.execute()
        lost += sum(1 for (_, want), got in zip(batch, values, strict=True) if got != want)
    return lost


def describe(outcome: Outcome) -> str:
    health = "healthy" if not outcome.unhealthy else f"NOT healthy: {outcome.unhealthy[:3]}"
    return (
        f"{outcome.event:>12s} {outcome.pod or 'all':>8s}: {outcome.seconds:6.1f} s to"
        f" {health}; keys lost {outcome.keys_lost}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--events", type=int, default=8)
    parser.add_argument("--keys", type=int, default=20_000)
    args = parser.parse_args(argv)
    print(f"{server_version()}; seed {args.seed}, {args.events} events, {args.keys} keys")
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        outcomes, acknowledged, lost = soak(Path(tmp), args.seed, args.events, args.keys)
    keys_lost = sum(o.keys_lost for o in outcomes)
    unhealthy = [o.event for o in outcomes if o.unhealthy]
    print(
        f"\nkeys lost over all events: {keys_lost} (must be 0); events not healed: "
        f"{unhealthy or 'none'}; writers: {acknowledged} acknowledged, {lost} lost to"
        " asynchronous replication (only a crash may cost some)"
    )
    return 1 if keys_lost or unhealthy else 0


if __name__ == "__main__":
    raise SystemExit(main())

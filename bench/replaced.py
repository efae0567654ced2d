"""A pod back with an EMPTY volume (a new Redis node id): our sidecars vs the redis-cli recipe.

Run by hand: `python -m bench.replaced --keys 10000,1000000 --rounds 1`. Each run forms a 6-pod
devcluster (3 masters + 3 replicas, the Job), writes the keys into redis-0's shard (MSET batches
pipelined straight to redis-0, one hash tag in its slots, WAIT for its replica), then:

- replica: redis-0's replica loses its volume (`DevCluster.wipe`);
- master: redis-0 stops, its replica is promoted, redis-0 starts again with an empty volume.

Timed from the replacement Redis's start to strictly healthy (devcluster.health) AND no node
listing the old node id. "ours": the sidecars heal alone. "redis-cli": pods without sidecars,
and a script runs the manual recipe at once (no human think time): MYID of the new node, the
old id from CLUSTER NODES (same hostname, other id), `redis-cli --cluster call <node> CLUSTER
FORGET <old>` (every node at once: Redis 7.0 does not gossip forgets; its "Could not connect"
line is the old, dead address), then `--cluster add-node <new> <node> --cluster-slave
--cluster-master-id <the master left without replica>`. Afterwards every key is read back from
the shard's master and (READONLY) from its replica, and after `--recheck` seconds (past the
60 s FORGET ban) the old id must still be gone everywhere. Both tools run on the same
`manifests/redis.conf` (`repl-diskless-sync-delay 0`: the new replica's full sync starts at once;
with Redis's default of 5 s, both took about 6 s with 10 k keys).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import redis
from redis.crc import key_slot

from clusterkit.core.nodes import parse_cluster_nodes
from clusterkit.io.waiting import Deadline, WaitTimeout, wait_until
from devcluster.cluster import DevCluster
from devcluster.health import problems, views
from devcluster.servers import cli_bin, server_version

HEAL_SECONDS = 120.0
BATCH = 1000
"""Keys per MSET / MGET; PIPELINE of them per round trip."""
PIPELINE = 20
TOOLS = ("ours", "redis-cli")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
SCENARIOS = ("replica", "master")


@dataclass
class Run:
    scenario: str
    keys: int
    tool: str
    seconds: float | None = None
    left: list[str] = field(default_factory=list)
    """What kept it from healing, when it did not in HEAL_SECONDS."""
    wrong_on_master: int = -1
    wrong_on_replica: int = -1
    acked_by: int = 0
    """Replicas that acknowledged the writes (WAIT) before the event."""
    wrong_sample: list[str] = field(default_factory=list)
    ghost_back: list[str] = field(default_factory=list)
    """Pods listing the old id again after --recheck seconds."""
    recipe: list[str] = field(default_factory=list)


def listing(cluster: DevCluster, node_id: str) -> list[str]:
    return [p for p, lines in views(cluster).items() if any(n.node_id == node_id for n in lines)]


def shard(cluster: DevCluster, slot: int) -> tuple[str, list[str]]:
    """(master pod, replica pods) serving `slot`, as the first pod's view says."""
    state = cluster.require()
    by_ip = {p.ip: p.name for p in state.pods}
    lines = next(iter(views(cluster).values()))
    owner = next(n for n in lines if n.is_master and any(slot in r.slots() for r in n.slots))
    replicas = [by_ip[n.address.ip] for n in lines if n.master_id == owner.node_id]
    return by_ip[owner.address.ip], replicas


def tag_for(cluster: DevCluster, pod: str) -> str:
    """A hash tag whose slot `pod` (a master) owns."""
    me = next(n for n in views(cluster)[pod] if n.is_myself)
    return next(
        f"b{i}"
        for i in range(100_000)
        if any(key_slot(f"b{i}".encode()) in r.slots() for r in me.slots)
    )


def write_keys(client: redis.Redis, tag: str, count: int) -> int:
    """MSET batches, pipelined; returns how many replicas acknowledged (WAIT)."""
    pipe = client.pipeline(transaction=False)
    for start in range(0, count, BATCH):
        pipe.mset({f"{{{tag}}}:{i}": str(i) for i in range(start, min(count, start + BATCH))})
        if len(pipe) >= PIPELINE:
            pipe.execute()
    pipe.execute()
    return int(client.execute_command("WAIT", 1, 10_000))


def wrong_keys(client: redis.Redis, tag: str, count: int, readonly: bool) -> list[int]:
    """Indices of keys that read back missing or different (replicas: READONLY first)."""
    wrong: list[int] = []
    starts = range(0, count, BATCH)
    for first in range(0, len(starts), PIPELINE):
        pipe = client.pipeline(transaction=False)
        if readonly:
            pipe.execute_command("READONLY")
        chunk = starts[first : first + PIPELINE]
        for start in chunk:
            pipe.mget([f"{{{tag}}}:{i}" for i in range(start, min(count, start + BATCH))])
        replies = pipe.execute()[1 if readonly else 0 :]
        for start, values in zip(chunk, replies, strict=True):
            wrong += [start + j for j, v in enumerate(values) if v != str(start + j)]
    return wrong


def start_empty(cluster: DevCluster, pod: str) -> None:
    data = cluster.dirs.data_dir(pod)
    shutil.rmtree(data)
    data.mkdir(parents=True)
    cluster.start_pods([pod])


def cli(cluster: DevCluster, *args: str) -> str:
    """redis-cli as a script runs it; the password in REDISCLI_AUTH, never on the command line."""
    done = subprocess.run(
        [cli_bin(), *args],
        env={**os.environ, "REDISCLI_AUTH": cluster.password},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return ANSI.sub("", done.stdout + done.stderr)


def manual_recipe(cluster: DevCluster, pod: str) -> list[str]:
    """The redis-cli recipe for a replaced pod; returns the notable lines of its output."""
    state = cluster.require()
    port = str(state.port)
    new = state.pod(pod)
    entry = next(p for p in state.pods if p.name != pod)
    at = ("-h", entry.ip, "-p", port)
    new_id = cli(cluster, "-h", new.ip, "-p", port, "CLUSTER", "MYID").strip()
    fqdn = state.naming.pod_fqdn(new.ordinal)
    lines = parse_cluster_nodes(cli(cluster, *at, "CLUSTER", "NODES"))
    old = [n.node_id for n in lines if n.address.hostname.rstrip(".") == fqdn]
    notes = []
    for old_id in old:
        if old_id != new_id:
            out = cli(
                cluster, "--cluster", "call", f"{entry.ip}:{port}", "CLUSTER", "FORGET", old_id
            )
            notes += [f"forget: {x}" for x in out.splitlines() if "OK" not in x and ">>>" not in x]
    lines = parse_cluster_nodes(cli(cluster, *at, "CLUSTER", "NODES"))
    master = min(
        (n for n in lines if n.is_master and n.slots),
        key=lambda m: sum(1 for n in lines if n.master_id == m.node_id),
    )
    out = cli(
        cluster,
        *("--cluster", "add-node", f"{new.ip}:{port}", f"{entry.ip}:{port}"),
        *("--cluster-slave", "--cluster-master-id", master.node_id),
    )
    notes += [f"add-node: {line}" for line in out.splitlines() if "ERR" in line or "WARN" in line]
    return notes


def wait_healed(cluster: DevCluster, old_id: str, deadline: Deadline) -> list[str]:
    """Poll (bounded) until strictly healthy and no node lists `old_id`; [] = healed."""
    last = ["never checked"]

    def healed() -> bool:
        try:
            last[:] = problems(cluster, 3, 1)
            if still := listing(cluster, old_id):
                last.append(f"old id {old_id[:8]} listed by {still}")
        except (redis.RedisError, OSError, StopIteration) as exc:
            last[:] = [f"{type(exc).__name__}: {exc}"]
        return not last

    try:
        wait_until(healed, timeout=deadline, what="healed", interval=0.1)
    except WaitTimeout:
        return last
    return []


def one_run(
    scenario: str, keys: int, tool: str, *, root: Path, recheck: float, logs: Path | None
) -> Run:
    run = Run(scenario, keys, tool)
    name = f"{tool}-{scenario}-{keys}-{time.monotonic_ns()}"
    cluster = DevCluster(root / name)
    cluster.up(6, 1, sidecars=tool == "ours")
    try:
        if cluster.run_job().returncode != 0:
            raise RuntimeError("the Job failed")
        master = "redis-0"
        tag = tag_for(cluster, master)
        slot = key_slot(tag.encode())
        replica = shard(cluster, slot)[1][0]
        run.acked_by = write_keys(cluster.client(master, 30.0), tag, keys)
        victim = replica if scenario == "replica" else master
        old_id = str(cluster.client(victim).execute_command("CLUSTER", "MYID"))
        if scenario == "replica":
            cluster.wipe([victim])
        else:
            cluster.stop_pods([victim])
            promoted = cluster.client(replica)
            wait_until(
                lambda: promoted.info("replication").get("role") == "master",
                timeout=30.0,
                what=f"{replica} promoted",
                interval=0.1,
            )
            start_empty(cluster, victim)
        deadline = Deadline(HEAL_SECONDS)  # from the replacement Redis's start
        if tool == "redis-cli":
            run.recipe = manual_recipe(cluster, victim)
        run.left = wait_healed(cluster, old_id, deadline)
        if run.left:
            return run
        run.seconds = deadline.elapsed()
        owner, copies = shard(cluster, slot)
        on_master = wrong_keys(cluster.client(owner, 30.0), tag, keys, False)
        on_replica = wrong_keys(cluster.client(copies[0], 30.0), tag, keys, True)
        run.wrong_on_master, run.wrong_on_replica = len(on_master), len(on_replica)
        run.wrong_sample = [f"{owner}:{{{tag}}}:{i}" for i in on_master[:5]] + [
            f"{copies[0]}:{{{tag}}}:{i}" for i in on_replica[:5]
        ]
        if recheck > 0:
            time.sleep(max(0.0, recheck - deadline.elapsed() + run.seconds))
            run.ghost_back = listing(cluster, old_id)
            run.left += problems(cluster, 3, 1)
        return run
    finally:
        if logs is not None:
            for log in cluster.dirs.root.glob("pods/*/*.log"):
                target = logs / name / log.parent.name / log.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(log, target)
        cluster.down()


def describe(run: Run) -> str:
    took = f"{run.seconds:6.2f} s" if run.seconds is not None else "NOT HEALED"
    text = f"{run.scenario:8s} {run.keys:>8d} keys  {run.tool:9s}  {took}"
    if run.acked_by < 1:
        text += "  (WAIT: no replica acknowledged the writes before the event)"
    if run.wrong_on_master or run.wrong_on_replica:
        text += (
            f"  !!! KEYS LOST/WRONG: master {run.wrong_on_master}, replica {run.wrong_on_replica}"
        )
    if run.ghost_back:
        text += f"  !!! OLD ID BACK on {run.ghost_back}"
    return text + "".join(f"\n    {line}" for line in run.left + run.recipe + run.wrong_sample)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", default="10000,1000000", help="comma-separated key counts")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--recheck", type=float, default=65.0, help="seconds; 0 skips")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--keep-logs", type=Path, help="copy every pod's logs into this folder")
    args = parser.parse_args(argv)
    counts = [int(k) for k in args.keys.split(",")]
    print(f"{server_version()}; {cli_bin()}; recipe timed as a script runs it (no think time)")
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-replaced-") as tmp:
        for index in range(args.rounds):
            for scenario in args.scenarios.split(","):
                for keys in counts:
                    for tool in TOOLS if index % 2 == 0 else reversed(TOOLS):
                        run = one_run(
                            scenario,
                            keys,
                            tool,
                            root=Path(tmp),
                            recheck=args.recheck,
                            logs=args.keep_logs,
                        )
                        runs.append(run)
                        print(describe(run), flush=True)
    print(f"\n{'scenario':8s} {'keys':>8s}  {'ours (s)':>9s}  {'redis-cli recipe (s)':>20s}  ratio")
    for scenario in args.scenarios.split(","):
        for keys in counts:
            figures = {}
            for tool in TOOLS:
                done = [
                    r.seconds
                    for r in runs
                    if (r.scenario, r.keys, r.tool) == (scenario, keys, tool)
                ]
                ok = [s for s in done if s is not None]
                figures[tool] = statistics.median(ok) if len(ok) == len(done) and ok else None
            ours, theirs = figures["ours"], figures["redis-cli"]
            shown = [f"{f:.2f}" if f is not None else "never" for f in (ours, theirs)]
            ratio = f"{ours / theirs:.2f}" if ours and theirs else "-"
            print(f"{scenario:8s} {keys:>8d}  {shown[0]:>9s}  {shown[1]:>20s}  {ratio}")
    bad = [
        r
        for r in runs
        if r.seconds is None or r.wrong_on_master or r.wrong_on_replica or r.ghost_back
    ]
    if bad:
        print(f"\n!!! {len(bad)} run(s) did not heal, lost keys or saw the old id come back")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=2))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""Formation time: our Job vs `redis-cli --cluster create`, on the same kind of fresh pods.

Run by hand (not in CI): `make bench` or `python -m bench.formation --sizes 6 30 90 --runs 3`.
For each size and run, in alternating order, both tools get a fresh devcluster whose pods are
aged >= 2.5 s (as pods in Kubernetes are when a Job reaches them). A poller outside the tool
reads every node (two cheap commands, only the nodes not there yet) and records, per node, when
it first says cluster_state:ok, and when it is fully formed (ok, knows every node, in its role:
a replica's link up, a master's replica online; an empty master is not formed). Printed per
run, from the tool's start:

- all ok: every node cluster_state:ok;
- formed: every node fully formed;
- exited: the tool exited; lag = exited - formed (ours waits for full formation, redis-cli
  does not wait for replica links);
- floor distance (ours only): all ok - (the Job's last ADDSLOTS reply + 5 s), Redis's rejoin
  delay being the floor no tool can beat.

`--job-source DIR` runs the Job from another checkout (e.g. a `git worktree` of an older
commit), to measure before and after a change on the same machine.
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from clusterkit.io.redisio import info_fields, scatter
from clusterkit.io.waiting import wait_until
from devcluster.cluster import DevCluster
from devcluster.servers import cli_bin

POD_AGE_SECONDS = 2.5
POLL_SECONDS = 0.02
REPLICAS_PER_MASTER = 1
REJOIN_DELAY_SECONDS = 5.0
PROBE = (("CLUSTER", "INFO"), ("INFO", "replication"))


@dataclass
class Run:
    tool: str
    size: int
    all_ok: float = 0.0
    formed: float = 0.0
    exited: float = 0.0
    slots_assigned: float | None = None
    """Seconds from start to the Job's `step_applied` event for assign_slots (last reply)."""
    ok_at: dict[int, float] = field(default_factory=dict)
    formed_at: dict[int, float] = field(default_factory=dict)

    @property
    def lag(self) -> float:
        return self.exited - self.formed

    @property
    def floor_distance(self) -> float | None:
        if self.slots_assigned is None:
            return None
        return self.all_ok - (self.slots_assigned + REJOIN_DELAY_SECONDS)


def poll(cluster: DevCluster, run: Run, started: float, limit: float) -> None:
    """Record when each node is first ok and first fully formed (cheap, only nodes not yet)."""
    state = cluster.require()
    clients = {p.ordinal: cluster.client(p.name, 2.0) for p in state.pods}
    size = len(clients)

    def sweep() -> bool:
        pending = [o for o in clients if o not in run.formed_at]
        results = scatter([(clients[o], PROBE) for o in pending])
        now = time.monotonic() - started
        for ordinal, result in zip(pending, results, strict=True):
            if isinstance(result, Exception) or any(isinstance(r, Exception) for r in result):
                continue
            info, replication = (info_fields(r) for r in result)
            if info.get("cluster_state") != "ok":
                continue
            run.ok_at.setdefault(ordinal, now)
            # Formed in its planned role: a replica linked up, a master with its replica
            # linked (a node neither tool has made a replica yet is an empty master).
            if replication.get("role") == "slave":
                linked = replication.get("master_link_status") == "up"
            else:
                online = [v for k, v in replication.items() if k.startswith("slave")]
                linked = sum("online" in v for v in online) >= REPLICAS_PER_MASTER
            if info.get("cluster_known_nodes") == str(size) and linked:
                run.formed_at[ordinal] = now
        return len(run.formed_at) == size

    wait_until(sweep, timeout=limit, what="every node formed", interval=POLL_SECONDS)
    run.all_ok = max(run.ok_at.values())
    run.formed = max(run.formed_at.values())


def start_tool(cluster: DevCluster, tool: str, job_source: Path | None) -> subprocess.Popen[str]:
    if tool == "ours":
        env = cluster.job_env(TIMEOUT_SECONDS="300")
        if job_source is not None:
            env["PYTHONPATH"] = str(job_source)
        return subprocess.Popen(
            [sys.executable, "-m", "bootstrap"],
            env=env,
            cwd=job_source,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
    state = cluster.require()
    nodes = [f"{p.ip}:{state.port}" for p in state.pods]
    return subprocess.Popen(
        [
            cli_bin(),
            "--cluster",
            "create",
            *nodes,
            "--cluster-replicas",
            str(REPLICAS_PER_MASTER),
            "--cluster-yes",
        ],
        env={**os.environ, "REDISCLI_AUTH": cluster.password},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def slots_assigned_after(output: str, started_wall: float) -> float | None:
    """Seconds from start to the Job's assign_slots step_applied event (UTC ISO timestamp)."""
    for line in output.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "step_applied" and event.get("step") == "assign_slots":
            at = datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00"))
            return at.timestamp() - started_wall
    return None


def one_run(
    tool: str, size: int, root: Path, job_source: Path | None, job_logs: Path | None = None
) -> Run:
    cluster = DevCluster(root / f"{tool}-{size}-{time.monotonic_ns()}")
    cluster.up(size, 1, sidecars=False)  # formation only: both tools on the same bare pods
    run = Run(tool, size)
    try:
        time.sleep(POD_AGE_SECONDS)
        started, started_wall = time.monotonic(), time.time()
        process = start_tool(cluster, tool, job_source)
        output: list[str] = []

        def wait_exit() -> None:
            output.append(process.communicate(timeout=300)[0])
            run.exited = time.monotonic() - started

        waiter = threading.Thread(target=wait_exit, name="tool-exit")
        waiter.start()
        poll(cluster, run, started, limit=300)
        waiter.join(timeout=300)
        if process.returncode != 0:
            raise RuntimeError(f"{tool} exited with {process.returncode} at {size} pods")
        if tool == "ours":
            run.slots_assigned = slots_assigned_after(output[0], started_wall)
            if job_logs is not None:
                job_logs.mkdir(parents=True, exist_ok=True)
                log = job_logs / f"job-{size}-{time.time_ns()}.log"
                log.write_text(f"# started {started_wall}\n{output[0]}")
        return run
    finally:
        cluster.down()


def describe(run: Run) -> str:
    floor = run.floor_distance
    return (
        f"{run.size:4d} pods  {run.tool:9s}  all ok {run.all_ok:6.2f} s  formed {run.formed:6.2f} s"
        f"  exited {run.exited:6.2f} s  lag {run.lag:+6.2f} s"
        + (f"  floor distance {floor:+5.2f} s" if floor is not None else "")
    )


def median(values: Sequence[float | None]) -> float:
    return statistics.median(v for v in values if v is not None)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[6, 30, 90])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tools", nargs="+", default=["ours", "redis-cli"])
    parser.add_argument("--job-source", type=Path, help="run the Job from this checkout")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--job-logs", type=Path, help="keep each run's Job log in this folder")
    args = parser.parse_args(argv)
    results: dict[int, dict[str, list[Run]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-formation-") as tmp:
        for size in args.sizes:
            runs: dict[str, list[Run]] = {tool: [] for tool in args.tools}
            for index in range(args.runs):
                order = args.tools if index % 2 == 0 else list(reversed(args.tools))
                for tool in order:
                    run = one_run(tool, size, Path(tmp), args.job_source, args.job_logs)
                    runs[tool].append(run)
                    print(describe(run), flush=True)
            results[size] = runs
    print("\nmedians: pods, tool, all ok, ratio to redis-cli, formed, exited, lag, floor distance")
    for size, runs in results.items():
        cli_runs = runs.get("redis-cli", [])
        theirs = median([r.all_ok for r in cli_runs]) if cli_runs else None
        for tool, done in runs.items():
            ok = median([r.all_ok for r in done])
            ratio = f"{ok / theirs:5.2f}" if theirs else "    -"
            floors = [r.floor_distance for r in done if r.floor_distance is not None]
            formed = median([r.formed for r in done])
            exited = median([r.exited for r in done])
            lag = median([r.lag for r in done])
            print(
                f"{size:>4}  {tool:9s}  {ok:6.2f} s  {ratio}  {formed:6.2f} s"
                f"  {exited:6.2f} s  {lag:+5.2f} s"
                + (f"  {statistics.median(floors):+5.2f} s" if floors else "")
            )
    if args.json:
        raw = {
            str(size): {tool: [vars(r) for r in done] for tool, done in runs.items()}
            for size, runs in results.items()
        }
        args.json.write_text(json.dumps(raw, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

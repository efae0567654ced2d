"""What TLS and ACL users cost: formation and full-restart healing, plain vs TLS.

Run by hand: `python -m bench.tls --runs 3 [--pods 6]`. Each run forms a devcluster with sidecars
(the Job's own `cluster_formed` seconds: DNS, PINGs, MEETs, slots, replicas, settled), writes
keys, stops every pod and starts them all again at new addresses, and times from the last
Redis start until the cluster is strictly healthy (bench.healing's measure). Modes: the
single-password layout over plain TCP, ACL users over plain TCP, ACL users over TLS (mutual,
on every link). Runs alternate the modes' order.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from devcluster.cluster import DevCluster
from devcluster.health import wait_healthy

GIVE_UP_SECONDS = 60.0
KEYS = 1000
MODES = {"plain": (False, False), "acl": (True, False), "tls": (True, True)}
"""Mode -> (ACL users, TLS)."""


def one_run(mode: str, root: Path, pods: int) -> tuple[float, float | None]:
    """(formation seconds, healing seconds or None when not healed in time)."""
    cluster = DevCluster(root / f"{mode}-{time.monotonic_ns()}")
    users, tls = MODES[mode]
    cluster.up(pods, 1, users=users, tls=tls)
    try:
        result = cluster.run_job()
        formed = result.last("cluster_formed")
        if result.returncode != 0 or formed is None:
            raise RuntimeError(f"the Job failed ({mode}): exit {result.returncode}")
        client = cluster.cluster_client()
        for i in range(KEYS):
            client.set(f"key:{i}", str(i))
        names = [p.name for p in cluster.require().pods]
        cluster.stop_pods(names)
        cluster.start_pods(names)
        started = time.monotonic()
        masters = pods // 2
        problems = wait_healthy(cluster, masters, replicas_per_master=1, timeout=GIVE_UP_SECONDS)
        healed = None if problems else time.monotonic() - started
        client = cluster.cluster_client()
        lost = sum(client.get(f"key:{i}") != str(i) for i in range(KEYS))
        if lost:
            raise RuntimeError(f"{lost} keys lost in a full restart ({mode})")
        return float(str(formed["seconds"])), healed
    finally:
        cluster.down()


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s" if values else "never"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pods", type=int, default=6, help="an even number, >= 6")
    args = parser.parse_args(argv)
    formation: dict[str, list[float]] = {mode: [] for mode in MODES}
    healing: dict[str, list[float]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as tmp:
        for run in range(args.runs):
            order = list(MODES) if run % 2 == 0 else list(reversed(MODES))
            for mode in order:
                formed, healed = one_run(mode, Path(tmp), args.pods)
                formation[mode].append(formed)
                if healed is not None:
                    healing[mode].append(healed)
                shown = f"{healed:.2f} s" if healed is not None else "not healed"
                print(f"run {run + 1} {mode:6s} formed {formed:.2f} s, healed {shown}", flush=True)
    for mode in MODES:
        print(
            f"{mode:6s} formation median {median(formation[mode])}, full-restart healing"
            f" median {median(healing[mode])} ({len(healing[mode])}/{args.runs} healed)"
        )
    plain_formed = statistics.median(formation["plain"])
    tls_formed = statistics.median(formation["tls"])
    print(f"formation tls/plain ratio {tls_formed / plain_formed:.2f}")
    if healing["plain"] and healing["tls"]:
        ratio = statistics.median(healing["tls"]) / statistics.median(healing["plain"])
        print(f"healing tls/plain ratio {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

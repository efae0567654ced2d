"""Hung peers and the survivors' liveness: what a kubelet would see.

Run by hand: `python -m bench.frozen --pods 30 --frozen 12 --seconds 70`. Forms a devcluster
(1 replica per master), hangs `--frozen` pods' Redis (SIGSTOP: the kernel still accepts their
connections, nothing answers; every other ordinal from 1 on), and for `--seconds` polls every
surviving pod's `/livez` (the redis container's liveness probe) and `/livez/sidecar` (the
sidecar's) once a second, as a kubelet with periodSeconds 1 would; prints how many answers were
not 200. Then it resumes the pods and waits for the cluster to be healthy again.
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from clusterkit.io.httpget import http_get
from devcluster import manifests
from devcluster.cluster import DevCluster
from devcluster.health import wait_healthy
from devcluster.servers import server_version

PROBES = ("/livez", "/livez/sidecar")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pods", type=int, default=30)
    parser.add_argument("--frozen", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=70.0)
    args = parser.parse_args(argv)
    print(f"{server_version()}; {args.pods} pods, {args.frozen} hung for {args.seconds:.0f} s")
    port = manifests.load().sidecar_port
    with tempfile.TemporaryDirectory(prefix="bench-frozen-") as tmp:
        cluster = DevCluster(Path(tmp) / "cluster")
        cluster.up(args.pods, 1)
        try:
            if cluster.run_job(timeout=600).returncode != 0:
                print("the Job did not form the cluster")
                return 1
            pods = cluster.require().pods
            frozen = [p for p in pods if p.ordinal % 2 == 1][: args.frozen]
            survivors = [p for p in pods if p not in frozen]
            answers: Counter[tuple[str, int]] = Counter()
            for pod in frozen:
                os.kill(pod.pid or 0, signal.SIGSTOP)
            try:
                end = time.monotonic() + args.seconds
                for _ in range(100_000):  # bounded; ends at --seconds
                    if time.monotonic() > end:
                        break
                    started = time.monotonic()
                    for pod in survivors:
                        for path in PROBES:
                            status, _ = http_get(f"http://{pod.ip}:{port}{path}", timeout=5.0)
                            answers[path, status] += 1
                    time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
            finally:
                for pod in frozen:
                    os.kill(pod.pid or 0, signal.SIGCONT)
            for path in PROBES:
                total = sum(n for (p, _), n in answers.items() if p == path)
                bad = sum(n for (p, s), n in answers.items() if p == path and s != 200)
                print(f"{path:>15s}: {bad} of {total} answers from the survivors were not 200")
            masters = args.pods // 2
            left = wait_healthy(cluster, masters=masters, replicas_per_master=1, timeout=120)
            print(f"healthy again after the pods resumed: {left or 'yes'}")
        finally:
            cluster.down()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

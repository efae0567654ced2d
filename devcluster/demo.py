"""`python -m devcluster demo`: form a cluster, lose a master, lose a volume, restart every pod,
drain every node, crash one; watch it heal."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from clusterkit.io.waiting import Deadline, wait_until
from devcluster.cluster import DevCluster
from devcluster.demonodes import DEMO_SIDECAR_ENV, node_loss
from devcluster.health import wait_healthy
from devcluster.table import print_table

KEYS = 1000
WAIT_SECONDS = 60.0


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def waited(what: str, check: Callable[[], bool], timeout: float = WAIT_SECONDS) -> float:
    """Seconds until `check` holds (Redis errors count as "not yet"); raises WaitTimeout."""
    deadline = Deadline(timeout)
    wait_until(check, timeout=deadline, what=what, interval=0.2, retry_on=(redis.RedisError,))
    return deadline.elapsed()


def role_of(cluster: DevCluster, pod: str) -> dict[str, str]:
    return next(r for r in cluster.roles() if r["pod"] == pod)


def missing_keys(cluster: DevCluster) -> list[int]:
    client = cluster.cluster_client()
    return [i for i in range(KEYS) if client.get(f"demo:{i}") != str(i)]


def start(cluster: DevCluster, *, users: bool, tls: bool) -> None:
    over = " over TLS, ACL users on" if tls else " (ACL users on)" if users else ""
    say(f"1. Start 6 pods (own loopback address each, real DNS, real redis-server){over}")
    # up() refuses when a devcluster already runs there: the demo never touches it.
    cluster.up(6, 1, users=users, tls=tls, sidecar_env=DEMO_SIDECAR_ENV)


def run_demo(cluster: DevCluster, *, users: bool = False, tls: bool = False) -> int:
    start(cluster, users=users, tls=tls)
    try:
        say("2. Run the bootstrap Job: 3 masters, 3 replicas")
        result = cluster.run_job()
        if result.returncode != 0:
            print(
                f"the Job failed with exit code {result.returncode}; see"
                f" {cluster.dirs.root / 'job.log'}"
            )
            return result.returncode
        print(f"formed in {(result.last('cluster_formed') or {}).get('seconds')} s")
        print_table(cluster.roles())

        say(f"3. Write {KEYS} keys through a cluster client")
        client = cluster.cluster_client()
        for i in range(KEYS):
            client.set(f"demo:{i}", str(i))
        print(f"wrote demo:0 .. demo:{KEYS - 1}")

        victim = "redis-0"
        replica = next(r["pod"] for r in cluster.roles() if r["master"] == victim)
        say(f"4. Stop master {victim} as Kubernetes does; its replica {replica} takes over")
        stopping = time.monotonic()
        cluster.stop_pods([victim])
        waited(f"{replica} to become master", lambda: role_of(cluster, replica)["role"] == "master")
        print(
            f"{replica} is master {time.monotonic() - stopping:.1f} s after the stop began: the"
            " preStop hook handed the slots over before Redis got SIGTERM (a crash would take"
            " cluster-node-timeout, 5 s, plus an election)"
        )
        print_table(cluster.roles())

        say(f"5. Start {victim} again with a NEW address and its old data")
        cluster.start_pods([victim])
        print(f"{victim} now at {cluster.require().pod(victim).ip}")
        took = waited(
            f"{victim} to rejoin as a replica with its link up",
            lambda: (
                role_of(cluster, victim)["role"] == "replica"
                and cluster.client(victim).info("replication").get("master_link_status") == "up"
            ),
        )
        print(
            f"{victim} rejoined as a replica of {role_of(cluster, victim)['master']}"
            f" after {took:.1f} s"
        )
        print_table(cluster.roles())

        say("6. Read every key back")
        missing = missing_keys(cluster)
        print(
            f"{KEYS - len(missing)}/{KEYS} keys read back"
            + (f"; MISSING {missing[:10]}" if missing else "")
        )
        if not lose_a_volume(cluster):
            return 1

        if not restart_everything(cluster):
            return 1
        if not node_loss(cluster, lambda: missing_keys(cluster), say):
            return 1
        missing = missing_keys(cluster)
        print(f"{KEYS - len(missing)}/{KEYS} keys read back")
        return 1 if missing else 0
    finally:
        say("12. Down: stop everything and remove the state directory")
        cluster.down()
        print("done")


def lose_a_volume(cluster: DevCluster) -> bool:
    """Step 7: a replica comes back empty; True once the cluster healed by itself."""
    lost = next(r["pod"] for r in cluster.roles() if r["role"] == "replica")
    say(f"7. Lose {lost}'s volume: it comes back EMPTY, as a new Redis node, at a new address")
    cluster.wipe([lost])
    healing = Deadline(WAIT_SECONDS)
    left = wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=WAIT_SECONDS)
    if left:
        print(f"NOT healthy: {left[:3]}")
        return False
    print(
        "its sidecar made every node forget the old identity, met the cluster and replicated"
        f" {role_of(cluster, lost)['master']}: strictly healthy {healing.elapsed():.1f} s after"
        " Redis started (no Job, no human)"
    )
    print_table(cluster.roles())
    return True


def restart_everything(cluster: DevCluster) -> bool:
    """Steps 8 and 9: every pod restarts at a new address; the Job rerun changes nothing."""
    say("8. Restart EVERY pod at once, all at new addresses (what update-node.sh can't heal)")
    names = [p.name for p in cluster.require().pods]
    cluster.restart(names)
    print("all pods back at " + ", ".join(cluster.require().pod(n).ip for n in names))
    left = wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=WAIT_SECONDS)
    if left:
        print(f"NOT healthy: {left[:3]}")
        return False
    print("the sidecars fixed nodes.conf and re-met the peers: healthy again")
    print_table(cluster.roles())
    missing = missing_keys(cluster)
    print(f"{KEYS - len(missing)}/{KEYS} keys read back")
    say("9. Run the Job again: it finds the cluster formed and changes nothing")
    rerun = cluster.run_job()
    print(
        f"exit code {rerun.returncode}, event: "
        f"{(rerun.events[-1] if rerun.events else {}).get('event')}"
    )
    return not missing and rerun.returncode == 0

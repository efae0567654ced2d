"""`python -m devcluster`: a StatefulSet on one machine (see docs/devcluster.md)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from devcluster.cluster import DevCluster
from devcluster.demo import run_demo
from devcluster.rollout import rollout
from devcluster.servers import missing_server
from devcluster.state import default_state_dir
from devcluster.table import print_table


def cmd_up(cluster: DevCluster, args: argparse.Namespace) -> int:
    overrides = dict(item.split("=", 1) for item in args.sidecar_env)
    print(f"starting DNS and {args.pods} pods in {cluster.dirs.root} ...")
    cluster.up(
        args.pods,
        args.replicas_per_master,
        users=args.acl,
        tls=args.tls,
        kustomize_dir=args.kustomize,
        nodes=args.nodes,
        zones=args.zones,
        seed=args.seed,
        sidecar_env=overrides,
    )
    state = cluster.require()
    print(
        f"pods up on 127.{state.octet}.0.0/16, DNS at {state.dns_nameserver};"
        " running the bootstrap Job ..."
    )
    result = cluster.run_job(TIMEOUT_SECONDS=str(args.timeout))
    summary = result.last("cluster_formed") or result.last("already_formed")
    if result.returncode != 0 or summary is None:
        error = next((e for e in reversed(result.events) if e.get("level") == "error"), {})
        print(f"the Job failed with exit code {result.returncode}: {error.get('error', '?')}")
        print(f"(its log: {cluster.dirs.root / 'job.log'}; pods left running, see `down`)")
        return result.returncode or 1
    print(f"cluster formed in {summary['seconds']} s (Job log: {cluster.dirs.root / 'job.log'})")
    print_table(cluster.roles())
    for key, value in cluster.credentials.status().items():
        if value:
            print(f"{key}: {value}")
    return 0


def cmd_status(cluster: DevCluster, args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps(cluster.status(), indent=2))
    else:
        print_table(cluster.roles())
    return 0


def cmd_restart(cluster: DevCluster, args: argparse.Namespace) -> int:
    state = cluster.require()
    names = [p.name for p in state.pods] if args.all else args.pods
    if not names:
        print("name pods to restart, or --all", file=sys.stderr)
        return 2
    cluster.restart(names)
    for name in names:
        print(f"{name} restarted at {state.pod(name).ip}")
    return 0


def cmd_scale(cluster: DevCluster, args: argparse.Namespace) -> int:
    """As docs/operations.md says: scaling out starts the pods, then runs the Job with the new size;
    scaling in runs the Job first, and removes the drained pods only once it succeeded."""
    state = cluster.require()
    current = len(state.pods)
    if args.pods == current:
        print(f"devcluster has {current} pods already; running the Job to check")
    elif args.pods > current:
        added = cluster.add_pods(args.pods - current, args.replicas_per_master)
        print(f"started {', '.join(added)}")
    rpm = args.replicas_per_master or state.replicas_per_master
    print(f"running the Job with CLUSTER_SIZE={args.pods}, REPLICAS_PER_MASTER={rpm} ...")
    result = cluster.run_job(
        timeout=float(args.timeout) + 30,
        TIMEOUT_SECONDS=str(args.timeout),
        CLUSTER_SIZE=str(args.pods),
        REPLICAS_PER_MASTER=str(rpm),
    )
    if result.returncode != 0:
        error = next((e for e in reversed(result.events) if e.get("level") == "error"), {})
        print(f"the Job failed with exit code {result.returncode}: {error.get('error', '?')}")
        return result.returncode
    moved = sum(1 for e in result.events if e.get("event") == "slot_moved")
    summary = result.last("cluster_formed") or result.last("already_formed") or {}
    print(f"resized in {summary.get('seconds')} s, {moved} slots moved with their keys")
    if args.pods < current:
        removed = cluster.remove_pods(current - args.pods, args.replicas_per_master)
        print(f"the Job drained them: removed {', '.join(removed)} (their data stays on disk)")
    print_table(cluster.roles())
    return 0


def cmd_wipe(cluster: DevCluster, args: argparse.Namespace) -> int:
    cluster.wipe(args.pods)
    state = cluster.require()
    for name in args.pods:
        print(f"{name} started with an empty volume at {state.pod(name).ip}")
    return 0


def cmd_rollout(cluster: DevCluster, args: argparse.Namespace) -> int:
    started = time.monotonic()

    def progress(pod: str, step: str) -> None:
        print(f"{time.monotonic() - started:7.1f} s  {pod} {step}", flush=True)

    rollout(cluster, args.down_seconds, prestop=not args.no_prestop, progress=progress)
    print_table(cluster.roles())
    return 0


def cmd_kill(cluster: DevCluster, args: argparse.Namespace) -> int:
    cluster.stop_pods([args.pod], prestop=not args.crash, crash=args.crash)
    print(f"{args.pod} {'killed' if args.crash else 'stopped'}")
    return 0


def cmd_kill_redis(cluster: DevCluster, args: argparse.Namespace) -> int:
    cluster.kill_redis(args.pod)
    print(f"{args.pod}: Redis killed (SIGKILL), its sidecar still running")
    if args.back_after is not None:
        time.sleep(args.back_after)
        cluster.start_redis(args.pod)
        print(f"{args.pod}: Redis started again after {args.back_after:.1f} s, with its data")
    return 0


def cmd_drain_node(cluster: DevCluster, args: argparse.Namespace) -> int:
    started = time.monotonic()

    def progress(pod: str, step: str) -> None:
        print(f"{time.monotonic() - started:7.1f} s  {pod} {step}", flush=True)

    if not cluster.drain_node(args.node, args.down_seconds, progress):
        print(f"no running pod on {args.node}")
    print_table(cluster.roles())
    return 0


def cmd_crash_node(cluster: DevCluster, args: argparse.Namespace) -> int:
    crashed = cluster.crash_node(args.node)
    print(f"{args.node} crashed: {', '.join(crashed) or 'no running pod'} killed (SIGKILL)")
    return 0


def cmd_sidecar_status(cluster: DevCluster, args: argparse.Namespace) -> int:
    shown = cluster.sidecar_status(args.pod, *(["--json"] if args.json else []))
    print(shown.stdout, end="")
    print(shown.stderr, end="", file=sys.stderr)
    return shown.returncode


def cmd_restore_node(cluster: DevCluster, args: argparse.Namespace) -> int:
    restored = cluster.restore_node(args.node)
    state = cluster.require()
    for name in restored:
        print(f"{name} started again on {args.node} at {state.pod(name).ip}")
    if not restored:
        print(f"no crashed pod on {args.node}")
    return 0


def cmd_down(cluster: DevCluster, args: argparse.Namespace) -> int:
    cluster.down()
    print(f"stopped everything and removed {cluster.dirs.root}")
    return 0


def cmd_demo(cluster: DevCluster, args: argparse.Namespace) -> int:
    return run_demo(cluster, users=args.acl, tls=args.tls)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devcluster", description=__doc__)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=default_state_dir(),
        help="where pods, DNS zone, password and pid files live",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start DNS and pods, form the cluster with the Job")
    up.add_argument("--pods", type=int, default=6)
    up.add_argument("--replicas-per-master", type=int, default=1)
    up.add_argument("--timeout", type=int, default=120, help="the Job's TIMEOUT_SECONDS")
    up.add_argument("--nodes", type=int, default=3, help="simulated Kubernetes nodes")
    up.add_argument("--zones", type=int, default=0, help="zones over the nodes (0: no labels)")
    up.add_argument("--seed", type=int, default=0, help="the scheduler's tie-breaks (layout)")
    up.add_argument(
        "--sidecar-env",
        action="append",
        default=[],
        type=key_value,
        metavar="KEY=VALUE",
        help="add to every sidecar's environment (repeatable)",
    )
    add_security_flags(up)
    up.add_argument(
        "--kustomize",
        type=Path,
        default=None,
        metavar="DIR",
        help="run this overlay of manifests/ (rendered with kubectl kustomize) instead of the base",
    )
    up.set_defaults(func=cmd_up)
    status = sub.add_parser("status", help="pods, roles and slots")
    status.add_argument("--json", action="store_true", help="pods, addresses, password file")
    status.set_defaults(func=cmd_status)
    restart = sub.add_parser("restart", help="restart pods with new addresses, same data")
    restart.add_argument("pods", nargs="*")
    restart.add_argument("--all", action="store_true")
    restart.set_defaults(func=cmd_restart)
    scale = sub.add_parser(
        "scale",
        help="scale out (start pods, run the Job) or in (run the Job, then remove drained pods)",
    )
    scale.add_argument("--pods", type=int, required=True)
    scale.add_argument("--replicas-per-master", type=int, default=None)
    scale.add_argument("--timeout", type=int, default=600, help="the Job's TIMEOUT_SECONDS")
    scale.set_defaults(func=cmd_scale)
    wipe = sub.add_parser(
        "wipe", help="lose pods' volumes: stop them, empty their data, start them at new addresses"
    )
    wipe.add_argument("pods", nargs="+")
    wipe.set_defaults(func=cmd_wipe)
    kill = sub.add_parser(
        "kill", help="stop one pod without restarting it (preStop hook, then SIGTERM)"
    )
    kill.add_argument("pod")
    kill.add_argument(
        "--crash", action="store_true", help="SIGKILL, no preStop hook: a killed container"
    )
    kill.set_defaults(func=cmd_kill)
    kill_redis = sub.add_parser(
        "kill-redis",
        help="crash a pod's Redis (SIGKILL, as an OOM kill does) while its sidecar runs on",
    )
    kill_redis.add_argument("pod")
    kill_redis.add_argument(
        "--back-after",
        type=float,
        metavar="SECONDS",
        help="then start it again with its data, as the kubelet restarts a container",
    )
    kill_redis.set_defaults(func=cmd_kill_redis)
    add_node_commands(sub)
    roll = sub.add_parser(
        "rollout", help="a StatefulSet rolling update: every pod restarted, highest ordinal first"
    )
    roll.add_argument("--down-seconds", type=float, default=0.0, help="each pod stays down")
    roll.add_argument("--no-prestop", action="store_true", help="skip the preStop hook")
    roll.set_defaults(func=cmd_rollout)
    sub.add_parser("down", help="stop everything and remove the state").set_defaults(func=cmd_down)
    demo = sub.add_parser("demo", help="up, failover, rejoin, a lost volume, full restart, down")
    add_security_flags(demo)
    demo.set_defaults(func=cmd_demo)
    return parser


def add_node_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The simulated Kubernetes nodes' failures: an upgrade, a dead machine, its return."""
    drain = sub.add_parser(
        "drain-node",
        help="a node-pool upgrade: the node's pods stop (preStop hook), come back, all ready",
    )
    drain.add_argument("node")
    drain.add_argument("--down-seconds", type=float, default=0.0, help="the pods stay down")
    drain.set_defaults(func=cmd_drain_node)
    crash = sub.add_parser(
        "crash-node", help="a dead machine: SIGKILL every pod on the node, DNS records stay"
    )
    crash.add_argument("node")
    crash.set_defaults(func=cmd_crash_node)
    restore = sub.add_parser("restore-node", help="start a crashed node's pods again")
    restore.add_argument("node")
    restore.set_defaults(func=cmd_restore_node)
    status = sub.add_parser(
        "sidecar-status",
        help="python -m sidecar status in a pod: a row per pod and the failure-domain verdict",
    )
    status.add_argument("pod")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_sidecar_status)


def key_value(text: str) -> str:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    return text


def add_security_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--acl", action="store_true", help="ACL users (app, bootstrap, sidecar, replication)"
    )
    parser.add_argument(
        "--tls", action="store_true", help="TLS on every link, per-pod certificates; ACL users"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    problem = missing_server()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    cluster = DevCluster(args.state_dir)
    try:
        code: int = args.func(cluster, args)
    except (FileNotFoundError, RuntimeError, KeyError, TimeoutError, ValueError) as exc:
        print(f"devcluster: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())

"""`python -m sidecar` (the native sidecar), `python -m sidecar fix-nodes-conf` (one-off) and
`python -m sidecar status [--json]` (the cluster's table, for people)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

import structlog

from clusterkit.core.naming import PodNaming
from clusterkit.io.dnsio import make_resolver, parse_nameserver, resolve_first
from clusterkit.io.logs import configure
from clusterkit.io.settings import SettingsError
from sidecar.agent import Agent
from sidecar.exitcodes import ExitCode
from sidecar.fixconf import FixError, fix_nodes_conf
from sidecar.health import HealthState, serve_health
from sidecar.metrics import Metrics
from sidecar.pingcheck import PingCheck
from sidecar.prestopwatch import PrestopWatch
from sidecar.settings import parse_sidecar_settings
from sidecar.status import status_command


def fix_command(argv: Sequence[str]) -> int:
    """Fix one nodes.conf and exit: 0 fixed or nothing to do, 3 corrupt (file untouched)."""
    parser = argparse.ArgumentParser(prog="python -m sidecar fix-nodes-conf")
    parser.add_argument("--nodes-conf", type=Path, required=True)
    parser.add_argument("--pod-ip", required=True)
    parser.add_argument("--dns-nameserver", help="host[:port]; default: the system resolver")
    parser.add_argument("--statefulset-name", default="redis")
    parser.add_argument("--headless-service", default="redis")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--cluster-domain", default="cluster.local")
    args = parser.parse_args(argv)
    log = structlog.get_logger()
    try:
        nameserver = parse_nameserver(args.dns_nameserver) if args.dns_nameserver else None
    except ValueError as exc:
        log.error("bad_settings", error=f"--dns-nameserver: {exc}")
        return ExitCode.BAD_SETTINGS
    try:
        resolver = make_resolver(nameserver, timeout=0.5)
    except ValueError as exc:
        log.error("bad_settings", error=f"--dns-nameserver: {exc}")
        return ExitCode.BAD_SETTINGS
    naming = PodNaming(
        args.statefulset_name, args.headless_service, args.namespace, args.cluster_domain
    )

    try:
        report = fix_nodes_conf(
            args.nodes_conf, args.pod_ip, naming, lambda fqdn: resolve_first(resolver, fqdn)
        )
    except FixError as exc:
        log.error("nodes_conf_corrupt", error=str(exc))
        return ExitCode.CORRUPT_NODES_CONF
    log.info(
        "nodes_conf_checked",
        outcome=report.outcome,
        changed={k: f"{a} -> {b}" for k, (a, b) in report.changed.items()},
        unresolved=report.unresolved,
    )
    return ExitCode.OK


def run(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    log = structlog.get_logger()
    try:
        settings = parse_sidecar_settings(argv, environ)
    except SettingsError as exc:
        log.error("bad_settings", error=str(exc), exit_code=int(ExitCode.BAD_SETTINGS))
        return ExitCode.BAD_SETTINGS
    configure(settings.cluster.log_level)
    structlog.contextvars.bind_contextvars(pod=settings.pod_name)
    state = HealthState(
        Metrics(),
        liveness_stale_seconds=max(30.0, 10 * settings.heal_interval_seconds),
        pod=settings.pod_name,
        kubernetes_node=settings.node_name,
        zone=settings.zone,
        ip=settings.pod_ip,
    )
    try:
        resolver = make_resolver(settings.cluster.nameserver_address(), timeout=0.5)
    except ValueError as exc:
        log.error("bad_settings", error=f"DNS_NAMESERVER: {exc}")
        return ExitCode.BAD_SETTINGS
    server = serve_health(state, settings.http_host, settings.http_port)
    log.info(
        "sidecar_started",
        http=f"{settings.http_host}:{settings.http_port}",
        nodes_conf=str(settings.nodes_conf),
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    agent = Agent(settings, state, resolver)
    PrestopWatch(settings.handover_dir, agent.prestop).start(stop)
    # The liveness PING runs beside the loop, so nothing the loop does can delay it.
    PingCheck(
        settings.pod_ip, settings.cluster.redis_port, agent.access, state, settings.pod_fqdn
    ).start(stop)
    if agent.crash_watch is not None:
        agent.crash_watch.start(stop)
    agent.startup()  # a failure is reported on /startupz; the loop still turns for the probes
    agent.run(stop)
    server.shutdown()
    log.info("sidecar_stopped")
    return ExitCode.OK


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    environ = os.environ if environ is None else environ
    configure()  # INFO until LOG_LEVEL is known to be valid: a bad one is a settings error
    if argv[:1] == ["fix-nodes-conf"]:
        return fix_command(argv[1:])
    if argv[:1] == ["status"]:
        return status_command(argv[1:], environ)
    if argv[:1] == ["run"]:
        argv = argv[1:]
    return run(argv, environ)


if __name__ == "__main__":
    sys.exit(main())

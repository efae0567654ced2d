"""The sidecar's parts wired together: its settings and access, the clients and resolver they
share, and the startup gate (sidecar.startup), the loop (sidecar.loop) and the preStop
handover (sidecar.prestop) built on them. Everything that talks to Redis or DNS is made here
and handed in, so each part can be built with other I/O."""

from __future__ import annotations

import threading

import dns.resolver
import redis

from clusterkit.io.access import NO_ACCESS
from clusterkit.io.dnsio import resolve_first
from clusterkit.io.redisio import connect
from clusterkit.io.settings import SettingsError
from sidecar.crashwatch import CrashWatch
from sidecar.fixconf import read_pod_map
from sidecar.health import HealthState
from sidecar.layout import LayoutWatch
from sidecar.loop import Loop
from sidecar.peers import Peers, RateLimit
from sidecar.prestop import prestop
from sidecar.rejoin import Rejoin
from sidecar.settings import SidecarSettings
from sidecar.startup import Startup
from sidecar.tlsreload import TlsReload

PING_TIMEOUT_SECONDS = 2.0
PEER_TIMEOUT_SECONDS = 1.0
CRASH_PING_TIMEOUT_SECONDS = 0.5
"""The crash watch's PING: a refusal comes at once; a slower answer is no crash either way."""


class Agent:
    def __init__(
        self, settings: SidecarSettings, state: HealthState, resolver: dns.resolver.Resolver
    ) -> None:
        self.settings = settings
        self.state = state
        self.metrics = state.metrics
        self.resolver = resolver
        password_problem = ""
        try:
            self.access = settings.cluster.read_access()
        except SettingsError as exc:
            # Reported on /startupz (Redis held back) rather than a crash loop of the sidecar.
            self.access, password_problem = NO_ACCESS, str(exc)
        naming = settings.cluster.naming
        ordinal = naming.ordinal_of(settings.pod_name)
        self.layout = (
            None if ordinal is None else LayoutWatch(settings, self.access, self.metrics, ordinal)
        )
        rejoin = (
            None
            if ordinal is None
            else Rejoin(
                naming,
                ordinal=ordinal,
                port=settings.cluster.redis_port,
                sidecar_port=settings.http_port,
                access=self.access,
                resolve=self.resolve,
                count_forgets=self.metrics.rejoin_forgets.inc,
            )
        )
        self.startup_gate = Startup(
            settings,
            state,
            access=self.access,
            password_problem=password_problem,
            resolve=self.resolve,
            connect_own=self.own_client,
        )
        self.peers = Peers(
            naming,
            settings.cluster.redis_port,
            self.metrics,
            resolve=self.resolve,
            connect_peer=self.peer_client,
            my_id=lambda: self.state.node_id,
        )
        self.crash_watch = (
            CrashWatch(
                state,
                self.access,
                own=self.own_client(CRASH_PING_TIMEOUT_SECONDS),
                refusals=settings.crash_refusals,
                probe_seconds=settings.crash_probe_seconds,
                domains=lambda: self.layout.domains if self.layout is not None else {},
            )
            if settings.crash_failover
            else None
        )
        self.loop = Loop(
            settings,
            state,
            own=self.own_client(PING_TIMEOUT_SECONDS),
            peers=self.peers,
            rejoin=rejoin,
            layout=self.layout,
            crash=self.crash_watch,
            tls_reload=TlsReload(
                settings.cluster, lambda outcome: self.metrics.tls_reloads.labels(outcome).inc()
            ),
            pod_map=read_pod_map(settings.nodes_conf),
        )

    def resolve(self, fqdn: str) -> str | None:
        address = resolve_first(self.resolver, fqdn)
        if address is None:
            self.metrics.dns_failures.inc()
        return address

    def own_client(self, timeout: float) -> redis.Redis:
        s = self.settings
        return connect(s.pod_ip, s.cluster.redis_port, self.access, timeout, server_name=s.pod_fqdn)

    def peer_client(self, ip: str, fqdn: str) -> redis.Redis:
        port = self.settings.cluster.redis_port
        return connect(ip, port, self.access, PEER_TIMEOUT_SECONDS, server_name=fqdn)

    @property
    def meet_limit(self) -> RateLimit:
        return self.peers.meet_limit

    def startup(self) -> bool:
        """Write Redis's include and fix nodes.conf; True when Redis may start."""
        return self.startup_gate.run()

    def run(self, stop: threading.Event) -> None:
        self.loop.run(stop)

    def turn(self) -> str:
        return self.loop.turn()

    def ping(self) -> bool:
        return not self.loop.ping()

    def prestop(self) -> dict[str, object]:
        return prestop(self.settings, self.state, self.access, self.layout)

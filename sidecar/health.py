"""Health endpoints over HTTP: /startupz, /livez, /readyz, /metrics, /node. Nothing here
changes the cluster: the preStop handover is asked for from inside the pod (sidecar.prestopwatch).

/livez is the redis container's liveness: Redis is hung (no reply to 3 PINGs in a row; a loading
Redis is alive). /livez/sidecar is the sidecar's own: its threads turn. Readiness means "this
node can serve clients now". The sidecar's threads compute them; the server only reports.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sidecar.metrics import Metrics

ENDPOINTS = ("/startupz", "/livez", "/livez/sidecar", "/readyz", "/metrics", "/node", "/status")
HUNG_AFTER_TIMEOUTS = 3
"""Consecutive PINGs without any reply before Redis counts as hung (LOADING etc. are replies)."""


@dataclass
class HealthState:
    """What the sidecar's threads last saw; read by the HTTP server's threads."""

    metrics: Metrics
    liveness_stale_seconds: float = 30.0
    """A sidecar thread that has not turned for this long is stuck (the sidecar's liveness)."""
    pod: str = ""
    kubernetes_node: str = ""
    zone: str = ""
    """The pod's zone (ZONE); empty: unknown."""
    startup: str = "pending"
    """pending, ok or failed."""
    startup_reason: str = "nodes.conf not checked yet"
    node_id: str = ""
    ip: str = ""
    ready: bool = False
    ready_reason: str = "Redis not observed yet"
    status: str = "starting"
    """What the loop's last turn did or waited for (sidecar.loop), served on /status."""
    ping_timeouts: int = 0
    """PINGs in a row without any reply (sidecar.pingcheck)."""
    last_turn: float = field(default_factory=time.monotonic)
    """When the heal loop last finished a turn."""
    last_ping: float = field(default_factory=time.monotonic)
    """When the PING check last finished a turn."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: bool = False
    """The preStop hook has begun: the Job starts no slot move from or to this pod
    (bootstrap.stopping), so that the handover's election can be won."""

    def turned(self) -> None:
        with self.lock:
            self.last_turn = time.monotonic()

    def ping_turned(self) -> None:
        with self.lock:
            self.last_ping = time.monotonic()

    def liveness(self) -> tuple[bool, str]:
        """The redis container's liveness: is Redis hung? Only the PING check counts, never the
        sidecar's other work, a peer or DNS (a wrong answer restarts a healthy Redis)."""
        with self.lock:
            if self.ping_timeouts >= HUNG_AFTER_TIMEOUTS:
                return False, f"Redis did not answer {self.ping_timeouts} PINGs in a row (hung)"
            return True, "ok"

    def sidecar_liveness(self) -> tuple[bool, str]:
        """The sidecar container's liveness: do its own threads turn? Nothing about Redis."""
        with self.lock:
            now = time.monotonic()
            for name, last in (("heal loop", self.last_turn), ("PING check", self.last_ping)):
                idle = now - last
                if idle > self.liveness_stale_seconds:
                    return False, f"the sidecar's {name} has not turned for {idle:.0f}s"
            return True, "ok"


def respond(state: HealthState, path: str) -> tuple[int, str, bytes]:
    """(status, content type, body) for one request path."""
    route = path.split("?", 1)[0]
    if route == "/metrics":
        return 200, CONTENT_TYPE_LATEST, generate_latest(state.metrics.registry)
    if route == "/startupz":
        code = {"ok": 200, "pending": 503}.get(state.startup, 500)
        body: dict[str, object] = {"status": state.startup, "reason": state.startup_reason}
    elif route in ("/livez", "/livez/sidecar"):
        alive, reason = state.liveness() if route == "/livez" else state.sidecar_liveness()
        code, body = (200 if alive else 503), {"reason": reason}
    elif route == "/readyz":
        code, body = (200 if state.ready else 503), {"reason": state.ready_reason}
    elif route == "/status":
        code, body = 200, {"status": state.status, "ready": state.ready}
    elif route == "/node":
        code = 200
        body = {
            "pod": state.pod,
            "kubernetes_node": state.kubernetes_node,
            "zone": state.zone,
            "node_id": state.node_id,
            "ip": state.ip,
            "stopping": state.stopping,
        }
    else:
        code, body = 404, {"reason": f"endpoints: {' '.join(ENDPOINTS)}"}
    return code, "application/json", json.dumps(body).encode()


class Handler(BaseHTTPRequestHandler):
    state: HealthState

    def do_GET(self) -> None:
        code, content_type, body = respond(self.state, self.path)
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Probes arrive every few seconds: no access log."""


EVERY_ADDRESS = "::"
"""Where an empty HTTP_HOST listens: IPv6's any-address, taking IPv4 too (dual stack)."""


def listen_family(host: str) -> socket.AddressFamily:
    """The socket family for HTTP_HOST: IPv6 for an IPv6 literal or for "" (every address),
    IPv4 for an IPv4 literal or a name."""
    if not host:
        return socket.AF_INET6
    with contextlib.suppress(ValueError):
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    return socket.AF_INET


class IPv4Server(ThreadingHTTPServer):
    daemon_threads = True


class IPv6Server(ThreadingHTTPServer):
    """Listens on IPv6; on "::" it takes IPv4 connections too (IPV6_V6ONLY off)."""

    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self) -> None:
        with contextlib.suppress(OSError, AttributeError):
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def serve_health(state: HealthState, host: str, port: int) -> ThreadingHTTPServer:
    """Start the HTTP server in a daemon thread; returns it (call shutdown() to stop)."""
    handler = type("BoundHandler", (Handler,), {"state": state})
    server: ThreadingHTTPServer
    if listen_family(host) == socket.AF_INET:
        server = IPv4Server((host, port), handler)
    else:
        try:
            server = IPv6Server((host or EVERY_ADDRESS, port), handler)
        except OSError:
            if host:
                raise
            # A kernel without IPv6 (ipv6.disable=1): every IPv4 address is all there is.
            server = IPv4Server(("0.0.0.0", port), handler)  # noqa: S104 - probes come from the kubelet
    threading.Thread(target=server.serve_forever, name="health-http", daemon=True).start()
    return server

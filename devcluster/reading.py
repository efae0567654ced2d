"""What a devcluster is: its state, manifests and credentials, clients to its pods, their
status and roles, and the environment its programs get on loopback."""

from __future__ import annotations

import os
from pathlib import Path

import redis

from clusterkit.core.identity import pod_label
from clusterkit.core.nodes import NodeLine, parse_cluster_nodes
from clusterkit.io.redisio import connect
from devcluster import manifests, processes
from devcluster.credentials import ADMIN_USER, Credentials
from devcluster.servers import server_marker
from devcluster.state import ClusterState, PodRecord, StateDir


class ClusterReading:
    """DevCluster's reading side: nothing here starts or stops a pod."""

    def __init__(self, state_dir: Path) -> None:
        self.dirs = StateDir(state_dir)
        self.state = self.dirs.load() if self.dirs.exists() else None

    # -- reading -------------------------------------------------------------------------------

    def require(self) -> ClusterState:
        if self.state is None:
            self.state = self.dirs.load()
        return self.state

    @property
    def manifests(self) -> manifests.Manifests:
        """The base, or the overlay this devcluster was started from (`up --kustomize`)."""
        directory = self.require().kustomize_dir
        return manifests.load(Path(directory)) if directory else manifests.load()

    @property
    def redis_conf(self) -> Path:
        """The rendered ConfigMap's redis.conf, written at `up`; every pod includes it."""
        return self.dirs.root / "redis.conf"

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.dirs, self.require())

    @property
    def password(self) -> str:
        """The password `client()` uses: every byte of the file, as the programs read it."""
        return self.credentials.password_of(ADMIN_USER)

    def auth_conf(self, pod: PodRecord) -> Path:
        """Where the pod's sidecar writes Redis's auth include (AUTH_CONF)."""
        return self.dirs.pod_dir(pod.name) / "auth.conf"

    def client(self, name: str, timeout: float = 2.0) -> redis.Redis:
        state = self.require()
        pod = state.pod(name)
        fqdn = state.naming.pod_fqdn(pod.ordinal)
        return connect(pod.ip, state.port, self.credentials.access(), timeout, server_name=fqdn)

    def cluster_client(self) -> redis.RedisCluster:
        state = self.require()
        running = [p for p in state.pods if p.pid is not None]
        return redis.RedisCluster(
            startup_nodes=[redis.cluster.ClusterNode(p.ip, state.port) for p in running],
            decode_responses=True,
            socket_timeout=2.0,
            encoding_errors="surrogateescape",  # a password's non-UTF-8 bytes, as in connect()
            **self.credentials.cluster_client_options(),
        )

    def status(self) -> dict[str, object]:
        state = self.require()
        return {
            "pods": [
                {
                    "name": p.name,
                    "ip": p.ip,
                    "port": state.port,
                    "running": processes.alive(p.pid, server_marker()),
                    "node": p.node,
                    "zone": p.zone,
                    "crashed": p.crashed,
                }
                for p in state.pods
            ],
            **self.credentials.status(),
            "dns_nameserver": state.dns_nameserver,
            "state_dir": str(self.dirs.root),
        }

    def roles(self) -> list[dict[str, str]]:
        """Pods, roles and slots as the first answering pod sees them (for tables and tests),
        with each pod's node and zone ("-": none)."""
        state = self.require()
        where = {
            p.name: {"address": p.ip, "node": p.node or "-", "zone": p.zone or "-"}
            for p in state.pods
        }
        unknown = dict.fromkeys(("address", "node", "zone"), "?")
        by_ip = {p.ip: p.name for p in state.pods}
        views = self.own_views()
        for lines in views.values():
            names = {n.node_id: by_ip.get(n.address.ip) or pod_label(n) or "?" for n in lines}
            # Each pod's role as it says itself: a REPLICATE reaches other views by gossip
            # seconds later on big clusters.
            own = {n.node_id: n for view in views.values() for n in view if n.is_myself}
            return [
                {
                    "pod": names[n.node_id],
                    **where.get(names[n.node_id], unknown),
                    "role": "master" if own.get(n.node_id, n).is_master else "replica",
                    "master": names.get(own.get(n.node_id, n).master_id or "", "-"),
                    "slots": ",".join(str(r) for r in n.slots) or "-",
                    "flags": ",".join(sorted(n.flags - {"myself", "master", "slave"})) or "-",
                }
                for n in sorted(lines, key=lambda n: names[n.node_id])
            ]
        return []

    def own_views(self) -> dict[str, list[NodeLine]]:
        """Pod -> its CLUSTER NODES, for the pods that answer (in pod order)."""
        views: dict[str, list[NodeLine]] = {}
        for pod in self.require().pods:
            try:
                text = str(self.client(pod.name, 1.0).execute_command("CLUSTER", "NODES"))
            except redis.RedisError:
                continue
            views[pod.name] = parse_cluster_nodes(text)
        return views

    def sidecar_url(self, pod: PodRecord, path: str) -> str:
        return f"http://{self.require().pod(pod.name).ip}:{self.manifests.sidecar_port}{path}"

    def loopback_env(
        self, settings: dict[str, str], holder: str, run_dir: Path | None = None
    ) -> dict[str, str]:
        """A program's environment with what differs on loopback: the Secrets' and volumes'
        paths, TLS files (`holder`'s certificate) and DNS."""
        credentials = self.credentials
        run = run_dir or self.dirs.root
        return {
            **os.environ,
            **{k: credentials.localize(v, run) for k, v in settings.items()},
            **credentials.env(holder),
            "DNS_NAMESERVER": self.require().dns_nameserver,
        }

    def sidecar_env(self, pod: PodRecord) -> dict[str, str]:
        """The sidecar container's environment from the StatefulSet (Downward API filled in),
        plus the paths and the listening address of this machine, then `up`'s overrides. The
        zone label is on the pod only when its node has one (zones > 0)."""
        state = self.require()
        fields = {
            "status.podIP": pod.ip,
            "metadata.name": pod.name,
            "metadata.namespace": state.namespace,
            "spec.nodeName": pod.node,
        }
        m = self.manifests
        labels = {**m.pod_labels, **({manifests.ZONE_LABEL: pod.zone} if pod.zone else {})}
        run_dir = self.dirs.pod_dir(pod.name)
        return {
            **self.loopback_env(
                {**m.settings, **m.env(m.sidecar_env, fields, labels)}, pod.name, run_dir
            ),
            "NODES_CONF": str(self.dirs.data_dir(pod.name) / "nodes.conf"),
            "HTTP_HOST": pod.ip,
            "TERMINATION_LOG": str(self.dirs.pod_dir(pod.name) / "termination-log"),
            "AUTH_CONF": str(self.auth_conf(pod)),
            "HANDOVER_DIR": str(self.dirs.handover_dir(pod.name)),
            **state.sidecar_overrides,
        }

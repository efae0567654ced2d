"""The devcluster's state directory: one JSON file naming the DNS server, the pods and their pids,
so every command (and `down` after a crash) knows what was started."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from clusterkit.core.naming import PodNaming
from clusterkit.io.atomicfile import write_atomically

DNS_PORT = 10053
"""Unprivileged port for the simulated cluster DNS (53 needs root; 5353 is mDNS's)."""


def default_state_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "redis-cluster-selfform" / "devcluster"


@dataclass
class PodRecord:
    """One simulated pod: a stable name and data directory, an address that changes on restart."""

    name: str
    ordinal: int
    ip: str
    pid: int | None = None
    """redis-server's pid while it runs; None once stopped (or held back by the sidecar)."""
    sidecar_pid: int | None = None
    """The sidecar's pid while the pod runs."""
    running: bool = False
    """Scheduled with an address: its DNS record is published (publishNotReadyAddresses)."""
    node: str = ""
    """The simulated Kubernetes node (spec.nodeName); "" until placed (or in old state files)."""
    zone: str = ""
    """The node's topology.kubernetes.io/zone label; "" when the nodes have no zones."""
    crashed: bool = False
    """Killed with its node (`crash-node`): no processes, but its DNS record stays published,
    as a dead node's pods keep theirs until Kubernetes deletes them; `restore-node` restarts it."""


@dataclass
class ClusterState:
    """Everything `devcluster` started, saved after every change."""

    octet: int
    """Second octet of 127.X.0.0/16: this devcluster's own loopback range."""
    statefulset: str = "redis"
    service: str = "redis"
    namespace: str = "default"
    cluster_domain: str = "cluster.local"
    port: int = 6379
    replicas_per_master: int = 1
    sidecars: bool = True
    """Run the sidecar in every pod, as the StatefulSet does (the formation benchmark doesn't)."""
    users: bool = False
    """ACL users (app, bootstrap, sidecar, replication; `default` off), as the base deploys;
    False: the single-password layout (one `password` key, the default user)."""
    tls: bool = False
    """TLS on every link with per-pod certificates from a devcluster CA (implies users)."""
    kustomize_dir: str | None = None
    """The overlay the pods and the Job are built from (`up --kustomize`); None: the base."""
    next_address: int = 1
    """Counter for pod addresses: each (re)start takes the next one, as new pods get new IPs."""
    dns_pid: int | None = None
    dns_hidden: list[str] = field(default_factory=list)
    """Pods whose DNS record is withheld (to simulate records that appear late)."""
    pods: list[PodRecord] = field(default_factory=list)
    nodes: int = 3
    """Simulated Kubernetes nodes, devnode-0 .. devnode-{nodes-1} (devcluster/placement.py)."""
    zones: int = 0
    """Zones the nodes are spread over (node i in devzone-{i % zones}); 0: no zone labels."""
    placement_seed: int = 0
    """Seeds the scheduler's tie-breaks: the same seed, the same layout."""
    sidecar_overrides: dict[str, str] = field(default_factory=dict)
    """Added to every sidecar's environment after the manifests' (e.g. a shorter quiet time)."""

    @property
    def naming(self) -> PodNaming:
        return PodNaming(self.statefulset, self.service, self.namespace, self.cluster_domain)

    @property
    def dns_ip(self) -> str:
        return f"127.{self.octet}.255.53"

    @property
    def dns_nameserver(self) -> str:
        return f"{self.dns_ip}:{DNS_PORT}"

    def take_address(self) -> str:
        index = self.next_address
        self.next_address += 1
        third, fourth = divmod(index - 1, 250)
        if third >= 255:
            raise RuntimeError("this devcluster used up its loopback range; run down, then up")
        return f"127.{self.octet}.{third}.{fourth + 1}"

    def pod(self, name: str) -> PodRecord:
        for pod in self.pods:
            if pod.name == name:
                return pod
        raise KeyError(f"no pod named {name!r}; pods are {', '.join(p.name for p in self.pods)}")

    def dns_records(self) -> dict[str, list[str]]:
        """What CoreDNS would answer: an A record per running pod, the Service name for all."""
        naming = self.naming
        records: dict[str, list[str]] = {}
        visible = [p for p in self.pods if p.running and p.name not in self.dns_hidden]
        for pod in visible:
            records[naming.pod_fqdn(pod.ordinal) + "."] = [pod.ip]
        if visible:
            records[naming.service_fqdn + "."] = sorted(p.ip for p in visible)
        return records


class StateDir:
    """Paths inside the state directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def zone_file(self) -> Path:
        return self.root / "dns-zone.json"

    @property
    def auth_dir(self) -> Path:
        """The users Secret as the sidecar mounts it (/etc/redis-auth): one file per key."""
        return self.root / "auth"

    @property
    def password_file(self) -> Path:
        """The single-password layout's only key."""
        return self.auth_dir / "password"

    @property
    def ca_dir(self) -> Path:
        return self.root / "tls" / "ca"

    def tls_dir(self, holder: str) -> Path:
        """A TLS Secret's mount (tls.crt, tls.key, ca.crt) for a pod, the Job or the app."""
        return self.root / "tls" / holder

    def pod_dir(self, name: str) -> Path:
        return self.root / "pods" / name

    def data_dir(self, name: str) -> Path:
        return self.pod_dir(name) / "data"

    def handover_dir(self, name: str) -> Path:
        """The pod's handover volume (an emptyDir: new, so empty, whenever the pod starts)."""
        return self.pod_dir(name) / "handover"

    def exists(self) -> bool:
        return self.state_file.exists()

    def load(self) -> ClusterState:
        try:
            raw = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no devcluster in {self.root}: run `python -m devcluster up` first"
            ) from None
        # Fields added later take their defaults: old state files still load.
        pods = [PodRecord(**p) for p in raw.pop("pods")]
        return ClusterState(**raw, pods=pods)

    def save(self, state: ClusterState) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomically(self.state_file, json.dumps(asdict(state), indent=2) + "\n")

"""A StatefulSet simulated on loopback: pods with their own 127.x addresses, a DNS server that
follows them, and the real bootstrap Job. Used by the CLI, the demo, the tests and the benchmark."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from clusterkit.io.waiting import Deadline
from devcluster import manifests, placement, processes
from devcluster.dnsserver import write_zone
from devcluster.jobs import JobRunner, free_octet
from devcluster.nodes import NodeOperations, kill_pods
from devcluster.reading import ClusterReading
from devcluster.servers import server_marker
from devcluster.state import DNS_PORT, ClusterState, PodRecord
from sidecar import redisfiles
from sidecar.settings import parse_sidecar_settings


class DevCluster(ClusterReading, NodeOperations, JobRunner):
    """Operations on one devcluster, whose state lives in `state_dir`."""

    # -- lifecycle -----------------------------------------------------------------------------

    def up(
        self,
        pods: int = 6,
        replicas_per_master: int = 1,
        sidecars: bool = True,
        password: bytes | None = None,
        *,
        users: bool = False,
        tls: bool = False,
        kustomize_dir: Path | None = None,
        nodes: int = 3,
        zones: int = 0,
        seed: int = placement.BY_ORDINAL,
        sidecar_env: dict[str, str] | None = None,
    ) -> None:
        """Start DNS and `pods` pods (without forming the cluster: that is the Job's work);
        `password`: the single-password layout's bytes (default: a random one); `users`: ACL
        users instead; `tls`: TLS on every link (with users); `kustomize_dir`: an overlay to
        run instead of the base. The pods are spread over `nodes` simulated nodes in `zones`
        zones (0: no zone labels) as the scheduler would, ties broken by `seed`
        (devcluster/placement.py; the default puts pod N on node N % nodes); `sidecar_env`
        is added to every sidecar's environment."""
        if self.dirs.exists():
            raise RuntimeError(f"a devcluster already exists in {self.dirs.root}; run down first")
        placement.layout(nodes, zones)  # ValueError before anything starts
        rendered = manifests.load(kustomize_dir.resolve()) if kustomize_dir else manifests.load()
        settings = rendered.settings
        state = ClusterState(
            octet=free_octet(),
            replicas_per_master=replicas_per_master,
            sidecars=sidecars,
            statefulset=settings["STATEFULSET_NAME"],
            service=settings["HEADLESS_SERVICE"],
            cluster_domain=settings["CLUSTER_DOMAIN"],
            port=int(settings["REDIS_PORT"]),
            users=users or tls,
            tls=tls,
            namespace=rendered.namespace,
            kustomize_dir=str(kustomize_dir.resolve()) if kustomize_dir else None,
            nodes=nodes,
            zones=zones,
            placement_seed=seed,
            sidecar_overrides=dict(sidecar_env or {}),
        )
        state.pods = [PodRecord(state.naming.pod_name(i), i, "") for i in range(pods)]
        self.dirs.root.mkdir(parents=True, exist_ok=True)
        self.state = state
        self.schedule(state.pods)
        self.credentials.create(password)
        self.redis_conf.write_text(rendered.redis_conf)
        self.dirs.save(state)
        self.write_zone()
        state.dns_pid = processes.start_dns(
            state.dns_ip, DNS_PORT, self.dirs.zone_file, self.dirs.root / "dns.log"
        )
        self.dirs.save(state)
        self.start_pods([p.name for p in state.pods])

    def start_pods(
        self, names: Iterable[str], before_redis: Callable[[PodRecord], None] | None = None
    ) -> dict[str, str]:
        """Start pods with NEW addresses and their old data, all at once, as Kubernetes does:
        the DNS record first, then the sidecar, and Redis only once /startupz answers 200.
        `before_redis` runs per pod just before its Redis starts (the benchmark runs the
        update-node.sh sed there). Returns pod -> reason for pods whose sidecar held Redis back."""
        state = self.require()
        records = [state.pod(n) for n in names]
        self.schedule(records)  # pods from old state files, which had no nodes
        for pod in records:
            pod.ip = state.take_address()
            pod.running = True
            pod.crashed = False
            self.dirs.pod_dir(pod.name).mkdir(parents=True, exist_ok=True)
            self.dirs.data_dir(pod.name).mkdir(parents=True, exist_ok=True)
            shutil.rmtree(self.dirs.handover_dir(pod.name), ignore_errors=True)
            self.dirs.handover_dir(pod.name).mkdir()
            self.credentials.issue_pod(pod.ordinal)
        self.dirs.save(state)
        self.write_zone()
        held_back: dict[str, str] = {}
        if state.sidecars:
            for pod in records:
                pod.sidecar_pid = processes.start_sidecar(
                    self.manifests.sidecar_command,
                    self.sidecar_env(pod),
                    self.dirs.pod_dir(pod.name) / "sidecar.log",
                )
            self.dirs.save(state)
            for pod in records:
                started, reason = processes.wait_started(
                    self.sidecar_url(pod, self.manifests.startup_path), pod.sidecar_pid or 0
                )
                if not started:
                    held_back[pod.name] = reason
        for pod in records:
            if pod.name in held_back:
                continue
            if before_redis is not None:
                before_redis(pod)
            config = self.dirs.pod_dir(pod.name) / "redis.conf"
            if not state.sidecars:
                # Without a sidecar, the include is written as the sidecar would write it.
                settings = parse_sidecar_settings([], self.sidecar_env(pod))
                redisfiles.write(settings, self.auth_conf(pod))
            processes.write_pod_config(
                config,
                ip=pod.ip,
                port=state.port,
                data_dir=self.dirs.data_dir(pod.name),
                auth_conf=self.auth_conf(pod),
                redis_conf=self.redis_conf,
                announce_hostname=state.naming.pod_fqdn(pod.ordinal),
            )
            pod.pid = processes.start_redis(config)
        self.dirs.save(state)
        for pod in records:
            if pod.pid is not None:
                fqdn = state.naming.pod_fqdn(pod.ordinal)
                access = self.credentials.access()
                processes.wait_for_redis(pod.ip, state.port, access, server_name=fqdn, pid=pod.pid)
        return held_back

    def stop_pods(
        self,
        names: Iterable[str],
        grace_seconds: float | None = None,
        *,
        prestop: bool = True,
        crash: bool = False,
    ) -> None:
        """Stop pods as the kubelet does: the redis container's preStop hook from the manifests
        (a master hands over to a replica), then SIGTERM to Redis (it saves), then the sidecar,
        as a native sidecar stops last; SIGKILL once `grace_seconds` (default: the manifests'
        terminationGracePeriodSeconds) have passed. `prestop=False` skips the hook (Redis still
        saves on SIGTERM); `crash=True`: SIGKILL to Redis and the sidecar, nothing saved."""
        state = self.require()
        records = [state.pod(n) for n in names]
        if crash:
            kill_pods(records)
        grace = self.manifests.grace_seconds if grace_seconds is None else grace_seconds
        deadline = Deadline(grace)

        def stop_one(pod: PodRecord) -> None:
            if prestop and grace > 0 and processes.alive(pod.sidecar_pid, "sidecar"):
                self.prestop(pod.name, timeout=grace)
            processes.stop(pod.pid, server_marker(), max(deadline.remaining(), 0.0))

        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(stop_one, records))
            list(pool.map(lambda p: processes.stop(p.sidecar_pid, "sidecar"), records))
        for pod in records:
            pod.pid = pod.sidecar_pid = None
            pod.running = pod.crashed = False
        self.dirs.save(state)
        self.write_zone()

    def prestop(self, name: str, timeout: float | None = None) -> dict[str, object]:
        """Run the redis container's preStop hook from the manifests, as the kubelet does (its
        paths on this machine), and return the sidecar's answer ({} when it gave none)."""
        handover = self.dirs.handover_dir(name)
        command = [
            part.replace("/run/handover", str(handover)) for part in self.manifests.prestop_command
        ]
        grace = self.manifests.grace_seconds if timeout is None else timeout
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(command, check=False, timeout=grace, stdin=subprocess.DEVNULL)
        try:
            answer = json.loads((handover / "done").read_text())
        except (OSError, ValueError):
            return {}
        return answer if isinstance(answer, dict) else {}

    def kill_redis(self, name: str) -> None:
        """SIGKILL the pod's Redis only, as an OOM kill or a segfault does: its sidecar runs on,
        the pod keeps its address and its data (what Redis had written to disk)."""
        state = self.require()
        pod = state.pod(name)
        processes.kill(pod.pid, server_marker())
        pod.pid = None
        self.dirs.save(state)

    def start_redis(self, name: str) -> None:
        """The kubelet restarts the pod's Redis container: same address, same data, the sidecar
        still running. Returns once Redis answers (LOADING counts)."""
        state = self.require()
        pod = state.pod(name)
        pod.pid = processes.start_redis(self.dirs.pod_dir(name) / "redis.conf")
        self.dirs.save(state)
        fqdn = state.naming.pod_fqdn(pod.ordinal)
        access = self.credentials.access()
        processes.wait_for_redis(pod.ip, state.port, access, server_name=fqdn, pid=pod.pid)

    def restart(self, names: Iterable[str]) -> None:
        names = list(names)
        self.stop_pods(names)
        self.start_pods(names)

    def add_pods(self, count: int, replicas_per_master: int | None = None) -> list[str]:
        """The StatefulSet scaled out: `count` new pods with the next ordinals, started (the
        cluster is not changed: the Job, run next with the new size, adds them)."""
        state = self.require()
        first = len(state.pods)
        added = [PodRecord(state.naming.pod_name(i), i, "") for i in range(first, first + count)]
        state.pods.extend(added)
        self.schedule(added)
        if replicas_per_master is not None:
            state.replicas_per_master = replicas_per_master
        self.dirs.save(state)
        self.start_pods([p.name for p in added])
        return [p.name for p in added]

    def remove_pods(self, count: int, replicas_per_master: int | None = None) -> list[str]:
        """The StatefulSet scaled in: its `count` highest pods stop and go; their data stays, as
        a StatefulSet keeps the volume claims of the pods it removes."""
        state = self.require()
        removed = [p.name for p in state.pods[-count:]]
        self.stop_pods(removed)
        state.pods = state.pods[:-count]
        if replicas_per_master is not None:
            state.replicas_per_master = replicas_per_master
        self.dirs.save(state)
        self.write_zone()
        return removed

    def wipe(self, names: Iterable[str]) -> None:
        """A lost volume: stop the pods, empty their data directories, start them again at new
        addresses (Redis comes back as a new node). Returns once they are started. The pods
        are killed (SIGKILL, no preStop hook): a volume is lost with its node, not handed over."""
        names = list(names)
        self.stop_pods(names, crash=True)
        for name in names:
            data = self.dirs.data_dir(name)
            shutil.rmtree(data)
            data.mkdir(parents=True)
        self.start_pods(names)

    def down(self) -> None:
        """Stop everything this state directory names and remove it (works after a crash)."""
        if not self.dirs.exists():
            return
        state = self.require()
        # Everything is removed next: no need to wait for Redis to sync stopping replicas.
        self.stop_pods([p.name for p in state.pods if p.running], grace_seconds=0.0)
        processes.stop(state.dns_pid, "devcluster.dnsserver")
        shutil.rmtree(self.dirs.root)
        self.state = None

    def set_dns_hidden(self, names: Iterable[str], hidden: bool) -> None:
        """Withhold (or publish again) pods' DNS records, as when a pod is not scheduled yet."""
        state = self.require()
        current = set(state.dns_hidden)
        current = current | set(names) if hidden else current - set(names)
        state.dns_hidden = sorted(current)
        self.dirs.save(state)
        self.write_zone()

    def write_zone(self) -> None:
        state = self.require()
        write_zone(self.dirs.zone_file, state.cluster_domain, state.dns_records())

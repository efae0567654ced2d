"""Prometheus metrics of one pod: what Redis says of the cluster, and what the sidecar did."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class Metrics:
    """One registry per sidecar (not the global one: tests run several in a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.cluster_state_ok = Gauge(
            "redis_cluster_state_ok", "1 when CLUSTER INFO says cluster_state:ok", registry=r
        )
        self.slots = Gauge(
            "redis_cluster_slots", "Slots by state, from CLUSTER INFO", ["state"], registry=r
        )
        self.known_nodes = Gauge("redis_cluster_known_nodes", "Nodes this node knows", registry=r)
        self.is_master = Gauge(
            "redis_cluster_is_master", "1 for a master, 0 for a replica", registry=r
        )
        self.master_link_up = Gauge(
            "redis_cluster_master_link_up",
            "Replica's link to its master (1 on masters)",
            registry=r,
        )
        self.slots_without_live_owner = Gauge(
            "redis_cluster_slots_without_live_owner",
            "Slots whose master is failing with no live replica (a lost shard when its pod came"
            " back empty), by owner node, its pod and the slot ranges",
            ["node", "pod", "slots"],
            registry=r,
        )
        self.redis_up = Gauge("redis_up", "1 when Redis answered the last PING", registry=r)
        self.nodes_conf_rewrites = Gauge(
            "sidecar_nodes_conf_fixes",
            "Startup nodes.conf fix, 1 for its outcome",
            ["outcome"],
            registry=r,
        )
        self.heal_meets = Counter(
            "sidecar_heal_meets", "CLUSTER MEETs sent to heal a peer's address", registry=r
        )
        self.heal_failures = Counter(
            "sidecar_heal_failures", "Heal steps that failed (retried next turn)", registry=r
        )
        self.dns_failures = Counter(
            "sidecar_dns_failures", "Pod names that did not resolve", registry=r
        )
        self.loop_turns = Counter("sidecar_loop_turns", "Turns of the sidecar's loop", registry=r)
        self.handovers = Counter(
            "sidecar_handovers",
            "preStop hooks answered, by outcome (handed_over, replica, no_slots,"
            " no_healthy_replica, timed_out, failed)",
            ["outcome"],
            registry=r,
        )
        self.tls_reloads = Counter(
            "sidecar_tls_reloads",
            "Renewed TLS files Redis was told to load (CONFIG SET), by outcome (ok, failed)",
            ["outcome"],
            registry=r,
        )
        self.peer_timeouts = Counter(
            "sidecar_peer_timeouts",
            "Unreachable peers that did not answer in time where their pod's name points (each"
            " is then asked less and less often)",
            registry=r,
        )
